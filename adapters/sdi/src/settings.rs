//! The system's settings (`AdapterBatch.settings`, from `[[systems]]
//! adapter_settings`): the identifiers KOMBIT registers per deployment and
//! service agreement — the Beskedtype, the sending system, the security
//! classification, object types and actions — and the municipality's CVR.
//! None of them has a public value bro could default to, so a required one
//! that is missing is refused by name instead of invented.

use std::collections::BTreeMap;

use bro_adapter_sdk::{AdapterError, invalid};

use crate::ids;
use crate::xml::quoted;

/// `Filtreringsdata/Beskedtype`: required, a UUID (or URN).
pub const BESKEDTYPE: &str = "beskedtype";
/// `Filtreringsdata/BeskedAnsvarligAktoer`: the sending system; required, a UUID.
pub const BESKEDANSVARLIG_AKTOER: &str = "beskedansvarlig_aktoer";
/// `Leveranceinformation/Sikkerhedsklassificering`: required, a UUID (or URN).
pub const SIKKERHEDSKLASSIFICERING: &str = "sikkerhedsklassificering";
/// The municipality's CVR number (`TilladtModtager`, `ObjektAnsvarligMyndighed`).
pub const MYNDIGHED_CVR: &str = "myndighed_cvr";
/// `ObjektRegistrering/ObjektType` of the Sag: optional.
pub const OBJEKTTYPE_SAG: &str = "objekttype_sag";
/// `ObjektRegistrering/ObjektHandling` when the batch opens the case: optional.
pub const OBJEKTHANDLING_OPRETTET: &str = "objekthandling_oprettet";
/// `ObjektRegistrering/ObjektHandling` of any other change: optional.
pub const OBJEKTHANDLING_RETTET: &str = "objekthandling_rettet";
/// `RelateretObjekt/ObjektType` of a person; without it no `RelateretObjekt` is written.
pub const OBJEKTTYPE_PERSON: &str = "objekttype_person";

/// Every key the adapter reads, for the error naming an unknown one.
pub const KEYS: &[&str] = &[
    BESKEDTYPE,
    BESKEDANSVARLIG_AKTOER,
    SIKKERHEDSKLASSIFICERING,
    MYNDIGHED_CVR,
    OBJEKTTYPE_SAG,
    OBJEKTHANDLING_OPRETTET,
    OBJEKTHANDLING_RETTET,
    OBJEKTTYPE_PERSON,
];

/// An OIO `UnikId`: which child element carries the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnikId {
    /// `sagdok:UUIDIdentifikator`, lower case.
    Uuid(String),
    /// `sagdok:URNIdentifikator`.
    Urn(String),
}

/// The settings, checked.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `beskedtype`.
    pub beskedtype: Option<UnikId>,
    /// `beskedansvarlig_aktoer` (a UUID).
    pub beskedansvarlig_aktoer: Option<String>,
    /// `sikkerhedsklassificering`.
    pub sikkerhedsklassificering: Option<UnikId>,
    /// `myndighed_cvr` (eight digits).
    pub myndighed_cvr: Option<String>,
    /// `objekttype_sag`.
    pub objekttype_sag: Option<UnikId>,
    /// `objekthandling_oprettet`.
    pub objekthandling_oprettet: Option<UnikId>,
    /// `objekthandling_rettet`.
    pub objekthandling_rettet: Option<UnikId>,
    /// `objekttype_person`.
    pub objekttype_person: Option<UnikId>,
}

/// The error field of a setting.
fn field(key: &str) -> String {
    format!("settings.{key}")
}

/// A UUID (`urn:uuid:` allowed) or a URN of at most 255 characters, as `UnikIdType` holds.
fn unik(key: &str, value: &str) -> Result<UnikId, AdapterError> {
    let value = value.trim();
    if let Some(u) = ids::uuid_of(value) {
        return Ok(UnikId::Uuid(u));
    }
    if value.len() > 4 && value.len() <= 255 && value.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return Ok(UnikId::Urn(value.to_owned()));
    }
    Err(invalid(field(key), "is not a UUID or a URN (the identifier KOMBIT registered)"))
}

