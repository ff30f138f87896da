//! Identifiers: the ids other systems assign, checked as bro accepts them,
//! and ids derived without randomness. An adapter has no random source, so
//! the ids a written message needs come from the canonical data — a UUID
//! already there, or a name-based UUID (RFC 4122 version 5, SHA-1). The same
//! input always yields the same id.

use crate::{AdapterError, invalid};

/// RFC 4122's URL namespace, under which bro's name-based UUIDs are made.
const NAMESPACE_URL: [u8; 16] =
    [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];

/// The bare lowercase UUID in `text` (with or without `urn:uuid:`), if it is one.
pub fn uuid_of(text: &str) -> Option<String> {
    let bare = text.strip_prefix("urn:uuid:").unwrap_or(text);
    let ok = bare.len() == 36
        && bare.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then(|| bare.to_ascii_lowercase())
}

/// A version-5 UUID for the name `{prefix}{name}`, e.g. `urn:bro:medcom:` + a
/// message id. Hex digits come from a table, not a `format!` per byte: a
/// large plan view needs thousands of ids.
pub fn name_uuid(prefix: &str, name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&NAMESPACE_URL);
    hasher.update(prefix.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.digest().bytes();
    let mut out = String::with_capacity(36);
    for (i, byte) in digest.iter().take(16).enumerate() {
        // The version (5) and the RFC 4122 variant bits.
        let byte = match i {
            6 => (byte & 0x0f) | 0x50,
            8 => (byte & 0x3f) | 0x80,
            _ => *byte,
        };
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `text` is an id another system assigned, as bro accepts one
/// (plan, goal, appointment and message ids): 1 to 200 printable ASCII
/// characters, no spaces.
pub fn is_external_id(text: &str) -> bool {
    (1..=200).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

/// `text` if it is an id another system assigned ([`is_external_id`]), else a refusal at `field`.
pub fn external_id(text: &str, field: impl Into<String>) -> Result<&str, AdapterError> {
    if !is_external_id(text) {
        return Err(invalid(field, "is not an id: 1 to 200 printable ASCII characters, no spaces"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_found_and_derived_deterministically() {
        assert_eq!(
            uuid_of("urn:uuid:B2EB3D0E-5DE5-4DE9-B2A3-0FF321AD1C3A").as_deref(),
            Some("b2eb3d0e-5de5-4de9-b2a3-0ff321ad1c3a")
        );
        assert_eq!(uuid_of("BrevNr00129"), None);
        let a = name_uuid("urn:bro:test:", "x");
        assert_eq!(a, name_uuid("urn:bro:test:", "x"));
        assert_ne!(a, name_uuid("urn:bro:other:", "x"));
        assert_eq!((&a[14..15], uuid_of(&a).as_deref()), ("5", Some(a.as_str())), "version 5, well formed");
        // Pinned (Python's uuid.uuid5(NAMESPACE_URL, …) agrees), so that a change of the derivation shows.
        assert_eq!(name_uuid("urn:bro:fhir:", "cases/c/parties/mor"), "734fe6b7-ec3c-51d8-b20f-4a543da3b8aa");
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "the RFC 4122 variant");
    }

    #[test]
    fn external_ids_are_printable_ascii_without_spaces() {
        assert!(is_external_id("minplan-2026-1") && is_external_id(&"x".repeat(200)));
        assert!(!is_external_id("min plan") && !is_external_id("") && !is_external_id(&"x".repeat(201)));
        assert!(!is_external_id("møde"));
        assert_eq!(external_id("m1", "/meetingId").ok(), Some("m1"));
        assert!(
            matches!(external_id("m 1", "/meetingId"), Err(AdapterError::Invalid(v)) if v[0].field == "/meetingId")
        );
    }
}
