//! The `medcom` adapter: MedCom correspondence between the children's
//! authority and the health sector (psychiatry, hospitals, GPs) to canonical
//! `correspondence_recorded` events, and back.
//!
//! It reads XDIS91 letters (OIOXML, windows-1252 or ISO-8859-1) and FHIR
//! CareCommunication 5.0 messages (XML and JSON), telling them apart by their
//! bytes, not by the content type; it writes `fhir+xml`, `fhir+json` and
//! `xdis91`. Every message becomes one batch: the patient in `subjects`, one
//! event dated the Danish day the message was sent, and the correspondence
//! with `custody_holder = "subjects/0"`. The sector comes from the transport
//! metadata `sector` (the message does not say), else health.

pub mod fhir_read;
pub mod fhir_tree;
pub mod fhir_write;
pub mod ids;
pub mod oioxml;
pub mod time;
pub mod xdis91_write;
pub mod xml;

use bro_adapter_sdk::proto::{self, case_event::Kind};
use bro_adapter_sdk::{
    Adapter, AdapterError, AdapterInfo, Message, MessageType, SystemKind, invalid, malformed, metadata,
};

/// The adapter.
pub struct Medcom;

/// The family name written where MedCom requires one: the canonical model
/// carries no patient name.
pub const NAME_NOT_KNOWN: &str = "ukendt";

/// The content type of each target.
pub const FHIR_XML: &str = "application/fhir+xml; fhir-version=4.0";
/// FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json; fhir-version=4.0";
/// OIOXML XDIS91.
pub const OIOXML: &str = "application/xml; charset=windows-1252";

/// What a reader found in one message.
pub struct Read {
    /// The patient.
    pub person: proto::PersonIdentifier,
    /// The message's own id (empty if it has none).
    pub message_id: String,
    /// The correspondence, without sector, person and custody holder.
    pub correspondence: proto::Correspondence,
}

/// A CPR number as ten digits: trimmed, one hyphen after the date allowed (the SDK's).
pub use bro_adapter_sdk::cpr::normalise as normalise_cpr;

fn sector(metadata_value: Option<&str>) -> Result<proto::Sector, AdapterError> {
    Ok(match metadata_value {
        None | Some("health") => proto::Sector::Health,
        Some("psychiatry") => proto::Sector::Psychiatry,
        Some("addiction-treatment") => proto::Sector::AddictionTreatment,
        Some("jobcentre") => proto::Sector::Jobcentre,
        Some("other") => proto::Sector::Other,
        Some(other) => {
            return Err(invalid(
                "metadata.sector",
                format!(
                    "unknown sector {:?}; expected jobcentre, psychiatry, addiction-treatment, health or other",
                    xml::echo(other, 40)
                ),
            ));
        }
    })
}

/// Reads one message, whatever its form.
fn read(body: &[u8]) -> Result<Read, AdapterError> {
    let unmarked = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let Some(start) = unmarked.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(malformed("1:1", "the message body is empty"));
    };
    let rest = unmarked.get(start..).unwrap_or_default();
    match rest.first() {
        Some(b'{') => fhir_read::read_json(unmarked),
        Some(b'<') | Some(0xfe | 0xff) => {
            let text = xml::decode(body)?;
            let doc = xml::parse(&text)?;
            let root = doc.root_element();
            match root.tag_name().namespace() {
                Some(fhir_tree::FHIR_NS) => fhir_read::read_xml(&doc),
                Some(ns) if oioxml::schema_version(ns).is_some() => oioxml::read(&doc),
                ns => Err(AdapterError::Unsupported(format!(
                    "XML {} in namespace {:?} is not a MedCom message; the medcom adapter reads XDIS91 (OIOXML) and CareCommunication (FHIR)",
                    xml::echo(root.tag_name().name(), 40),
                    xml::echo(ns.unwrap_or("none"), 80)
                ))),
            }
        }
        _ if rest.starts_with(b"UNA") || rest.starts_with(b"UNB") => Err(AdapterError::Unsupported(
            "MedCom EDIFACT; the medcom adapter reads XDIS91 as OIOXML and CareCommunication as FHIR".into(),
        )),
        _ => Err(AdapterError::Unsupported(
            "a message that is neither XML nor JSON; the medcom adapter reads XDIS91 (OIOXML) and CareCommunication (FHIR)"
                .into(),
        )),
    }
}

