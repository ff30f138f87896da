//! The host against real components: the happy path, and adapters that loop,
//! hoard memory, recurse, trap, panic, flood, return too much or import what
//! they must not — each stopped within its limit with an error naming it and
//! blamed on the right party, while other adapters and other senders keep
//! working; admission under saturation; masking; signing and rollback.
//!
//! The guests are built by `cargo xtask build-adapters` (the test command
//! does it) into `target/adapters/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bro_plugin_host::cache::{CacheOutcome, CompiledCache};
use bro_plugin_host::package::{
    TrustPolicy, TrustedVendor, add_probe, generate_key, parse_public_key, parse_secret_key, sign, write_manifest,
};
use bro_plugin_host::{
    AdapterEngine, AdapterLimits, AdapterRegistry, AdapterState, Blame, BusyScope, EngineOptions, HostError,
    LoadedAdapter, Message,
};

fn guest(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/adapters"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; build the guests with `cargo xtask build-adapters`", path.display())
    })
}

fn engine(options: EngineOptions) -> Arc<AdapterEngine> {
    Arc::new(AdapterEngine::new(options).expect("engine"))
}

fn load(engine: &Arc<AdapterEngine>, name: &str, limits: AdapterLimits) -> Result<LoadedAdapter, HostError> {
    let wasm = guest(name);
    let component = engine.compile(name, &wasm)?;
    LoadedAdapter::load(engine.clone(), name, &component, limits, String::new())
}

fn message(content_type: &str) -> Message {
    Message {
        content_type: content_type.into(),
        body: b"hello".to_vec(),
        metadata: vec![("message-id".into(), "m-1".into())],
    }
}

/// The party the tests' calls are made for, unless a test names others.
const SENDER: &str = "system-a";

fn patient() -> EngineOptions {
    EngineOptions { quarantine_after: 1000, throttle_after: 1000, ..EngineOptions::default() }
}

#[test]
fn a_well_behaved_adapter_translates_both_ways() {
    let engine = engine(patient());
    let trivial = load(&engine, "trivial", AdapterLimits::default()).expect("loads");
    assert_eq!(trivial.info().name, "trivial");
    let out = trivial.to_canonical(SENDER, &message("text/plain")).expect("runs");
    let bytes = out.result.expect("translates");
    // Field 3 (source_message_id) = "m-1".
    assert_eq!(bytes, [0x1a, 3, b'm', b'-', b'1']);
    let back = trivial.from_canonical(SENDER, &[], "jobcenter").expect("runs").result.expect("translates");
    assert_eq!(back.body, b"jobcenter:0");
    let refused = trivial.to_canonical(SENDER, &message("text/x-unsupported")).expect("runs").result;
    assert!(matches!(refused, Err(bro_plugin_host::AdapterError::Unsupported(t)) if t == "x-unsupported"));
    let logged = trivial.to_canonical(SENDER, &message("text/x-log")).expect("runs");
    assert_eq!(logged.report.log[0].message, "hello");
    assert!(logged.report.peak_memory_bytes > 0);
    let stats = trivial.stats();
    assert_eq!((stats.calls, stats.adapter_errors, stats.failures), (4, 1, 0));
}

fn hostile(limits: AdapterLimits) -> LoadedAdapter {
    load(&engine(patient()), "hostile", limits).expect("the hostile adapter loads; it misbehaves only when called")
}

