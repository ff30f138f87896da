//! Identifiers derived without randomness: an adapter has no random source,
//! so every resource id a written Bundle needs is a name-based UUID (RFC 4122
//! version 5, SHA-1) of canonical data — never of a CPR number. The same
//! batch always yields the same ids, and a resource keeps its id from one
//! version of a plan to the next.

pub use bro_adapter_sdk::ids::uuid_of;

/// The prefix of every name.
const PREFIX: &str = "urn:bro:fhir:";
/// RFC 4122's URL namespace, under which the SDK makes its name-based UUIDs.
const NAMESPACE_URL: [u8; 16] =
    [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];

/// A version-5 UUID for `urn:bro:fhir:{name}`: the SDK's
/// `ids::name_uuid("urn:bro:fhir:", name)`, written out with a lookup table
/// instead of a `format!` per byte, since a large plan needs thousands.
pub fn name_uuid(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&NAMESPACE_URL);
    hasher.update(PREFIX.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.digest().bytes();
    let mut out = String::with_capacity(36);
    for (i, byte) in digest.iter().take(16).enumerate() {
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

/// The `urn:uuid:` form of a UUID, for a `fullUrl` and the references to it.
pub fn urn(uuid: &str) -> String {
    format!("urn:uuid:{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_uuids_are_version_5_and_stable() {
        let a = name_uuid("cases/c/parties/mor");
        assert_eq!(a, name_uuid("cases/c/parties/mor"));
        assert_ne!(a, name_uuid("cases/c/parties/far"));
        assert_eq!(uuid_of(&urn(&a)).as_deref(), Some(a.as_str()));
        assert_eq!(a.as_bytes().get(14), Some(&b'5'));
    }

    #[test]
    fn name_uuids_are_the_sdks() {
        for name in ["", "x", "cases/c/holisticPlans/p/goals/g1/cases/c/parties/mor", &"ø".repeat(100)] {
            assert_eq!(name_uuid(name), bro_adapter_sdk::ids::name_uuid("urn:bro:fhir:", name), "{name}");
        }
    }
}