/// Whether `text` is a CVR number: eight digits.
pub fn is_cvr(text: &str) -> bool {
    text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit())
}

impl Settings {
    /// Reads and checks the settings; an unknown key is refused, naming the known ones.
    pub fn read<'a>(settings: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<Settings, AdapterError> {
        // Sorted, whatever map the proto code uses: the first unknown key is always the same one.
        let settings: BTreeMap<&String, &String> = settings.into_iter().collect();
        let keys: Vec<&String> = settings.keys().copied().collect();
        if let Some(unknown) = keys.iter().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(
                field(unknown),
                format!("{} is not a setting of the sdi adapter; it reads {}", quoted(unknown), KEYS.join(", ")),
            ));
        }
        let get = |key: &str| settings.get(&key.to_owned()).map(|v| v.trim()).filter(|v| !v.is_empty());
        let unik_of = |key: &str| get(key).map(|v| unik(key, v)).transpose();
        let beskedansvarlig_aktoer = get(BESKEDANSVARLIG_AKTOER)
            .map(|v| {
                ids::uuid_of(v).ok_or_else(|| {
                    invalid(field(BESKEDANSVARLIG_AKTOER), "is not a UUID (the sending system's registered UUID)")
                })
            })
            .transpose()?;
        let myndighed_cvr = get(MYNDIGHED_CVR)
            .map(|v| {
                let bare = v.strip_prefix(crate::CVR_URN).unwrap_or(v);
                is_cvr(bare)
                    .then(|| bare.to_owned())
                    .ok_or_else(|| invalid(field(MYNDIGHED_CVR), "is not a CVR number (eight digits)"))
            })
            .transpose()?;
        Ok(Settings {
            beskedtype: unik_of(BESKEDTYPE)?,
            beskedansvarlig_aktoer,
            sikkerhedsklassificering: unik_of(SIKKERHEDSKLASSIFICERING)?,
            myndighed_cvr,
            objekttype_sag: unik_of(OBJEKTTYPE_SAG)?,
            objekthandling_oprettet: unik_of(OBJEKTHANDLING_OPRETTET)?,
            objekthandling_rettet: unik_of(OBJEKTHANDLING_RETTET)?,
            objekttype_person: unik_of(OBJEKTTYPE_PERSON)?,
        })
    }
}

/// The error for a required setting that is not configured.
pub fn missing(key: &str, what: &str) -> AdapterError {
    invalid(
        field(key),
        format!(
            "is not configured: {what}, as KOMBIT registered it for this deployment; set it in the system's \
             adapter_settings"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn settings_are_checked_by_name() {
        let s = Settings::read(&of(&[
            (BESKEDTYPE, "urn:uuid:5B0F7D2E-8C1A-4E6B-9F3D-2A4C6E8F0B1D"),
            (OBJEKTTYPE_SAG, "urn:example:sag"),
            (MYNDIGHED_CVR, "urn:oio:cvr-nr:29990000"),
        ]));
        let s = s.unwrap_or_default();
        assert_eq!(s.beskedtype, Some(UnikId::Uuid("5b0f7d2e-8c1a-4e6b-9f3d-2a4c6e8f0b1d".into())));
        assert_eq!(s.objekttype_sag, Some(UnikId::Urn("urn:example:sag".into())));
        assert_eq!(s.myndighed_cvr.as_deref(), Some("29990000"));
        let bad = Settings::read(&of(&[(BESKEDANSVARLIG_AKTOER, "urn:x:y")]));
        assert!(
            matches!(bad, Err(AdapterError::Invalid(e)) if e.first().is_some_and(|v| v.field == "settings.beskedansvarlig_aktoer"))
        );
        let unknown = Settings::read(&of(&[("sending_system", "x")]));
        assert!(
            matches!(unknown, Err(AdapterError::Invalid(e)) if e.first().is_some_and(|v| v.field == "settings.sending_system"))
        );
    }
}
