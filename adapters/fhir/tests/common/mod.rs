//! Helpers shared by the fhir adapter's tests: the fixtures, reading them
//! with the metadata `bro adapter test` passes, errors as it prints them,
//! and edited copies of a fixture.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::prost::Message as _;
use bro_adapter_sdk::proto::{self, case_event::Kind};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

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

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Transport metadata.
pub fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
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

/// A message that must translate, with `metadata`.
pub fn read_with(body: &[u8], metadata: &[(&str, &str)]) -> proto::AdapterBatch {
    match fhir::translate(body, &meta(metadata)) {
        Ok(b) => b,
        Err(e) => panic!("{}", describe(&e)),
    }
}

/// A message that must translate, with the transport message id `bro adapter test` gives.
pub fn read(body: &[u8]) -> proto::AdapterBatch {
    read_with(body, &[("message-id", "transport-id")])
}

/// The error of a message that must not translate; it must not carry a CPR
/// number or a name.
pub fn error_with(body: &[u8], metadata: &[(&str, &str)]) -> String {
    match fhir::translate(body, &meta(metadata)) {
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
