//! The people a batch names. Events and plans name a person by a reference:
//! `subjects/N` (the batch's Nth subject) or the party id of one of its
//! `parties`; a writer resolves it to the person's identifier, and finds the
//! party (for a display name) by that identifier.

use crate::proto::{AdapterBatch, Party, PersonIdentifier};
use crate::{AdapterError, invalid};

/// The person a reference names: `subjects/N`, else a party id of `parties`.
pub fn person<'b>(batch: &'b AdapterBatch, reference: &str) -> Option<&'b PersonIdentifier> {
    match reference.strip_prefix("subjects/") {
        Some(n) => n.parse::<usize>().ok().and_then(|n| batch.subjects.get(n)),
        None => batch.parties.iter().find(|p| p.party_id == reference).and_then(|p| p.identifier.as_ref()),
    }
}

/// The person a reference in `field` names, or a refusal there that echoes
/// the reference with the adapter's `quoted` (see [`crate::echo`]).
pub fn person_of(
    batch: &AdapterBatch,
    reference: &str,
    field: &str,
    quoted: impl Fn(&str) -> String,
) -> Result<PersonIdentifier, AdapterError> {
    person(batch, reference).cloned().ok_or_else(|| {
        invalid(
            field,
            format!("{} names no person of the batch (subjects/N or a party id of parties)", quoted(reference)),
        )
    })
}

/// The party of the batch that is `person`, if any.
pub fn party<'b>(batch: &'b AdapterBatch, person: &PersonIdentifier) -> Option<&'b Party> {
    batch.parties.iter().find(|p| p.identifier.as_ref() == Some(person))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::PersonIdentifierKind;

    fn cpr(value: &str) -> PersonIdentifier {
        PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value: value.into() }
    }

    #[test]
    fn references_name_subjects_and_parties() {
        let batch = AdapterBatch {
            subjects: vec![cpr("0101901234")],
            parties: vec![Party {
                party_id: "mor".into(),
                identifier: Some(cpr("0507880000")),
                display_name: "M".into(),
            }],
            ..Default::default()
        };
        assert_eq!(person(&batch, "subjects/0"), Some(&cpr("0101901234")));
        assert_eq!(person(&batch, "mor"), Some(&cpr("0507880000")));
        assert_eq!(person(&batch, "subjects/1"), None);
        assert_eq!(person(&batch, "far"), None);
        assert_eq!(party(&batch, &cpr("0507880000")).map(|p| p.party_id.as_str()), Some("mor"));
        let refused = person_of(&batch, "far", "covers[0]", |r| format!("{r:?}"));
        assert!(matches!(refused, Err(AdapterError::Invalid(v)) if v[0].field == "covers[0]"
            && v[0].description == "\"far\" names no person of the batch (subjects/N or a party id of parties)"));
    }
}
