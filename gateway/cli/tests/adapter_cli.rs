//! The vendor CLI end to end: `bro adapter new|check|run|test|keygen|sign|verify`
//! on real components (the test guests built by `cargo xtask build-adapters`)
//! and on a freshly generated project, built as a vendor would build it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bro")).args(args).output().expect("bro runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn guests() -> PathBuf {
    std::env::var_os("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/adapters"))
}

fn guest(name: &str) -> String {
    let path = guests().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `cargo xtask build-adapters`", path.display());
    path.display().to_string()
}

#[test]
fn check_run_and_refuse() {
    let out = bro(&["adapter", "check", &guest("trivial")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok: trivial 0.1.0"), "{}", text(&out));

    let out = bro(&["adapter", "check", &guest("forbidden")]);
    assert!(!out.status.success());
    assert!(text(&out).contains("imports `wasi:"), "{}", text(&out));

    let dir = tempfile::tempdir().expect("dir");
    let input = dir.path().join("m1.txt");
    std::fs::write(&input, "hello").expect("write");
    let out =
        bro(&["adapter", "run", &guest("trivial"), "--op", "to-canonical", "--input", input.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("\"sourceMessageId\": \"m1.txt\""), "{shown}");
    assert!(shown.contains("fuel") && shown.contains("peak memory") && shown.contains("wall time"), "{shown}");

    let canonical = dir.path().join("batch.json");
    std::fs::write(
        &canonical,
        r#"{"events": [{"occurredOn": {"year": 2026, "month": 1, "day": 2}, "revisionOffered": {}}]}"#,
    )
    .expect("write");
    let out = bro(&[
        "adapter",
        "run",
        &guest("trivial"),
        "--op",
        "from-canonical",
        "--input",
        canonical.to_str().expect("utf8"),
        "--target",
        "jobcenter",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("jobcenter:1"), "{}", text(&out));

    // A misbehaving adapter is stopped, and the figures say why.
    let looping = dir.path().join("x.loop");
    std::fs::write(&looping, "").expect("write");
    let out = bro(&[
        "adapter",
        "run",
        &guest("hostile"),
        "--op",
        "to-canonical",
        "--input",
        looping.to_str().expect("utf8"),
        "--content-type",
        "loop",
        "--fuel",
        "1000000",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("stopped:"), "{}", text(&out));
}

#[test]
fn golden_fixtures_pass_and_fail_with_a_diff() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.in.txt"), "x").expect("write");
    std::fs::write(dir.path().join("a.expected.json"), r#"{"sourceMessageId": "a"}"#).expect("write");
    std::fs::write(dir.path().join("b.canonical.json"), "{}").expect("write");
    std::fs::write(dir.path().join("b.target"), "psychiatry\n").expect("write");
    std::fs::write(dir.path().join("b.expected.txt"), "psychiatry:0\n").expect("write");
    let out = bro(&["adapter", "test", &guest("trivial"), dir.path().to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 passed, 0 failed"), "{}", text(&out));

    std::fs::write(dir.path().join("a.expected.json"), r#"{"sourceMessageId": "wrong"}"#).expect("write");
    let out = bro(&["adapter", "test", &guest("trivial"), dir.path().to_str().expect("utf8")]);
    assert!(!out.status.success());
    let shown = text(&out);
    assert!(shown.contains("FAIL  a") && shown.contains("-") && shown.contains("\"wrong\""), "{shown}");
}

#[test]
fn signing_and_verification() {
    let dir = tempfile::tempdir().expect("dir");
    let component = dir.path().join("trivial.wasm");
    std::fs::copy(guest("trivial"), &component).expect("copy");
    let prefix = dir.path().join("vendor");
    assert!(bro(&["adapter", "keygen", prefix.to_str().expect("utf8")]).status.success());
    let key = dir.path().join("vendor.key");
    let public = dir.path().join("vendor.pub");
    let out = bro(&["adapter", "sign", component.to_str().expect("utf8"), "--key", key.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = |keys: &[&Path]| {
        let mut args = vec!["adapter".to_owned(), "verify".into(), dir.path().display().to_string()];
        for k in keys {
            args.push("--trusted-key".into());
            args.push(k.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bro(&args)
    };
    let out = verify(&[&public]);
    assert!(out.status.success(), "{}", text(&out));
    // Another vendor's key does not verify it.
    let other = dir.path().join("other");
    assert!(bro(&["adapter", "keygen", other.to_str().expect("utf8")]).status.success());
    let out = verify(&[&dir.path().join("other.pub")]);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    // A tampered component fails its manifest hash.
    let mut bytes = std::fs::read(&component).expect("read");
    bytes.push(0);
    std::fs::write(&component, bytes).expect("write");
    let out = verify(&[&public]);
    assert!(!out.status.success());
    assert!(text(&out).contains("SHA-256"), "{}", text(&out));
}

#[test]
fn a_new_project_builds_outside_the_repository_and_passes_its_fixtures() {
    let dir = tempfile::tempdir().expect("dir");
    let out = bro(&["adapter", "new", "acme-journal", "--dir", dir.path().to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let project = dir.path().join("acme-journal");
    // Share a build directory across runs so the SDK's dependencies build once.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("adapter-new-test");
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(build.status.success(), "the generated project must build as it is:\n{}", text(&build));
    let wasm = target.join("wasm32-wasip2/release/acme_journal.wasm");
    let wasm = wasm.to_str().expect("utf8");
    let out = bro(&["adapter", "check", wasm]);
    assert!(out.status.success(), "{}", text(&out));
    let fixtures = project.join("fixtures");
    let out = bro(&["adapter", "test", wasm, fixtures.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bro(&[
        "adapter",
        "run",
        wasm,
        "--op",
        "to-canonical",
        "--input",
        fixtures.join("hello.in.json").to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_scenario_reference_adapter_passes_its_golden_fixtures() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/scenario/fixtures");
    let out = bro(&["adapter", "test", &guest("scenario"), fixtures.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("4 passed, 0 failed"), "{}", text(&out));
}

#[test]
fn the_medcom_reference_adapter_passes_its_golden_fixtures() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/medcom/fixtures");
    let out = bro(&["adapter", "test", &guest("medcom"), fixtures.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    // Every shared MedCom sample (XML and JSON forms), the refused referral, hostile inputs, three output formats.
    assert!(text(&out).contains("16 passed, 0 failed"), "{}", text(&out));
    assert!(text(&out).contains("ok    REF01_1"), "{}", text(&out));
}

#[test]
fn the_journal_and_jobcentre_reference_adapters_pass_their_golden_fixtures() {
    for (adapter, count) in [("sdi", 14), ("jobcenter", 13), ("fhir", 15)] {
        let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters").join(adapter).join("fixtures");
        let out = bro(&["adapter", "test", &guest(adapter), fixtures.to_str().expect("utf8")]);
        assert!(out.status.success(), "{adapter}: {}", text(&out));
        assert!(text(&out).contains(&format!("{count} passed, 0 failed")), "{adapter}: {}", text(&out));
    }
}

/// GETs a path from an HTTP/1.0 server on loopback.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("read");
    body
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_gateway_loads_signed_adapters_from_its_configuration_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().expect("dir");
    let adapters = dir.path().join("adapters");
    let prefix = dir.path().join("acme");
    assert!(bro(&["adapter", "keygen", prefix.to_str().expect("utf8")]).status.success());
    let public = std::fs::read_to_string(dir.path().join("acme.pub")).expect("pub");
    let package = |name: &str| {
        let pkg = adapters.join(name);
        std::fs::create_dir_all(&pkg).expect("mkdir");
        let wasm = pkg.join(format!("{name}.wasm"));
        std::fs::copy(guest(name), &wasm).expect("copy");
        let key = dir.path().join("acme.key");
        let out = bro(&["adapter", "sign", wasm.to_str().expect("utf8"), "--key", key.to_str().expect("utf8")]);
        assert!(out.status.success(), "{}", text(&out));
    };
    package("trivial");
    // A package acme signed but is not trusted for must not load.
    package("fhir");
    // An unsigned package next to it must not load.
    let unsigned = adapters.join("hostile");
    std::fs::create_dir_all(&unsigned).expect("mkdir");
    std::fs::copy(guest("hostile"), unsigned.join("hostile.wasm")).expect("copy");
    std::fs::write(
        unsigned.join("adapter.toml"),
        format!(
            "name = \"hostile\"\nversion = \"0.1.0\"\nwit_version = \"0.1.0\"\nsha256 = \"{}\"\ncomponent = \"hostile.wasm\"\n",
            sha256_of(&unsigned.join("hostile.wasm"))
        ),
    )
    .expect("manifest");
    let (grpc, admin) = (free_port(), free_port());
    let identity = bro_e2e::ServeIdentity::prepare(&dir.path().join("idp")).expect("identities");
    let config = identity
        .config_file(
            dir.path(),
            &format!(
                "data_dir = \"{}\"\nlisten = \"127.0.0.1:{grpc}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
                 [adapters]\ndirectory = \"{}\"\n\
                 [adapters.vendors.acme]\nkey = \"{}\"\nadapters = [\"trivial\", \"scenario\"]\n",
                dir.path().join("data").display(),
                adapters.display(),
                public.trim()
            ),
        )
        .expect("config");
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bro"))
        .args(["serve", "--config", config.to_str().expect("utf8")])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    let admin_addr = format!("127.0.0.1:{admin}");
    let metrics =
        || std::net::TcpStream::connect(&admin_addr).map(|_| http_get(&admin_addr, "/metrics")).unwrap_or_default();
    wait_for(|| metrics().contains("bro_adapter_calls_total{adapter=\"trivial\"}"), "the signed adapter in /metrics");
    assert!(!metrics().contains("adapter=\"hostile\""), "the unsigned package must not load");
    let logs = std::fs::read_to_string(dir.path().join("serve.log")).expect("log");
    assert!(logs.contains("unsigned"), "the refusal is logged: {logs}");
    assert!(!metrics().contains("adapter=\"fhir\""), "acme's key does not sign fhir here");
    assert!(logs.contains("package fhir: signed by vendor") && logs.contains("trusted only for"), "{logs}");

    // Hot reload: a new signed package appears, SIGHUP loads it.
    package("scenario");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    wait_for(
        || metrics().contains("bro_adapter_calls_total{adapter=\"scenario\"}"),
        "the reloaded adapter in /metrics",
    );
    assert!(metrics().contains("adapter=\"trivial\""), "the first adapter is still in service");

    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

fn sha256_of(path: &Path) -> String {
    let out = bro(&["adapter", "check", path.to_str().expect("utf8")]);
    let shown = text(&out);
    shown.lines().find_map(|l| l.trim().strip_prefix("sha256 ")).expect("check prints the hash").to_owned()
}
