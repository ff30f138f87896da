//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask test` — the README's test command: the workspace tests
//!   (unit, conformance, end-to-end, crash, tidy, the plan page in headless
//!   Chromium — installed with apt when missing), the reference adapters'
//!   native tests, then a standard gRPC client (Python grpcio with server
//!   reflection) against a real `bro serve`.
//! - `cargo xtask deps` — checks that `bro-domain` and `bro-rules` depend on
//!   no async runtime, RPC, WebAssembly or SQL crate, and `bro-proto`,
//!   `bro-store` and its backends on no RPC framework.
//! - `cargo xtask build-adapters` — builds the WebAssembly workspace
//!   (`adapters/`: reference adapters and the host's test guests) for
//!   `wasm32-wasip2` and copies each component to `target/adapters/NAME.wasm`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Crates that must stay pure.
const PURE_CRATES: &[&str] = &["bro-domain", "bro-rules"];
/// Crates the storage backends build on: no RPC framework beneath them.
const RPC_FREE_CRATES: &[&str] = &["bro-proto", "bro-store", "bro-store-sqlite", "bro-store-postgres"];
/// What an RPC-free crate must not depend on, even indirectly.
const RPC_CRATES: &[&str] = &["tonic", "tonic-build", "tonic-prost", "h2", "hyper", "axum"];
/// Crates a pure crate must not depend on, even indirectly.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "tonic",
    "hyper",
    "h2",
    "axum",
    "prost",
    "wasmtime",
    "cranelift-codegen",
    "rusqlite",
    "libsqlite3-sys",
    "sqlx",
    "postgres",
    "tokio-postgres",
    "redis",
    "async-nats",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// The names of every package `krate` depends on (normal and build edges).
fn dependency_names(krate: &str) -> anyhow::Result<Vec<String>> {
    let output = cargo()
        .args(["tree", "--package", krate, "--edges", "normal,build", "--prefix", "none", "--format", "{p}"])
        .output()
        .context("cannot run cargo tree")?;
    if !output.status.success() {
        bail!("cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

fn check_deps() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let rules = [
        (PURE_CRATES, FORBIDDEN, "pure crates must not reach IO, RPC, SQL or WebAssembly"),
        (RPC_FREE_CRATES, RPC_CRATES, "the store and its model must not reach an RPC framework"),
    ];
    for (crates, forbidden, why) in rules {
        for krate in crates {
            for name in dependency_names(krate)? {
                if forbidden.contains(&name.as_str()) {
                    problems.push(format!("{krate} depends on {name} ({why})"));
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("dependency direction violated:\n  {}", problems.join("\n  "));
    }
    println!(
        "xtask deps: {} have no IO, RPC, SQL or WebAssembly dependencies; {} no RPC framework",
        PURE_CRATES.join(" and "),
        RPC_FREE_CRATES.join(" and ")
    );
    Ok(())
}

/// A Python virtual environment with grpcio and its reflection client.
fn python_env(target_dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = target_dir.join("pyenv");
    let python = venv.join("bin/python3");
    let marker = venv.join(".bro-ready");
    if !marker.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "grpcio==1.*",
            "grpcio-reflection==1.*",
            "protobuf>=5",
        ]))
        .context("cannot install the Python gRPC client (grpcio, grpcio-reflection) from PyPI")?;
        std::fs::write(&marker, "ok\n")?;
    }
    Ok(python)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Makes sure the `wasm32-wasip2` standard library is installed.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"])),
        // No rustup: trust the toolchain and let cargo say what is missing.
        Err(_) => Ok(()),
    }
}

/// Makes sure headless Chromium is there for the plan page test: Debian's
/// `chromium` package, installed with apt when missing and allowed (root).
fn ensure_chromium() -> anyhow::Result<()> {
    let found = |name: &str| {
        Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success())
    };
    if found("chromium") {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !found("apt-get") {
        bail!(
            "the plan page test needs headless Chromium: install Debian's chromium package (apt-get install chromium)"
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Builds every component of `adapters/` into `target/adapters/`.
fn build_adapters() -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let target = target_dir();
    // From `adapters/`, so that its `.cargo/config.toml` (SIMD) applies.
    run(cargo()
        .current_dir(root().join("adapters"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root().join("adapters/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target))?;
    let built = target.join("wasm32-wasip2/release");
    let out = target.join("adapters");
    std::fs::create_dir_all(&out)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&built).with_context(|| format!("cannot list {}", built.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let name = path.file_stem().map(|s| s.to_string_lossy().replace('_', "-")).unwrap_or_default();
            std::fs::copy(&path, out.join(format!("{name}.wasm")))?;
            names.push(name);
        }
    }
    names.sort();
    println!("xtask build-adapters: {} in {}", names.join(", "), out.display());
    Ok(out)
}

/// Says when the PostgreSQL backend's tests will skip for want of a server
/// (they fail instead in CI, whose `.ci/run` starts one).
fn note_postgres() {
    if std::env::var_os("BRO_TEST_POSTGRES").is_some() {
        return;
    }
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    if std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2)).is_err() {
        eprintln!(
            "xtask: no PostgreSQL on {address}: the PostgreSQL backend's tests will be skipped \
             (set BRO_TEST_POSTGRES to a server to run them)"
        );
    }
}

fn test() -> anyhow::Result<()> {
    check_deps()?;
    let adapters = build_adapters()?;
    ensure_chromium()?;
    note_postgres();
    // Benches are compile-checked by clippy; running them here would only slow the tests.
    run(cargo()
        .args(["test", "--workspace", "--lib", "--bins", "--tests"])
        .env("BRO_ADAPTER_DIR", &adapters)
        .env("BRO_REQUIRE_CHROMIUM", "1"))?;
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    // The reference adapters' own tests, natively (the same code as their components).
    let target = target_dir();
    let manifest = root().join("adapters/Cargo.toml");
    run(cargo()
        .arg("test")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--package", "medcom", "--package", "sdi", "--package", "jobcenter"])
        .args(["--package", "fhir", "--package", "scenario"])
        .env("CARGO_TARGET_DIR", &target))?;
    // The guest SDK's own tests (its calendar and id helpers, JSON caps, XML), natively.
    run(cargo()
        .arg("test")
        .arg("--manifest-path")
        .arg(root().join("plugins/sdk/Cargo.toml"))
        .arg("--all-features")
        .env("CARGO_TARGET_DIR", &target))?;
    run(cargo().args(["build", "--package", "bro-cli"]))?;
    let python = python_env(&target)?;
    run(Command::new(python)
        .arg(root().join("tests/reflection/reflection_client.py"))
        .arg("--bro")
        .arg(target.join("debug/bro")))?;
    println!("xtask test: all tests passed");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("deps") => check_deps(),
        Some("build-adapters") => build_adapters().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <test|deps|build-adapters>");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_dependency_check_sees_indirect_dependencies() {
        // bro-server certainly reaches tokio; if this fails, check_deps sees nothing.
        let names = super::dependency_names("bro-server").expect("cargo tree runs");
        assert!(names.iter().any(|n| n == "tokio"), "{names:?}");
        assert!(names.iter().any(|n| n == "prost"), "{names:?}");
    }

    #[test]
    fn the_store_reaches_no_rpc_framework_but_the_server_does() {
        let store = super::dependency_names("bro-store").expect("cargo tree runs");
        assert!(!store.iter().any(|n| super::RPC_CRATES.contains(&n.as_str())), "{store:?}");
        let server = super::dependency_names("bro-server").expect("cargo tree runs");
        assert!(server.iter().any(|n| n == "tonic"), "the check would see tonic: {server:?}");
    }
}
