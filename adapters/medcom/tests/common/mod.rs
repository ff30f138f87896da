//! Helpers shared by the medcom adapter's tests: the fixtures, reading them,
//! and taking the one correspondence out of a batch.

#![allow(dead_code)]

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, case_event::Kind};
pub use bro_adapter_sdk::testing::{describe, metadata as meta};

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    bro_adapter_sdk::testing::fixture(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"), name)
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

/// The error of a translation that must fail.
pub fn error(result: Result<proto::AdapterBatch, AdapterError>) -> String {
    bro_adapter_sdk::testing::refused(result, &[])
}
