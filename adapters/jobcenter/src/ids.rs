//! Identifiers: the jobcentre's own ids (plans, goals, activities,
//! meetings), checked as bro accepts them, and ids derived without
//! randomness: an adapter has no random source, so every UUID a written
//! Momentum document needs is a name-based UUID (RFC 4122 version 5, SHA-1)
//! of canonical data. The same batch always yields the same ids.

pub use bro_adapter_sdk::ids::{external_id, is_external_id, uuid_of};

/// A version-5 UUID for `urn:bro:jobcenter:{name}`.
pub fn name_uuid(name: &str) -> String {
    bro_adapter_sdk::ids::name_uuid("urn:bro:jobcenter:", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_recognised_with_or_without_the_urn() {
        let u = "5b0f7d2e-8c1a-4e6b-9f3d-2a4c6e8f0b1d";
        assert_eq!(uuid_of(u).as_deref(), Some(u));
        assert_eq!(uuid_of(&format!("urn:uuid:{}", u.to_uppercase())).as_deref(), Some(u));
        assert_eq!(uuid_of("5b0f7d2e8c1a4e6b9f3d2a4c6e8f0b1d"), None);
    }

    #[test]
    fn name_uuids_are_version_5_and_stable() {
        let a = name_uuid("cases/abc#1-3");
        assert_eq!(a, name_uuid("cases/abc#1-3"));
        assert_ne!(a, name_uuid("cases/abc#1-4"));
        assert_eq!(uuid_of(&a).as_deref(), Some(a.as_str()));
        assert_eq!(a.as_bytes().get(14), Some(&b'5'));
        assert!(matches!(a.as_bytes().get(19), Some(b'8' | b'9' | b'a' | b'b')));
    }
}
