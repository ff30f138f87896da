//! Helpers shared by the medcom adapter's tests: the fixtures, reading them,
//! and taking the one correspondence out of a batch.

#![allow(dead_code)]

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, case_event::Kind};

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Transport metadata with a message id.
pub fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Reads a fixture with the metadata `bro adapter test` passes.
pub fn read(name: &str) -> Result<proto::AdapterBatch, AdapterError> {
    let stem = name.split(".in.").next().unwrap_or(name);
    medcom::translate(&fixture(name), &meta(&[("message-id", stem)]))
}

/// Reads a fixture that must translate.
pub fn batch(name: &str) -> proto::AdapterBatch {
    match read(name) {
        Ok(b) => b,
        Err(e) => panic!("{name}: {}", describe(&e)),
    }
}

/// The correspondence of a batch's one event.
pub fn correspondence(batch: &proto::AdapterBatch) -> proto::Correspondence {
    assert_eq!(batch.events.len(), 1);
    match batch.events.first().and_then(|e| e.kind.clone()) {
        Some(Kind::CorrespondenceRecorded(r)) => r.correspondence.unwrap_or_default(),
        other => panic!("not a correspondence_recorded event: {other:?}"),
    }
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

/// The error of a translation that must fail.
pub fn error(result: Result<proto::AdapterBatch, AdapterError>) -> String {
    match result {
        Ok(b) => panic!("translated, but should not have: {} events", b.events.len()),
        Err(e) => describe(&e),
    }
}
