//! Identifiers derived without randomness: an adapter has no random source,
//! so every resource id a written Bundle needs is a name-based UUID (RFC 4122
//! version 5, SHA-1) of canonical data — never of a CPR number. The same
//! batch always yields the same ids, and a resource keeps its id from one
//! version of a plan to the next.

pub use bro_adapter_sdk::ids::uuid_of;

/// A version-5 UUID for `urn:bro:fhir:{name}`.
pub fn name_uuid(name: &str) -> String {
    bro_adapter_sdk::ids::name_uuid("urn:bro:fhir:", name)
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
}
