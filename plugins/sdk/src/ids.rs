//! Identifiers derived without randomness: an adapter has no random source,
//! so the ids a written message needs come from the canonical data — a UUID
//! already there, or a name-based UUID (RFC 4122 version 5, SHA-1). The same
//! input always yields the same id.

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

/// A version-5 UUID for the name `{prefix}{name}`, e.g. `urn:bro:medcom:` + a message id.
pub fn name_uuid(prefix: &str, name: &str) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&NAMESPACE_URL);
    hasher.update(prefix.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.digest().bytes();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
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
    }
}
