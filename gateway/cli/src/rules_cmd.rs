//! `bro rules eval FILE` and `bro rules check FILE...`: the rules engine on
//! the public scenario format of `shared/scenarios`.
//!
//! Exit codes: 0 all good; 1 a scenario's expectations are not met; 2 a file
//! cannot be read or evaluated (the message names the event and the problem).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code for input that cannot be evaluated.
const UNREADABLE: u8 = 2;

/// Largest scenario file accepted, in bytes.
const MAX_SCENARIO_BYTES: u64 = 16 * 1024 * 1024;

fn load(path: &Path) -> Result<bro_rules::scenario::Scenario, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?.len();
    if size > MAX_SCENARIO_BYTES {
        return Err(format!("{}: {size} bytes; at most {MAX_SCENARIO_BYTES} are accepted", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text: {e}", path.display()))?;
    bro_rules::scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `bro rules eval FILE`: prints the evaluation as JSON on stdout.
pub fn eval(file: &Path) -> ExitCode {
    match load(file) {
        Ok(scenario) => {
            let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
            let json = bro_rules::render_json(&evaluation);
            match serde_json::to_string_pretty(&json) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bro rules eval: cannot render the result: {e}");
                    ExitCode::from(UNREADABLE)
                }
            }
        }
        Err(message) => {
            eprintln!("bro rules eval: {message}");
            ExitCode::from(UNREADABLE)
        }
    }
}

/// `bro rules check FILE...`: compares each file's result with its `expect`.
pub fn check(files: &[PathBuf]) -> ExitCode {
    let (mut passed, mut failed, mut unreadable) = (0, 0, 0);
    for file in files {
        match load(file) {
            Err(message) => {
                unreadable += 1;
                println!("ERROR {message}");
            }
            Ok(scenario) => {
                let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
                let differences = bro_rules::scenario::check(&scenario, &evaluation);
                if differences.is_empty() {
                    passed += 1;
                    println!("ok    {} — {}", file.display(), scenario.name);
                } else {
                    failed += 1;
                    println!("FAIL  {} — {}", file.display(), scenario.name);
                    for d in differences {
                        println!("      {d}");
                    }
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {unreadable} unreadable");
    if unreadable > 0 {
        ExitCode::from(UNREADABLE)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
