//! The `sdi` adapter: the children's case journal as it publishes case
//! changes through KOMBIT's Beskedfordeler — a `Haendelsesbesked` envelope
//! (`urn:oio:besked:kuvert:1.0`) carrying an SF1470 v6 Sag registration
//! (`RegistreringBesked`, Sags- og Dokumentindeks) — to canonical §§ 75–79
//! case events, and back (target `haendelsesbesked`).
//!
//! The registration names its parties (`Sagspart` relations: the child and
//! the custody holders by `urn:oio:cpr-nr:` URN), its owner and its KLE
//! class; the barnets-lov events, which SF1470 has no place for, travel in
//! its `LokalUdvidelseListe` as `bro:Sagshaendelse` (namespace [`BRO_NS`],
//! schema `schema/bro-sdi-udvidelse.xsd`). The custody holders become the
//! batch's `subjects`, and every custody holder an event names becomes
//! `subjects/N`. Registered identifiers (Beskedtype, the sending system…)
//! come from the system's settings (`settings`). The format is documented
//! element by element in `adapters/sdi/README.md`.

pub mod codes;
pub mod ids;
pub mod read;
pub mod settings;
pub mod time;
pub mod write;
pub mod xml;

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, MessageType, SystemKind, proto};

/// The adapter.
pub struct Sdi;

/// The Beskedfordeler envelope's namespace.
pub const KUVERT_NS: &str = "urn:oio:besked:kuvert:1.0";
/// OIO's shared types: identifiers, time stamps, `Virkning`.
pub const SAGDOK_NS: &str = "urn:oio:sagdok:3.0.0";
/// SF1470 v6's Sag: `RegistreringBesked`, `Registrering` and its lists.
pub const SAG_NS: &str = "urn:oio:sts:sagdok:sag:6";
/// SF1470 v6's general definitions: relations and `LokalUdvidelseListe`.
pub const GD_NS: &str = "urn:oio:sts:generelledefinitioner:6";
/// bro's extension of the registration: the barnets-lov events and names.
pub const BRO_NS: &str = "urn:bro:sdi:udvidelse:1.0";
/// The Beskedfordeler's delivery operation, which may wrap the envelope.
pub const STS_NS: &str = "urn:oio:sts:1.0.0";

/// A person's URN prefix.
pub const CPR_URN: &str = "urn:oio:cpr-nr:";
/// An organisation's URN prefix.
pub const CVR_URN: &str = "urn:oio:cvr-nr:";
/// A KLE subject's URN prefix.
pub const KLE_URN: &str = "urn:oio:kle:";
/// The prefix of bro's relation roles (`Rolle` of `Sagspart`, `Sagsaktoer`, `Sagsklasse`).
pub const ROLE_URN: &str = "urn:bro:sdi:rolle:";

/// The one target `from-canonical` writes.
pub const TARGET: &str = "haendelsesbesked";
/// The content type of what it writes.
pub const CONTENT_TYPE: &str = "application/xml; charset=utf-8";

/// A CPR number as ten digits: trimmed, one hyphen after the date allowed (the SDK's).
pub use bro_adapter_sdk::cpr::normalise as normalise_cpr;

/// Whether `text` is a bro id (`a-z`, `0-9`, `-`, `_`; 1 to 63, starting with
/// a letter or digit), as party ids, plan ids and case ids must be.
pub fn is_id(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `text` is a KLE number `dd.dd.dd`.
pub fn is_kle(text: &str) -> bool {
    text.len() == 8
        && text.bytes().enumerate().all(|(i, b)| if i == 2 || i == 5 { b == b'.' } else { b.is_ascii_digit() })
}

/// Translates a Haendelsesbesked to a canonical batch.
pub fn translate(body: &[u8]) -> Result<proto::AdapterBatch, AdapterError> {
    read::read(body)
}

/// Renders a canonical batch for `target` (only `haendelsesbesked`).
pub fn render(batch: &proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
    if target != TARGET {
        return Err(AdapterError::Unsupported(format!(
            "target {}; the sdi adapter writes {TARGET}",
            xml::quoted(target)
        )));
    }
    Ok(Message { content_type: CONTENT_TYPE.into(), body: write::write(batch)?, metadata: Vec::new() })
}

impl Adapter for Sdi {
    fn describe() -> AdapterInfo {
        let besked = MessageType {
            name: "Haendelsesbesked".into(),
            content_types: vec!["application/xml".into(), "text/xml".into()],
        };
        AdapterInfo {
            name: "sdi".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Journal,
            reads: vec![besked.clone()],
            writes: vec![besked],
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

bro_adapter_sdk::export_adapter!(Sdi);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpr_numbers_and_ids_are_recognised() {
        assert_eq!(normalise_cpr(" 010190-0000 ").as_deref(), Some("0101900000"));
        assert_eq!(normalise_cpr("01019-00000"), None);
        assert_eq!(normalise_cpr("010190000"), None);
        assert!(is_id("foraelder-1") && is_id("mor") && !is_id("forælder-1") && !is_id("-x") && !is_id(""));
        assert!(is_kle("27.24.00") && !is_kle("27.24.0") && !is_kle("27-24-00"));
    }
}
