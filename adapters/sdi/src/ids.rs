//! Identifiers derived without randomness: an adapter has no random source,
//! so every UUID a written Haendelsesbesked needs is a name-based UUID
//! (RFC 4122 version 5, SHA-1) of canonical data. The same batch always
//! yields the same ids.

/// The namespace of the name-based UUIDs (RFC 4122's URL namespace; the
/// names are `urn:bro:sdi:…`).
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

/// A version-5 UUID for `urn:bro:sdi:{name}`.
pub fn name_uuid(name: &str) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&NAMESPACE_URL);
    hasher.update(b"urn:bro:sdi:");
    hasher.update(name.as_bytes());
    let digest = hasher.digest().bytes();
    let mut b = [0u8; 16];
    for (to, from) in b.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default().to_owned();
    format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
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
