//! Runs every scenario file — the crate's own (`gateway/rules/scenarios`) and
//! the shared public ones (`shared/scenarios`) — through parse → evaluate →
//! check, and fails listing every difference of every file.

use std::fs;
use std::path::{Path, PathBuf};

/// The crate's own worked cases.
const OWN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
/// The shared public test vectors, beside the repository.
const SHARED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scenarios");

/// The `.json` files of `dir`, sorted; panics if the directory is missing.
fn scenario_files(dir: &str) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| panic!("scenario directory {dir} must exist: {error}"));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Every difference for one file, each prefixed with the file's name.
fn run(path: &Path) -> Vec<String> {
    let name = path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return vec![format!("{name}: cannot read: {error}")],
    };
    let scenario = match bro_rules::scenario::parse(&text) {
        Ok(scenario) => scenario,
        Err(error) => return vec![format!("{name}: {error}")],
    };
    let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
    bro_rules::scenario::check(&scenario, &evaluation)
        .into_iter()
        .map(|difference| format!("{name}: {difference}"))
        .collect()
}

fn run_all(dir: &str, at_least: usize) {
    let files = scenario_files(dir);
    assert!(files.len() >= at_least, "{dir} holds {} scenarios; expected at least {at_least}", files.len());
    let differences: Vec<String> = files.iter().flat_map(|path| run(path)).collect();
    assert!(differences.is_empty(), "{} difference(s):\n{}", differences.len(), differences.join("\n"));
}

#[test]
fn shared_scenarios_pass() {
    run_all(SHARED_DIR, 5);
}

#[test]
fn own_scenarios_pass() {
    run_all(OWN_DIR, 25);
}

#[test]
fn own_scenarios_are_numbered_and_named() {
    for path in scenario_files(OWN_DIR) {
        let name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let (number, rest) = name.split_at_checked(2).unwrap_or(("", ""));
        assert!(
            number.bytes().all(|byte| byte.is_ascii_digit()) && rest.starts_with('-') && rest.len() > 1,
            "{name}: scenario files are named NN-name.json"
        );
    }
}