/// Translates a MedCom message to a canonical batch. `metadata` may carry
/// `message-id` (used only when the message has no id of its own) and `sector`.
pub fn translate(body: &[u8], meta: &[(String, String)]) -> Result<proto::AdapterBatch, AdapterError> {
    let read = read(body)?;
    let sector = sector(metadata(meta, "sector"))?;
    let message_id = if read.message_id.is_empty() {
        metadata(meta, "message-id")
            .ok_or_else(|| invalid("MessageHeader.id", "the message has no id and the transport gave none"))?
            .to_owned()
    } else {
        read.message_id
    };
    let mut c = read.correspondence;
    c.message_id.clone_from(&message_id);
    c.sector = sector as i32;
    c.custody_holder = "subjects/0".into();
    c.person = Some(read.person.clone());
    let sent = c.send_time.ok_or_else(|| invalid("send_time", "the time the message was sent is required"))?;
    let day = time::copenhagen_date(&sent);
    let event = proto::CaseEvent {
        occurred_on: Some(proto::Date { year: day.year, month: day.month as i32, day: day.day as i32 }),
        kind: Some(Kind::CorrespondenceRecorded(proto::CorrespondenceRecorded { correspondence: Some(c) })),
        ..Default::default()
    };
    Ok(proto::AdapterBatch {
        subjects: vec![read.person],
        case: String::new(),
        source_message_id: message_id,
        events: vec![event],
        parties: Vec::new(),
        holistic_plan: None,
        settings: Default::default(),
        addressed_municipality: String::new(),
    })
}

/// The one correspondence of a batch, ready to write.
pub struct Outgoing<'a> {
    /// The correspondence.
    pub correspondence: &'a proto::Correspondence,
    /// The patient: `person`, or the subject the custody holder names.
    pub person: proto::PersonIdentifier,
    /// Who sends it.
    pub sender: &'a proto::Organisation,
    /// Who receives it.
    pub receiver: &'a proto::Organisation,
    /// When it is sent: `send_time`, else midnight of the event's day.
    pub send_time: prost_types::Timestamp,
    /// The correspondence's path in the batch, for errors.
    pub path: String,
}

/// An invalid-content error at `path.field`.
pub fn invalid_at(path: &str, field: &str, description: &str) -> AdapterError {
    invalid(format!("{path}.{field}"), description)
}

/// Whether a timestamp lies in protobuf's range (years 1 to 9999) with valid nanos.
fn valid_time(t: &Option<prost_types::Timestamp>) -> bool {
    t.is_none_or(|t| (-62_135_596_800..=253_402_300_799).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos))
}

