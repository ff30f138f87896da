//! Helpers shared by the jobcenter adapter's tests: the fixtures, reading
//! them, errors as `bro adapter test` prints them, and small documents.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::prost::Message as _;
use bro_adapter_sdk::proto;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// The synthetic people of the fixtures (CPR numbers that fail modulus 11).
pub const PEOPLE: &[&str] =
    &["0507880000", "050788-0000", "1206851000", "Mette", "Testesen", "Jonas", "Prøvesen", "Ida Jobsen", "Bo Jobsen"];

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The text of `fixtures/NAME`.
pub fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every `NAME.in.json` fixture.
pub fn inputs() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".in.json"));
    names.sort();
    names
}

/// An error as `bro adapter test` prints it.
pub fn describe(e: &AdapterError) -> String {
    match e {
        AdapterError::Malformed(m) => format!("malformed input at {}: {}", m.location, m.description),
        AdapterError::Unsupported(t) => format!("unsupported message type: {t}"),
        AdapterError::Invalid(v) => {
            let list: Vec<String> = v.iter().map(|f| format!("{}: {}", f.field, f.description)).collect();
            format!("invalid content: {}", list.join("; "))
        }
        AdapterError::Internal(m) => format!("internal adapter error: {m}"),
    }
}

/// A document that must translate.
pub fn read(body: &[u8]) -> proto::AdapterBatch {
    match jobcenter::translate(body) {
        Ok(b) => b,
        Err(e) => panic!("{}", describe(&e)),
    }
}

/// The error of a document that must not translate; it must not carry a
/// CPR number or a name.
pub fn error(body: &[u8]) -> String {
    match jobcenter::translate(body) {
        Ok(b) => panic!("translated, but should not have: {} events", b.events.len()),
        Err(e) => {
            let text = describe(&e);
            for p in PEOPLE {
                assert!(!text.contains(p), "{text:?} carries {p}");
            }
            text
        }
    }
}

/// The full fixture with `edit` applied to its JSON value.
pub fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("plan-og-moeder.in.json")).unwrap_or_default();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap_or_default()
}

/// `bro.v1.AdapterBatch`, from the descriptors of `proto/bro/v1/` (as the CLI has them).
pub fn batch_descriptor() -> MessageDescriptor {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(root.join("bro/v1")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    let files: Vec<PathBuf> = files.iter().filter_map(|p| p.strip_prefix(&root).ok().map(Path::to_path_buf)).collect();
    let set = protox::compile(&files, [&root]).unwrap_or_else(|e| panic!("proto/ compiles: {e}"));
    let pool = DescriptorPool::from_file_descriptor_set(set).unwrap_or_else(|e| panic!("descriptors: {e}"));
    pool.get_message_by_name("bro.v1.AdapterBatch").unwrap_or_else(|| panic!("bro.v1.AdapterBatch"))
}

/// The batch of a `NAME.canonical.json` fixture (proto3 JSON, as `bro adapter test` reads it).
pub fn canonical(name: &str) -> proto::AdapterBatch {
    let text = String::from_utf8(fixture(name)).unwrap_or_default();
    let mut de = serde_json::Deserializer::from_str(&text);
    let message = DynamicMessage::deserialize(batch_descriptor(), &mut de)
        .unwrap_or_else(|e| panic!("{name}: not a bro.v1.AdapterBatch in JSON: {e}"));
    proto::AdapterBatch::decode(message.encode_to_vec().as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"))
}
