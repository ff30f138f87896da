//! The WASM-versus-native ratio on the real `medcom` adapter, in one run:
//! each public MedCom sample translated to canonical events, and canonical
//! correspondence rendered to each target, by the component through the host
//! (admission, fresh store and instance per call, fuel metered, as in
//! production) and by the same Rust code compiled natively, interleaved
//! round by round; the median of the rounds' ratios is the claim.
//!
//! `cargo xtask build-adapters && cargo bench -p bro-plugin-host --bench medcom`
//! (`-- --quick` for a short run).
#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod support;

use bro_adapter_sdk::prost::Message as _;
use bro_plugin_host::{AdapterEngine, AdapterLimits, EngineOptions, LoadedAdapter, Message};
use support::{guest, interleaved, row};

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../adapters/medcom/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // A word on the command line keeps only the rows whose name holds it (for profiling one).
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--")).map(|a| a.to_lowercase());
    let wanted = |what: &str| only.as_ref().is_none_or(|o| what.to_lowercase().contains(o.as_str()));
    let budget = if quick { Duration::from_millis(500) } else { Duration::from_secs(3) };
    let engine = Arc::new(
        AdapterEngine::new(EngineOptions {
            // `BRO_PERF_MAP=1 perf record …` names the adapters' functions in the profile.
            perf_map: std::env::var_os("BRO_PERF_MAP").is_some(),
            ..EngineOptions::default()
        })
        .expect("engine"),
    );
    let wasm = guest("medcom");
    let component = engine.compile("medcom", &wasm).expect("compiles");
    let adapter = LoadedAdapter::load(engine.clone(), "medcom", &component, AdapterLimits::default(), String::new())
        .expect("loads");
    println!("| translation | interleaved | WASM per call | native per call | WASM / native |");
    println!("|---|---:|---:|---:|---:|");
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
        batches.push(native);
        let name = format!("{what}, {} bytes → canonical", body.len());
        if !wanted(&name) {
            continue;
        }
        let per = if body.len() > 50_000 { 5 } else { 50 };
        let figures = interleaved(
            budget,
            per,
            || {
                black_box(adapter.to_canonical("bench", &message).expect("runs"));
            },
            || {
                black_box(medcom::translate(black_box(&body), &meta).expect("translates").encode_to_vec());
            },
        );
        row(&name, &figures);
    }
    // The reply (with its PDF) rendered back, to each target that carries attachments.
    let reply = &batches[2];
    let reply_bytes = reply.encode_to_vec();
    for target in ["fhir+json", "fhir+xml"] {
        let rendered = adapter.from_canonical("bench", &reply_bytes, target).expect("runs").result.expect("renders");
        let native = medcom::render(reply, target).expect("renders");
        assert_eq!(rendered.body, native.body, "the component and the native build agree on {target}");
        let name = format!("canonical reply + PDF → {target}");
        if !wanted(&name) {
            continue;
        }
        let figures = interleaved(
            budget,
            5,
            || {
                black_box(adapter.from_canonical("bench", &reply_bytes, target).expect("runs"));
            },
            || {
                let batch =
                    bro_adapter_sdk::proto::AdapterBatch::decode(black_box(reply_bytes.as_slice())).expect("decodes");
                black_box(medcom::render(&batch, target).expect("renders"));
            },
        );
        row(&name, &figures);
    }
    if !wanted("canonical letter → xdis91") {
        return;
    }
    let letter = &batches[0];
    let letter_bytes = letter.encode_to_vec();
    let figures = interleaved(
        budget,
        50,
        || {
            black_box(adapter.from_canonical("bench", &letter_bytes, "xdis91").expect("runs"));
        },
        || {
            let batch =
                bro_adapter_sdk::proto::AdapterBatch::decode(black_box(letter_bytes.as_slice())).expect("decodes");
            black_box(medcom::render(&batch, "xdis91").expect("renders"));
        },
    );
    row("canonical letter → xdis91", &figures);
}
