//! Benchmarks of the adapter host, in one run:
//!
//! 1. the cost of a call to a trivial adapter — admission, a fresh store,
//!    instantiation from the `InstancePre`, the call, and dropping it all —
//!    each call timed on its own, for p50 and p99;
//! 2. the same while another adapter holds all of its call slots with slow
//!    calls (isolation: the figures should not move beyond noise);
//! 3. one real translation — the `scenario` adapter turning a scenario file
//!    into a `bro.v1.AdapterBatch` — as a WASM component and as the same Rust
//!    code compiled natively, interleaved round by round; the median of the
//!    rounds' ratios is the claim.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-plugin-host --bench adapters`
//! (`-- --quick` for a short run; `-- --no-saturation` skips section 2).
#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;

use bro_adapter_sdk::prost::Message as _;
use bro_plugin_host::{AdapterEngine, AdapterLimits, EngineOptions, LoadedAdapter, Message};
use support::{guest, interleaved, row};

/// Each call timed alone for about `budget`, after a warm-up: (calls, p50, p99).
fn percentiles(budget: Duration, mut f: impl FnMut()) -> (usize, Duration, Duration) {
    for _ in 0..200 {
        f();
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    (samples.len(), at(50), at(99))
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
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let saturation = !args.iter().any(|a| a == "--no-saturation");
    let budget = if quick { Duration::from_millis(500) } else { Duration::from_secs(3) };
    let engine = Arc::new(
        AdapterEngine::new(EngineOptions {
            // `BRO_PERF_MAP=1 perf record …` names the adapters' functions in the profile.
            perf_map: std::env::var_os("BRO_PERF_MAP").is_some(),
            ..EngineOptions::default()
        })
        .expect("engine"),
    );
    let load = |name: &str, limits: AdapterLimits| {
        let wasm = guest(name);
        let component = engine.compile(name, &wasm).expect("compiles");
        LoadedAdapter::load(engine.clone(), name, &component, limits, String::new()).expect("loads")
    };

    let trivial = load("trivial", AdapterLimits::default());
    let tiny = Message { content_type: "text/plain".into(), body: b"x".to_vec(), metadata: vec![] };
    let call = || {
        black_box(trivial.to_canonical("bench", &tiny).expect("runs"));
    };
    println!("| trivial adapter, one call (admission, fresh store, instantiate, call, drop) | calls | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    let (n, p50, p99) = percentiles(budget, call);
    println!("| alone | {n} | {p50:?} | {p99:?} |");

    if saturation {
        // Another adapter's four slots kept full with slow (about 5 ms) calls by eight callers.
        let limits =
            AdapterLimits { max_concurrent_calls: 4, queue_timeout: Duration::from_millis(20), ..Default::default() };
        let hostile = Arc::new(load("hostile", limits));
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..8)
            .map(|_| {
                let (hostile, stop) = (hostile.clone(), stop.clone());
                std::thread::spawn(move || {
                    let slow = Message { content_type: "spin".into(), body: b"2000000".to_vec(), metadata: vec![] };
                    while !stop.load(Ordering::Relaxed) {
                        let _ = black_box(hostile.to_canonical("hog", &slow));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (n, p50, p99) = percentiles(budget, call);
        stop.store(true, Ordering::Relaxed);
        for hog in hogs {
            let _ = hog.join();
        }
        let busy = hostile.stats().busy_refusals;
        println!(
            "| while another adapter holds all its slots ({busy} of its calls refused busy) | {n} | {p50:?} | {p99:?} |"
        );
    }

    println!();
    println!("| translation | interleaved | WASM per call | native per call | WASM / native |");
    println!("|---|---:|---:|---:|---:|");
    let adapter = load("scenario", AdapterLimits::default());
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
        let compared = interleaved(
            budget,
            if events > 100 { 5 } else { 50 },
            || {
                black_box(adapter.to_canonical("bench", &message).expect("runs"));
            },
            || {
                black_box(scenario::translate(black_box(&body), "bench").expect("translates").encode_to_vec());
            },
        );
        row(&format!("scenario → canonical, {events} events, {} bytes", body.len()), &compared);
    }
}
