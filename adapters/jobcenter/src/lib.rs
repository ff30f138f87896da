//! The `jobcenter` adapter: the JSON document a Momentum-style jobcentre
//! REST API returns for one citizen — the jobcentre, the caseworker, the
//! citizen's plan (goals and activities) and meetings — to canonical
//! sector-plan and appointment events, and back (target `momentum+json`).
//!
//! A document becomes one batch: the citizen in `subjects`, one
//! `sector_plan_recorded` (sector jobcentre) when it has a plan, and one
//! `appointment_scheduled` or `appointment_cancelled` per meeting, all dated
//! the Danish day of `changedAt` and with `custody_holder = "subjects/0"`.
//! The format is documented field by field in `adapters/jobcenter/README.md`.
//!
//! Outbound, a batch carrying a § 78 holistic plan (the jobcentre's consented
//! view of it) is written as a `helhedsplan` document instead ([`holistic`]).

pub mod holistic;
pub mod ids;
pub mod json;
pub mod read;
pub mod time;
pub mod write;

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, MessageType, SystemKind, proto};

/// The adapter.
pub struct Jobcenter;

/// The one target `from-canonical` writes.
pub const TARGET: &str = "momentum+json";
/// The content type of what it writes.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// The activity types (`plan.activities[].type`) a document may name.
pub const ACTIVITY_TYPES: &[&str] =
    &["virksomhedspraktik", "løntilskud", "mentor", "kursus", "uddannelse", "behandling", "nytteindsats"];

/// Weekly hours from which an activity is full-time.
pub const FULL_TIME_HOURS: f64 = 30.0;
/// The tag a full-time activity carries.
pub const FULL_TIME_TAG: &str = "full-time";

/// The activity types as a list for an error: `a, b or c`.
pub fn known_types() -> String {
    match ACTIVITY_TYPES.split_last() {
        Some((last, init)) if !init.is_empty() => format!("{} or {last}", init.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    }
}

/// Translates a Momentum document to a canonical batch.
pub fn translate(body: &[u8]) -> Result<proto::AdapterBatch, AdapterError> {
    read::read(body)
}

/// Renders a canonical batch for `target` (only `momentum+json`): a holistic
/// plan view as a `helhedsplan` document, events as a citizen document.
pub fn render(batch: &proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
    if target != TARGET {
        return Err(AdapterError::Unsupported(format!(
            "target {}; the jobcenter adapter writes {TARGET}",
            json::quoted(target)
        )));
    }
    let body = if batch.holistic_plan.is_some() { holistic::write(batch)? } else { write::write(batch)? };
    Ok(Message { content_type: CONTENT_TYPE.into(), body, metadata: Vec::new() })
}

impl Adapter for Jobcenter {
    fn describe() -> AdapterInfo {
        let document = MessageType {
            name: "momentum-citizen".into(),
            content_types: vec!["application/json".into(), "application/vnd.momentum+json".into()],
        };
        let plan = MessageType { name: "momentum-helhedsplan".into(), content_types: vec!["application/json".into()] };
        AdapterInfo {
            name: "jobcenter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Jobcentre,
            reads: vec![document.clone()],
            writes: vec![document, plan],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        // The bytes decide, not the content type or the transport metadata.
        translate(&message.body)
    }

    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
        render(&batch, target)
    }
}

bro_adapter_sdk::export_adapter!(Jobcenter);
