//! The `fhir` adapter: HL7 FHIR R4 JSON for health-sector systems (regional
//! psychiatry, addiction treatment), both ways.
//!
//! - `to-canonical`: a FHIR `Bundle` (collection, searchset, transaction,
//!   batch or history) of `Appointment`s and the resources they reference, or
//!   one `Appointment` with contained resources → one batch: the patient as
//!   `subjects[0]`, one `appointment_scheduled` and/or `appointment_cancelled`
//!   per Appointment, in order, all dated the Danish day of the message.
//! - `from-canonical`, target `careplan+json`: a § 78 holistic plan as the
//!   recipient may see it → a FHIR `Bundle` of type collection with a
//!   `CarePlan` per covered parent and the Patients, CareTeam, Goals,
//!   Appointments, Schedules with busy Slots and DetectedIssues it refers to.
//!
//! The sector comes from the transport metadata `sector` (the message does
//! not say), else health. The format is documented field by field in
//! `adapters/fhir/README.md`.

pub mod ids;
pub mod json;
pub mod read;
pub mod time;
pub mod tree;
pub mod write;

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, MessageType, SystemKind, invalid, proto};

/// The adapter.
pub struct Fhir;

/// The one target `from-canonical` writes.
pub const TARGET: &str = "careplan+json";
/// The content type of what it writes.
pub const CONTENT_TYPE: &str = "application/fhir+json; fhir-version=4.0";

/// The CPR number's identifier system.
pub const CPR_SYSTEM: &str = "urn:oid:1.2.208.176.1.2";
/// The prefix of the regions' replacement CPR systems.
pub const REPLACEMENT_PREFIX: &str = "urn:oid:1.2.208.176.1.6.1.";
/// The replacement CPR system written (the canonical model does not keep the issuer's).
pub const REPLACEMENT_SYSTEM: &str = "urn:oid:1.2.208.176.1.6.1.1";
/// The SOR code's identifier system.
pub const SOR_SYSTEM: &str = "urn:oid:1.2.208.176.1.1";
/// The GLN (EAN location number) identifier system: GS1's OID.
pub const GLN_SYSTEM: &str = "urn:oid:1.3.88";
/// The GLN system MedCom uses, read as well.
pub const GLN_URL: &str = "https://www.gs1.org/gln";
/// The CVR number's identifier system (DK Core).
pub const CVR_SYSTEM: &str = "http://cvr.dk";
/// Other CVR systems read: DK Core's OID for CVR and the older HL7 OID.
pub const CVR_OIDS: &[&str] = &["urn:oid:1.3.184", "urn:oid:2.16.840.1.113883.2.24.1.1"];

/// The sector named by the transport metadata `sector`; health when absent.
pub fn sector(value: Option<&str>) -> Result<proto::Sector, AdapterError> {
    Ok(match value {
        None | Some("health") => proto::Sector::Health,
        Some("psychiatry") => proto::Sector::Psychiatry,
        Some("addiction-treatment") => proto::Sector::AddictionTreatment,
        Some("other") => proto::Sector::Other,
        Some(other) => {
            return Err(invalid(
                "metadata.sector",
                format!(
                    "unknown sector {}; expected psychiatry, addiction-treatment, health or other",
                    json::quoted(other)
                ),
            ));
        }
    })
}

/// Translates a FHIR message to a canonical batch. `metadata` may carry
/// `sector` and `message-id` (used only when the message has no id of its own).
pub fn translate(body: &[u8], metadata: &[(String, String)]) -> Result<proto::AdapterBatch, AdapterError> {
    read::read(body, metadata)
}

/// Renders a canonical batch for `target` (only `careplan+json`).
pub fn render(batch: &proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
    if target != TARGET {
        return Err(AdapterError::Unsupported(format!(
            "target {}; the fhir adapter writes {TARGET}",
            json::quoted(target)
        )));
    }
    Ok(Message { content_type: CONTENT_TYPE.into(), body: write::write(batch)?, metadata: Vec::new() })
}

impl Adapter for Fhir {
    fn describe() -> AdapterInfo {
        let appointments = MessageType {
            name: "fhir-appointments".into(),
            content_types: vec!["application/fhir+json".into(), "application/json".into()],
        };
        let care_plan =
            MessageType { name: "fhir-careplan".into(), content_types: vec!["application/fhir+json".into()] };
        AdapterInfo {
            name: "fhir".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Health,
            reads: vec![appointments],
            writes: vec![care_plan],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        // The bytes decide, not the content type.
        translate(&message.body, &message.metadata)
    }

    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
        render(&batch, target)
    }
}

bro_adapter_sdk::export_adapter!(Fhir);
