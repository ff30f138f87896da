//! The golden fixtures, natively: the files `bro adapter test` runs, found,
//! run and compared the same way (canonical batches as proto3 JSON through
//! the descriptors of `proto/bro/v1/`), so they are checked in `cargo test`
//! too. `BLESS=1 cargo test --test golden` rewrites the expected files that differ.

mod common;

use std::path::{Path, PathBuf};

use bro_adapter_sdk::prost::Message as _;
use bro_adapter_sdk::proto;
use common::{batch_descriptor, describe};
use prost_reflect::{DynamicMessage, MessageDescriptor};

/// One fixture: input, expected output, direction.
struct Fixture {
    name: String,
    input: PathBuf,
    expected: PathBuf,
    forward: bool,
}

/// The fixtures as `bro adapter test` finds them.
fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    entries.sort();
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    for path in &entries {
        let file = file_name(path);
        if let Some((stem, _)) = file.split_once(".in.") {
            let expected = dir.join(format!("{stem}.expected.json"));
            out.push(Fixture { name: stem.to_owned(), input: path.clone(), expected, forward: true });
        }
        if let Some(stem) = file.strip_suffix(".canonical.json") {
            let forward_too = entries.iter().any(|q| file_name(q).starts_with(&format!("{stem}.in.")));
            let expected = entries
                .iter()
                .find(|p| {
                    let f = file_name(p);
                    f.starts_with(&format!("{stem}.expected.")) && !(forward_too && f.ends_with(".json"))
                })
                .cloned()
                .unwrap_or_else(|| dir.join(format!("{stem}.expected.xml")));
            out.push(Fixture { name: stem.to_owned(), input: path.clone(), expected, forward: false });
        }
    }
    out
}

/// What the adapter makes of a fixture's input, as `bro adapter test` shows it.
fn actual(f: &Fixture, descriptor: &MessageDescriptor) -> Vec<u8> {
    let body = std::fs::read(&f.input).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    if f.forward {
        return match fhir::translate(&body, &[("message-id".to_owned(), f.name.clone())]) {
            Ok(batch) => {
                let message = DynamicMessage::decode(descriptor.clone(), batch.encode_to_vec().as_slice())
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name));
                // Through a `Value`, as the CLI does: its members come out sorted.
                let value = serde_json::to_value(&message).unwrap_or_else(|e| panic!("{}: {e}", f.name));
                let json = serde_json::to_string_pretty(&value).unwrap_or_else(|e| panic!("{}: {e}", f.name));
                format!("{json}\n").into_bytes()
            }
            Err(e) => format!("{{\"error\": {}}}\n", serde_json::Value::String(describe(&e))).into_bytes(),
        };
    }
    let target = std::fs::read_to_string(f.input.with_file_name(format!("{}.target", f.name))).unwrap_or_default();
    let text = String::from_utf8(body).unwrap_or_default();
    let mut de = serde_json::Deserializer::from_str(&text);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut de)
        .unwrap_or_else(|e| panic!("{}: not a bro.v1.AdapterBatch in JSON: {e}", f.name));
    let batch =
        proto::AdapterBatch::decode(message.encode_to_vec().as_slice()).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    match fhir::render(&batch, target.trim()) {
        Ok(m) => m.body,
        Err(e) => format!("error: {}\n", describe(&e)).into_bytes(),
    }
}

#[test]
fn every_golden_fixture_passes() {
    let descriptor = batch_descriptor();
    let bless = std::env::var_os("BLESS").is_some();
    let mut failed = Vec::new();
    let all = fixtures();
    for f in &all {
        let actual = actual(f, &descriptor);
        let expected = std::fs::read(&f.expected).unwrap_or_default();
        let same = if f.forward {
            let a: serde_json::Value = serde_json::from_slice(&actual).unwrap_or_default();
            let e: serde_json::Value = serde_json::from_slice(&expected).unwrap_or_default();
            a == e
        } else {
            actual.trim_ascii_end() == expected.trim_ascii_end()
        };
        if !same && bless {
            std::fs::write(&f.expected, &actual).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        } else if !same {
            failed.push(format!("{}:\n{}", f.name, String::from_utf8_lossy(&actual)));
        }
    }
    assert!(failed.is_empty(), "fixtures that differ:\n{}", failed.join("\n"));
    // The count `bro adapter test` reports (gateway/cli/tests/adapter_cli.rs).
    assert_eq!(all.len(), 15);
}
