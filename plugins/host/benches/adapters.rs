//! Benchmarks of the adapter host, in one run:
//!
//! 1. per-call overhead for a trivial adapter: a fresh store, instantiation
//!    from the `InstancePre`, the call, and dropping it all;
//! 2. one real translation — the `scenario` adapter turning a scenario file
//!    of canonical-case events into a `bro.v1.AdapterBatch` — run as a WASM
//!    component and as the same Rust code compiled natively; the ratio is
//!    the claim.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-plugin-host --bench adapters`
//! (`-- --quick` for a short run).
#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bro_adapter_sdk::prost::Message as _;
use bro_plugin_host::{AdapterEngine, AdapterLimits, EngineOptions, LoadedAdapter, Message};

fn guest(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/adapters"));
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("run `cargo xtask build-adapters` first")
}

/// Runs `f` repeatedly for about `budget`; returns (iterations, time per iteration).
fn measure(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    for _ in 0..20 {
        f();
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    (n, started.elapsed() / n as u32)
}

/// A scenario file with `n` events.
fn scenario(n: usize) -> Vec<u8> {
    let mut events = vec![r#"{"at": "2026-01-15", "type": "placement_started", "basis": "bl46"}"#.to_owned()];
    for i in 0..n.saturating_sub(1) {
        let day = 16 + (i % 10);
        events.push(match i % 4 {
            0 => format!(r#"{{"at": "2026-02-{day:02}", "type": "support_person_offered", "custody_holder": "parent-1"}}"#),
            1 => format!(r#"{{"at": "2026-02-{day:02}", "type": "consent_given", "custody_holder": "parent-1", "scope": "share:jobcenter"}}"#),
            2 => format!(
                r#"{{"at": "2026-02-{day:02}", "type": "support_decided", "measure": "bl32-1-5", "outcome": "granted", "custody_holder": "parent-1"}}"#
            ),
            _ => format!(r#"{{"at": "2026-02-{day:02}", "type": "revision_offered"}}"#),
        });
    }
    format!(r#"{{"name": "bench", "events": [{}]}}"#, events.join(",")).into_bytes()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = if quick { Duration::from_millis(500) } else { Duration::from_secs(3) };
    let engine = Arc::new(AdapterEngine::new(EngineOptions::default()).expect("engine"));
    let load = |name: &str| {
        let wasm = guest(name);
        let component = engine.compile(name, &wasm).expect("compiles");
        LoadedAdapter::load(engine.clone(), name, &component, AdapterLimits::default(), String::new()).expect("loads")
    };

    let trivial = load("trivial");
    let tiny = Message { content_type: "text/plain".into(), body: b"x".to_vec(), metadata: vec![] };
    let (calls, per_call) = measure(budget, || {
        black_box(trivial.to_canonical("bench", &tiny).expect("runs"));
    });

    println!("| benchmark | iterations | time per iteration | per second |");
    println!("|---|---:|---:|---:|");
    println!(
        "| trivial adapter: fresh store + instantiate + call + drop | {calls} | {per_call:?} | {:.0} |",
        1.0 / per_call.as_secs_f64()
    );

    let adapter = load("scenario");
    for events in [10usize, 200] {
        let body = scenario(events);
        let message = Message {
            content_type: "application/vnd.bro.scenario+json".into(),
            body: body.clone(),
            metadata: vec![("message-id".into(), "bench".into())],
        };
        let wasm_bytes = adapter.to_canonical("bench", &message).expect("runs").result.expect("translates");
        let native_bytes = scenario::translate(&body, "bench").expect("translates").encode_to_vec();
        assert_eq!(wasm_bytes, native_bytes, "the component and the native build agree");
        let (wasm_n, wasm_t) = measure(budget, || {
            black_box(adapter.to_canonical("bench", &message).expect("runs"));
        });
        let (native_n, native_t) = measure(budget, || {
            black_box(scenario::translate(black_box(&body), "bench").expect("translates").encode_to_vec());
        });
        println!(
            "| scenario → canonical, {events} events, {} bytes: WASM component | {wasm_n} | {wasm_t:?} | {:.0} |",
            body.len(),
            1.0 / wasm_t.as_secs_f64()
        );
        println!(
            "| scenario → canonical, {events} events: same code native | {native_n} | {native_t:?} | {:.0} |",
            1.0 / native_t.as_secs_f64()
        );
        println!(
            "| **ratio WASM / native, {events} events** | | **{:.2}×** | |",
            wasm_t.as_secs_f64() / native_t.as_secs_f64()
        );
    }
}
