//! Helpers shared by the jobcenter adapter's tests: the fixtures, reading
//! them (errors as `bro adapter test` prints them, from the SDK's
//! `testing`), and edited documents.

#![allow(dead_code)]

use bro_adapter_sdk::{proto, testing};

/// The synthetic people of the fixtures (CPR numbers that fail modulus 11).
pub const PEOPLE: &[&str] =
    &["0507880000", "050788-0000", "1206851000", "Mette", "Testesen", "Jonas", "Prøvesen", "Ida Jobsen", "Bo Jobsen"];

/// The adapter's fixtures directory.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    testing::fixture(FIXTURES, name)
}

/// Every `NAME.in.json` fixture.
pub fn inputs() -> Vec<String> {
    testing::fixture_names(FIXTURES, ".in.json")
}

/// A document that must translate.
pub fn read(body: &[u8]) -> proto::AdapterBatch {
    testing::accepted(jobcenter::translate(body))
}

/// The error of a document that must not translate; it must not carry a
/// CPR number or a name.
pub fn error(body: &[u8]) -> String {
    testing::refused(jobcenter::translate(body), PEOPLE)
}

/// The full fixture with `edit` applied to its JSON value.
pub fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("plan-og-moeder.in.json")).unwrap_or_default();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The batch of a `NAME.canonical.json` fixture (proto3 JSON, as `bro adapter test` reads it).
pub fn canonical(name: &str) -> proto::AdapterBatch {
    let text = String::from_utf8(fixture(name)).unwrap_or_default();
    testing::batch_from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}
