//! Helpers shared by the fhir adapter's tests: the fixtures, reading them
//! with the metadata `bro adapter test` passes (errors as it prints them,
//! from the SDK's `testing`), and edited copies of a fixture.

#![allow(dead_code)]

use bro_adapter_sdk::proto::{self, case_event::Kind};
use bro_adapter_sdk::testing::{self, metadata as meta};

/// The synthetic people of the fixtures (CPR numbers that fail modulus 11,
/// a replacement CPR number, invented names).
pub const PEOPLE: &[&str] = &[
    "2207921238",
    "220792-1238",
    "0101901234",
    "0101A90X12",
    "Mette",
    "Testesen",
    "Jonas",
    "Prøvesen",
    "Sofie",
    "Behandlersen",
    "Rådgiversen",
    "Lægesen",
];

/// The adapter's fixtures directory.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    testing::fixture(FIXTURES, name)
}

/// A message that must translate, with `metadata`.
pub fn read_with(body: &[u8], metadata: &[(&str, &str)]) -> proto::AdapterBatch {
    testing::accepted(fhir::translate(body, &meta(metadata)))
}

/// A message that must translate, with the transport message id `bro adapter test` gives.
pub fn read(body: &[u8]) -> proto::AdapterBatch {
    read_with(body, &[("message-id", "transport-id")])
}

/// The error of a message that must not translate; it must not carry a CPR
/// number or a name.
pub fn error_with(body: &[u8], metadata: &[(&str, &str)]) -> String {
    testing::refused(fhir::translate(body, &meta(metadata)), PEOPLE)
}

/// The error of a message that must not translate, with a transport message id.
pub fn error(body: &[u8]) -> String {
    error_with(body, &[("message-id", "transport-id")])
}

/// A fixture with `edit` applied to its JSON value.
pub fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap_or_default();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The appointment of an `appointment_scheduled` event.
pub fn scheduled(e: &proto::CaseEvent) -> Option<&proto::Appointment> {
    match &e.kind {
        Some(Kind::AppointmentScheduled(s)) => s.appointment.as_ref(),
        _ => None,
    }
}

/// The appointment id and reason of an `appointment_cancelled` event.
pub fn cancelled(e: &proto::CaseEvent) -> Option<(&str, &str)> {
    match &e.kind {
        Some(Kind::AppointmentCancelled(c)) => Some((c.appointment_id.as_str(), c.reason.as_str())),
        _ => None,
    }
}

/// The batch of a `NAME.canonical.json` fixture (proto3 JSON, as `bro adapter test` reads it).
pub fn canonical(name: &str) -> proto::AdapterBatch {
    let text = String::from_utf8(fixture(name)).unwrap_or_default();
    testing::batch_from_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}
