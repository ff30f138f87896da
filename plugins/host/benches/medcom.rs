//! The WASM-versus-native ratio on the real `medcom` adapter, in one run:
//! each public MedCom sample translated to canonical events, and canonical
//! correspondence rendered to each target, once by the component through the
//! host (fresh store and instance per call, as in production) and once by the
//! same Rust code compiled natively.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-plugin-host --bench medcom`
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

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/medcom/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

fn row(what: &str, (wasm_n, wasm_t): (u64, Duration), (native_n, native_t): (u64, Duration)) {
    println!("| {what}: WASM component | {wasm_n} | {wasm_t:?} | {:.0} |", 1.0 / wasm_t.as_secs_f64());
    println!("| {what}: same code native | {native_n} | {native_t:?} | {:.0} |", 1.0 / native_t.as_secs_f64());
    println!("| **ratio WASM / native, {what}** | | **{:.2}×** | |", wasm_t.as_secs_f64() / native_t.as_secs_f64());
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = if quick { Duration::from_millis(500) } else { Duration::from_secs(3) };
    let engine = Arc::new(AdapterEngine::new(EngineOptions::default()).expect("engine"));
    let wasm = guest("medcom");
    let component = engine.compile("medcom", &wasm).expect("compiles");
    let adapter = LoadedAdapter::load(engine.clone(), "medcom", &component, AdapterLimits::default(), String::new())
        .expect("loads");
    println!("| benchmark | iterations | time per iteration | per second |");
    println!("|---|---:|---:|---:|");
    let samples = [
        ("XDIS91 letter (windows-1252)", "DIS91_1.in.xml", "application/xml"),
        ("CareCommunication new message, JSON", "cc-add5e7e2-new-message.in.json", "application/fhir+json"),
        ("CareCommunication reply + PDF, XML", "cc-b56549f7-reply-with-attachment.in.xml", "application/fhir+xml"),
    ];
    let meta = vec![("message-id".to_owned(), "bench".to_owned())];
    let mut batches = Vec::new();
    for (what, file, content_type) in samples {
        let body = sample(file);
        let message = Message { content_type: content_type.into(), body: body.clone(), metadata: meta.clone() };
        let wasm_bytes = adapter.to_canonical("bench", &message).expect("runs").result.expect("translates");
        let native = medcom::translate(&body, &meta).expect("translates");
        assert_eq!(wasm_bytes, native.encode_to_vec(), "the component and the native build agree on {file}");
        let wasm = measure(budget, || {
            black_box(adapter.to_canonical("bench", &message).expect("runs"));
        });
        let native_t = measure(budget, || {
            black_box(medcom::translate(black_box(&body), &meta).expect("translates").encode_to_vec());
        });
        row(&format!("{what}, {} bytes → canonical", body.len()), wasm, native_t);
        batches.push(native);
    }
    // The reply (with its PDF) rendered back, to each target that carries attachments.
    let reply = &batches[2];
    let reply_bytes = reply.encode_to_vec();
    for target in ["fhir+json", "fhir+xml"] {
        let rendered = adapter.from_canonical("bench", &reply_bytes, target).expect("runs").result.expect("renders");
        let native = medcom::render(reply, target).expect("renders");
        assert_eq!(rendered.body, native.body, "the component and the native build agree on {target}");
        let wasm = measure(budget, || {
            black_box(adapter.from_canonical("bench", &reply_bytes, target).expect("runs"));
        });
        let native_t = measure(budget, || {
            let batch =
                bro_adapter_sdk::proto::AdapterBatch::decode(black_box(reply_bytes.as_slice())).expect("decodes");
            black_box(medcom::render(&batch, target).expect("renders"));
        });
        row(&format!("canonical reply + PDF → {target}"), wasm, native_t);
    }
    let letter = &batches[0];
    let letter_bytes = letter.encode_to_vec();
    let wasm = measure(budget, || {
        black_box(adapter.from_canonical("bench", &letter_bytes, "xdis91").expect("runs"));
    });
    let native_t = measure(budget, || {
        let batch = bro_adapter_sdk::proto::AdapterBatch::decode(black_box(letter_bytes.as_slice())).expect("decodes");
        black_box(medcom::render(&batch, "xdis91").expect("renders"));
    });
    row("canonical letter → xdis91", wasm, native_t);
}