fn outgoing<'a>(batch: &'a proto::AdapterBatch) -> Result<Outgoing<'a>, AdapterError> {
    let found: Vec<(usize, &proto::CaseEvent, Option<&proto::Correspondence>)> = batch
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            Some(Kind::CorrespondenceRecorded(r)) => Some((i, e, r.correspondence.as_ref())),
            _ => None,
        })
        .collect();
    let (i, event, correspondence) = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(
                "events",
                "no correspondence_recorded event; the medcom adapter writes correspondence",
            ));
        }
        many => {
            return Err(invalid(
                "events",
                format!("{} correspondence_recorded events; a MedCom message carries exactly one", many.len()),
            ));
        }
    };
    let path = format!("events[{i}].correspondenceRecorded.correspondence");
    let c = correspondence.ok_or_else(|| invalid(&path, "is missing"))?;
    let person = match &c.person {
        Some(p) if !p.value.is_empty() => p.clone(),
        _ => {
            let n = c.custody_holder.strip_prefix("subjects/").and_then(|n| n.parse::<usize>().ok());
            n.and_then(|n| batch.subjects.get(n)).cloned().ok_or_else(|| {
                invalid_at(&path, "person", "no person: neither `person` nor a custody holder `subjects/N` that exists")
            })?
        }
    };
    match person.kind() {
        proto::PersonIdentifierKind::Cpr if normalise_cpr(&person.value).as_deref() != Some(person.value.as_str()) => {
            return Err(invalid_at(&path, "person", "the patient identifier is not ten digits"));
        }
        proto::PersonIdentifierKind::Unspecified => {
            return Err(invalid_at(&path, "person.kind", "CPR or replacement CPR is required"));
        }
        _ => {}
    }
    let party = |org: &'a Option<proto::Organisation>, who: &str| {
        org.as_ref()
            .filter(|o| !o.ean.is_empty() || !o.sor.is_empty())
            .ok_or_else(|| invalid_at(&path, who, "an organisation with an EAN/GLN number or a SOR code is required"))
    };
    let sender = party(&c.sender, "sender")?;
    let receiver = party(&c.receiver, "receiver")?;
    if c.message_id.is_empty() {
        return Err(invalid_at(&path, "messageId", "is required"));
    }
    if c.entries.is_empty() {
        return Err(invalid_at(&path, "entries", "at least one text or attachment is required"));
    }
    // Times are formatted with arithmetic that assumes the protobuf range.
    if !valid_time(&c.send_time) {
        return Err(invalid_at(&path, "sendTime", "is outside the years 1 to 9999"));
    }
    for (n, e) in c.entries.iter().enumerate() {
        let attached = e.attachment.as_ref().and_then(|a| a.create_time);
        if !valid_time(&e.write_time) || !valid_time(&attached) {
            return Err(invalid_at(&path, &format!("entries[{n}]"), "has a time outside the years 1 to 9999"));
        }
    }
    let send_time = match (c.send_time, &event.occurred_on) {
        (Some(t), _) => t,
        (None, Some(d)) => {
            let ymd = time::Ymd { year: d.year, month: d.month.max(0) as u32, day: d.day.max(0) as u32 };
            time::parse_date(&time::format_date(ymd))
                .map(|ymd| time::from_copenhagen(ymd, 0, 0, 0))
                .ok_or_else(|| invalid(format!("events[{i}].occurredOn"), "is not a date"))?
        }
        (None, None) => return Err(invalid_at(&path, "sendTime", "is required")),
    };
    Ok(Outgoing { correspondence: c, person, sender, receiver, send_time, path })
}

/// A writer of one target format.
type Writer = fn(&Outgoing<'_>) -> Result<Vec<u8>, AdapterError>;

/// Renders a canonical batch for `target`: `fhir+xml`, `fhir+json` or `xdis91`.
pub fn render(batch: &proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
    let (content_type, write): (&str, Writer) = match target {
        "fhir+xml" => (FHIR_XML, |o| fhir_write::bundle(o).map(|b| b.to_xml().into_bytes())),
        "fhir+json" => (FHIR_JSON, |o| fhir_write::bundle(o).map(|b| b.to_json().into_bytes())),
        "xdis91" => (OIOXML, xdis91_write::write),
        other => {
            return Err(AdapterError::Unsupported(format!(
                "target {:?}; the medcom adapter writes fhir+xml, fhir+json and xdis91",
                xml::echo(other, 40)
            )));
        }
    };
    let out = outgoing(batch)?;
    Ok(Message { content_type: content_type.into(), body: write(&out)?, metadata: Vec::new() })
}

impl Adapter for Medcom {
    fn describe() -> AdapterInfo {
        let xdis91 =
            MessageType { name: "XDIS91".into(), content_types: vec!["application/xml".into(), "text/xml".into()] };
        let care_communication = MessageType {
            name: "CareCommunication".into(),
            content_types: vec![
                "application/fhir+xml".into(),
                "application/fhir+json".into(),
                "application/xml".into(),
                "application/json".into(),
            ],
        };
        AdapterInfo {
            name: "medcom".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Health,
            reads: vec![xdis91.clone(), care_communication.clone()],
            writes: vec![care_communication, xdis91],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        translate(&message.body, &message.metadata)
    }

    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
        render(&batch, target)
    }
}

bro_adapter_sdk::export_adapter!(Medcom);