#[test]
fn an_endless_loop_with_fuel_to_spare_is_stopped_by_the_wall_clock_backstop() {
    let adapter =
        hostile(AdapterLimits { deadline: Duration::from_millis(100), fuel: u64::MAX / 2, ..Default::default() });
    let started = Instant::now();
    let err = adapter.to_canonical(SENDER, &message("loop")).expect_err("stopped");
    assert!(matches!(err, HostError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped promptly, not after {:?}", started.elapsed());
    assert!(err.to_string().contains("adapter hostile") && err.to_string().contains("backstop of 100ms"), "{err}");
    assert!(err.is_transient(), "the backstop blames the moment, not the message");
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let adapter =
        hostile(AdapterLimits { memory_bytes: 16 << 20, deadline: Duration::from_secs(5), ..Default::default() });
    let err = adapter.to_canonical(SENDER, &message("alloc")).expect_err("stopped");
    assert!(matches!(err, HostError::MemoryLimit { limit, .. } if limit == 16 << 20), "{err}");
}

#[test]
fn runaway_recursion_overflows_the_stack_cleanly() {
    let adapter = hostile(AdapterLimits { deadline: Duration::from_secs(5), ..Default::default() });
    let err = adapter.to_canonical(SENDER, &message("recurse")).expect_err("stopped");
    assert!(matches!(err, HostError::StackOverflow { .. }), "{err}");
}

#[test]
fn traps_and_panics_are_reported_with_the_panic_message() {
    let adapter = hostile(AdapterLimits::default());
    let err = adapter.to_canonical(SENDER, &message("trap")).expect_err("trap");
    assert!(matches!(err, HostError::Trap { .. }), "{err}");
    let err = adapter.to_canonical(SENDER, &message("panic")).expect_err("panic");
    assert!(err.to_string().contains("panics on purpose"), "{err:?}");
    // The adapter still works for the next call: each call has a fresh store.
    assert!(adapter.to_canonical(SENDER, &message("fine")).expect("runs").result.is_ok());
}

#[test]
fn oversized_output_and_input_are_refused() {
    let adapter =
        hostile(AdapterLimits { max_output_bytes: 1 << 20, deadline: Duration::from_secs(5), ..Default::default() });
    let err = adapter.to_canonical(SENDER, &message("big-output")).expect_err("too big");
    assert!(matches!(err, HostError::OutputTooLarge { limit, .. } if limit == 1 << 20), "{err}");
    let mut big = message("fine");
    big.body = vec![0; (16 << 20) + 1];
    assert!(matches!(adapter.to_canonical(SENDER, &big), Err(HostError::InputTooLarge { .. })));
}

#[test]
fn a_log_flood_is_capped() {
    let adapter =
        hostile(AdapterLimits { max_log_bytes: 4096, deadline: Duration::from_secs(10), ..Default::default() });
    let out = adapter.to_canonical(SENDER, &message("log-flood")).expect("runs");
    assert!(out.report.log_bytes <= 4096, "{}", out.report.log_bytes);
    assert!(out.report.log_dropped_bytes > 1_000_000, "{}", out.report.log_dropped_bytes);
}

#[test]
fn forbidden_imports_are_refused_at_load_by_name() {
    let err = load(&engine(patient()), "forbidden", AdapterLimits::default()).expect_err("refused");
    let HostError::ForbiddenImport { import, .. } = &err else { panic!("expected ForbiddenImport, got {err}") };
    assert!(import.starts_with("wasi:clocks/") || import.starts_with("wasi:filesystem/"), "{import}");
    assert!(err.to_string().contains("adapter forbidden: refused at load"), "{err}");
}

#[test]
fn garbage_is_not_a_component() {
    let engine = engine(patient());
    let err = engine.compile("junk", b"\0asm\x01\0\0\0").map(|_| ()).expect_err("core module, not a component");
    assert!(err.to_string().contains("adapter junk"), "{err}");
    assert!(engine.compile("junk", b"not wasm at all").is_err());
}

#[test]
fn fuel_bounds_a_loop_deterministically() {
    let engine = engine(patient());
    let limits = AdapterLimits { fuel: 5_000_000, deadline: Duration::from_secs(30), ..Default::default() };
    let adapter = load(&engine, "hostile", limits).expect("loads");
    let err = adapter.to_canonical(SENDER, &message("loop")).expect_err("out of fuel");
    assert!(matches!(err, HostError::OutOfFuel { fuel: 5_000_000, .. }), "{err}");
    let trivial = load(&engine, "trivial", AdapterLimits::default()).expect("loads");
    let out = trivial.to_canonical(SENDER, &message("text/plain")).expect("runs");
    assert!(out.report.fuel_used > 0);
}

#[test]
fn misbehaving_adapters_do_not_disturb_others_running_at_the_same_time() {
    let engine = engine(patient());
    let limits = AdapterLimits { deadline: Duration::from_millis(200), memory_bytes: 32 << 20, ..Default::default() };
    let hostile = Arc::new(load(&engine, "hostile", limits.clone()).expect("loads"));
    let trivial = Arc::new(load(&engine, "trivial", AdapterLimits::default()).expect("loads"));
    let mut attackers = Vec::new();
    for kind in ["loop", "alloc", "recurse", "panic", "loop", "alloc"] {
        let hostile = hostile.clone();
        attackers.push(std::thread::spawn(move || {
            for _ in 0..3 {
                assert!(hostile.to_canonical(SENDER, &message(kind)).is_err(), "{kind} must fail");
            }
        }));
    }
    let worker = {
        let trivial = trivial.clone();
        std::thread::spawn(move || {
            for i in 0..300 {
                let out =
                    trivial.to_canonical(SENDER, &message("text/plain")).unwrap_or_else(|e| panic!("call {i}: {e}"));
                assert!(out.result.is_ok());
            }
        })
    };
    for a in attackers {
        a.join().expect("attacker thread");
    }
    worker.join().expect("the well-behaved adapter kept working");
    assert_eq!(trivial.stats().failures, 0);
    assert_eq!(hostile.stats().failures, 18);
}

#[test]
fn crashes_across_senders_quarantine_an_adapter_with_backoff() {
    let options = EngineOptions {
        quarantine_after: 3,
        throttle_after: 1000,
        initial_backoff: Duration::from_millis(300),
        ..EngineOptions::default()
    };
    let engine = engine(options);
    let adapter = load(&engine, "hostile", AdapterLimits::default()).expect("loads");
    for sender in ["system-a", "system-b", "system-a"] {
        let err = adapter.to_canonical(sender, &message("trap")).expect_err("crashes");
        assert!(matches!(err, HostError::Trap { .. }), "describe() still answers: the crash is this message's: {err}");
        assert!(!err.is_transient(), "a crash on a message is final for that message");
    }
    let err = adapter.to_canonical("system-c", &message("fine")).expect_err("quarantined");
    assert!(matches!(err, HostError::Quarantined { failures: 3, .. }), "{err}");
    assert!(err.is_transient() && err.retry_after().is_some());
    assert!(matches!(adapter.stats().state, AdapterState::Quarantined { failures: 3, .. }));
    std::thread::sleep(Duration::from_millis(350));
    // The trial call after the backoff fails again: quarantined at once, for longer.
    assert!(matches!(adapter.to_canonical("system-b", &message("trap")), Err(HostError::Trap { .. })));
    let HostError::Quarantined { retry_in, .. } = adapter.to_canonical(SENDER, &message("fine")).expect_err("again")
    else {
        panic!("expected quarantine")
    };
    assert!(retry_in > Duration::from_millis(350), "the backoff doubled: {retry_in:?}");
    assert_eq!(adapter.stats().quarantined_refusals, 2);
}

#[test]
fn one_senders_poison_is_its_own_the_adapter_serves_everyone_else() {
    let options = EngineOptions { quarantine_after: 2, throttle_after: 5, ..EngineOptions::default() };
    let engine = engine(options);
    let limits = AdapterLimits { memory_bytes: 16 << 20, ..AdapterLimits::default() };
    let adapter = load(&engine, "hostile", limits).expect("loads");
    for kind in ["trap", "panic", "alloc", "recurse", "trap"] {
        let err = adapter.to_canonical("bomber", &message(kind)).expect_err("fails");
        assert_eq!(err.blame(), Blame::Input, "{kind}: {err}");
    }
    assert_eq!(adapter.stats().state, AdapterState::Serving, "one sender's crashes never quarantine");
    let err = adapter.to_canonical("bomber", &message("fine")).expect_err("throttled");
    assert!(matches!(&err, HostError::Throttled { party, breaches: 5, .. } if party == "bomber"), "{err}");
    assert!(err.is_transient());
    assert!(adapter.to_canonical("neighbour", &message("fine")).expect("served").result.is_ok());
    let stats = adapter.stats();
    assert_eq!((stats.input_failures, stats.throttled_refusals, stats.memory_limits), (5, 1, 1));
    assert_eq!(stats.throttled.iter().map(|t| t.party.as_str()).collect::<Vec<_>>(), ["bomber"]);
}

#[test]
fn the_same_limit_breaking_input_gets_the_same_verdict_with_a_cpu_hog_beside_it() {
    let engine = engine(patient());
    let limits = AdapterLimits { fuel: 300_000_000, deadline: Duration::from_secs(30), ..AdapterLimits::default() };
    let adapter = load(&engine, "hostile", limits).expect("loads");
    let verdict = |adapter: &LoadedAdapter| {
        let mut spin = message("spin");
        spin.body = b"500000000".to_vec();
        adapter.to_canonical(SENDER, &spin).map(|_| ()).map_err(|e| e.to_string())
    };
    let idle = verdict(&adapter);
    assert!(idle.as_ref().is_err_and(|e| e.contains("fuel budget of 300_000_000")), "{idle:?}");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let loaded = verdict(&adapter);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for hog in hogs {
        hog.join().expect("hog");
    }
    assert_eq!(idle, loaded, "fuel, not the clock, decides");
}

#[test]
fn an_adapter_holding_all_its_slots_does_not_stop_another_adapters_calls() {
    let engine = engine(patient());
    let slow_limits =
        AdapterLimits { max_concurrent_calls: 4, queue_timeout: Duration::from_millis(50), ..AdapterLimits::default() };
    let hostile = Arc::new(load(&engine, "hostile", slow_limits).expect("loads"));
    let trivial = Arc::new(load(&engine, "trivial", AdapterLimits::default()).expect("loads"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Twelve callers keep the hostile adapter's four slots full with slow (but finite) calls.
    let hogs: Vec<_> = (0..12)
        .map(|_| {
            let (hostile, stop) = (hostile.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut done, mut busy) = (0u32, 0u32);
                let mut spin = message("spin");
                spin.body = b"20000000".to_vec();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match hostile.to_canonical("hog", &spin) {
                        Ok(_) => done += 1,
                        Err(HostError::Busy { scope: BusyScope::Adapter, .. }) => busy += 1,
                        Err(e) => panic!("only busy refusals are expected, not {e}"),
                    }
                }
                (done, busy)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let trivial = trivial.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let out = trivial
                        .to_canonical(&format!("system-{t}"), &message("text/plain"))
                        .unwrap_or_else(|e| panic!("message {i} of sender {t}: {e}"));
                    assert!(out.result.is_ok());
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("all 200 valid messages went through");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (done, busy) = hogs.into_iter().map(|h| h.join().expect("hog")).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(done > 0 && busy > 0, "the hostile adapter was saturated: {done} done, {busy} busy");
    let stats = trivial.stats();
    assert_eq!((stats.calls, stats.failures, stats.busy_refusals), (200, 0, 0));
    assert_eq!(hostile.stats().failures, 0, "a busy refusal is no failure and no quarantine strike");
    assert_eq!(engine.running_calls(), 0);
}

#[test]
fn what_an_adapter_logs_or_panics_with_is_masked() {
    let engine = engine(patient());
    let trivial = load(&engine, "trivial", AdapterLimits::default()).expect("loads");
    let mut logged = message("text/x-log");
    logged.body = b"Mette Testesen 0101901234 asked".to_vec();
    let out = trivial.to_canonical(SENDER, &logged).expect("runs");
    assert_eq!(out.report.log[0].message, "*** *** ********** asked");
    let adapter = hostile(AdapterLimits::default());
    let mut echo = message("panic-echo");
    echo.body = b"Hansen, 010190-1234".to_vec();
    let err = adapter.to_canonical(SENDER, &echo).expect_err("panics").to_string();
    assert!(err.contains("cannot read ***, ******-****"), "{err}");
    assert!(!err.contains("Hansen") && !err.contains("1234"), "{err}");
}

#[test]
fn the_registry_swaps_versions_while_calls_finish_on_the_old_one() {
    let engine = engine(patient());
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("trivial.wasm"), guest("trivial")).expect("write");
    write_manifest(dir.path(), "trivial", "0.1.0", "trivial.wasm").expect("manifest");
    let strict = AdapterRegistry::new(engine.clone(), None, TrustPolicy::default());
    let unsigned = strict.load_package(dir.path(), AdapterLimits::default()).expect_err("unsigned refused");
    assert!(unsigned.to_string().contains("unsigned"), "{unsigned}");
    assert!(strict.get("trivial").is_err(), "nothing half-loaded");

    let dev = AdapterRegistry::new(engine, None, TrustPolicy { allow_unsigned: true, ..Default::default() });
    let first = dev.load_package(dir.path(), AdapterLimits::default()).expect("loads");
    let in_flight = dev.get("trivial").expect("loaded");
    let second = dev.load_package(dir.path(), AdapterLimits::default()).expect("reloads");
    assert!(Arc::ptr_eq(&dev.get("trivial").expect("loaded"), &second));
    assert!(Arc::ptr_eq(&in_flight, &first));
    assert!(in_flight.to_canonical(SENDER, &message("text/plain")).expect("old version still runs").result.is_ok());

    // A broken new version leaves the old one in service.
    std::fs::write(dir.path().join("trivial.wasm"), b"broken").expect("write");
    write_manifest(dir.path(), "trivial", "0.2.0", "trivial.wasm").expect("manifest");
    assert!(dev.load_package(dir.path(), AdapterLimits::default()).is_err());
    assert!(Arc::ptr_eq(&dev.get("trivial").expect("still loaded"), &second));

    // A lower version than the one in service is a rollback: refused unless allowed.
    std::fs::write(dir.path().join("trivial.wasm"), guest("trivial")).expect("write");
    write_manifest(dir.path(), "trivial", "0.0.9", "trivial.wasm").expect("manifest");
    let rollback = dev.load_package(dir.path(), AdapterLimits::default()).expect_err("rollback refused");
    assert!(rollback.to_string().contains("0.0.9 is lower than 0.1.0 in service"), "{rollback}");
    assert!(Arc::ptr_eq(&dev.get("trivial").expect("still loaded"), &second));
    let allowing = TrustPolicy { allow_unsigned: true, allow_downgrade: true, ..Default::default() };
    let ops = AdapterRegistry::new(dev.engine().clone(), None, allowing);
    write_manifest(dir.path(), "trivial", "0.1.0", "trivial.wasm").expect("manifest");
    ops.load_package(dir.path(), AdapterLimits::default()).expect("loads");
    write_manifest(dir.path(), "trivial", "0.0.9", "trivial.wasm").expect("manifest");
    ops.load_package(dir.path(), AdapterLimits::default()).expect("an explicit rollback loads");
}

#[test]
fn a_vendor_key_signs_only_the_adapters_it_is_trusted_for() {
    let engine = engine(patient());
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("trivial.wasm"), guest("trivial")).expect("write");
    write_manifest(dir.path(), "trivial", "0.1.0", "trivial.wasm").expect("manifest");
    let (secret, public) = generate_key().expect("key");
    sign(dir.path(), &parse_secret_key(&secret).expect("secret")).expect("signed");
    let trusted_for = |names: &[&str]| {
        let vendor = TrustedVendor {
            vendor: "acme".into(),
            key: parse_public_key(&public).expect("public"),
            adapters: names.iter().map(|n| n.to_string()).collect(),
        };
        AdapterRegistry::new(engine.clone(), None, TrustPolicy { keys: vec![vendor], ..Default::default() })
    };
    let err = trusted_for(&["medcom"]).load_package(dir.path(), AdapterLimits::default()).expect_err("not its name");
    assert!(err.to_string().contains(r#"signed by vendor "acme", whose key is trusted only for ["medcom"]"#), "{err}");
    trusted_for(&["trivial"]).load_package(dir.path(), AdapterLimits::default()).expect("its own name loads");

    // A probe that the adapter fails keeps the package out.
    std::fs::write(dir.path().join("probe.txt"), b"probe").expect("write");
    add_probe(dir.path(), "probe.txt", "text/x-unsupported").expect("probe");
    sign(dir.path(), &parse_secret_key(&secret).expect("secret")).expect("signed");
    let err = trusted_for(&["trivial"]).load_package(dir.path(), AdapterLimits::default()).expect_err("probe fails");
    assert!(err.to_string().contains("fails its own probe message: unsupported message type"), "{err}");
    add_probe(dir.path(), "probe.txt", "text/plain").expect("probe");
    sign(dir.path(), &parse_secret_key(&secret).expect("secret")).expect("signed");
    let loaded = trusted_for(&["trivial"]).load_package(dir.path(), AdapterLimits::default()).expect("probe passes");
    assert!(loaded.has_probe());
}

#[test]
fn the_compiled_cache_only_loads_what_it_wrote() {
    let engine = engine(patient());
    let dir = tempfile::tempdir().expect("dir");
    let cache = CompiledCache::open(dir.path()).expect("cache");
    let wasm = guest("trivial");
    assert_eq!(cache.load_or_compile(&engine, "trivial", &wasm).expect("compiles").1, CacheOutcome::Compiled);
    let (component, outcome) = cache.load_or_compile(&engine, "trivial", &wasm).expect("cached");
    assert_eq!(outcome, CacheOutcome::Hit);
    let loaded = LoadedAdapter::load(engine.clone(), "trivial", &component, AdapterLimits::default(), String::new());
    assert!(loaded.expect("a cached component loads").to_canonical(SENDER, &message("text/plain")).is_ok());
    // Tamper with the artifact: it is recompiled, never deserialized.
    let artifact = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact");
    let mut bytes = std::fs::read(&artifact).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&artifact, bytes).expect("write");
    assert_eq!(cache.load_or_compile(&engine, "trivial", &wasm).expect("recompiles").1, CacheOutcome::Compiled);
}
