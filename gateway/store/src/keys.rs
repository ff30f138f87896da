//! The gateway's secret keys: one master key, from which the keyed-hash index
//! key (people looked up by identifier), the audit chain key, the
//! fingerprint key (what a request asked, stored beside sealed data) and the
//! sealing key (data encrypted at rest) are derived.
//!
//! Key file format: one line `bro-key-v1:` followed by 64 hex digits (32
//! bytes). The key id printed and stored with sealed data is the first 8 hex
//! digits of SHA-256 over the derived sealing key, never the key itself.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "bro-key-v1:";
/// Sealed data starts with this version byte.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// A keyed fingerprint starts with this version byte (a plain SHA-256
/// fingerprint from before has 32 bytes and no version).
const KEYED_FINGERPRINT_V1: u8 = 0xF1;

/// What is wrong with a key or with sealed data.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file does not hold a key in the expected format.
    #[error("not a bro key: expected one line \"bro-key-v1:\" followed by 64 hex digits")]
    Format,
    /// Sealed data was made with another key or has been changed.
    #[error("sealed data does not open with this key (another key, or changed data)")]
    Open,
}

/// The derived keys.
#[derive(Clone)]
pub struct Keyring {
    index: [u8; 32],
    audit: [u8; 32],
    fingerprint: [u8; 32],
    seal: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({})", self.key_id)
    }
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    mac.update(b"bro/v1/");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Keyring {
    /// Derives the keys from a 32-byte master key.
    pub fn from_master(master: &[u8; 32]) -> Keyring {
        let seal = derive(master, "seal");
        let key_id = Sha256::digest(seal).iter().take(4).map(|b| format!("{b:02x}")).collect();
        Keyring {
            index: derive(master, "person-index"),
            audit: derive(master, "audit-chain"),
            fingerprint: derive(master, "request-fingerprint"),
            seal,
            key_id,
        }
    }

    /// Reads a key file's text.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let hex = text.trim().strip_prefix(PREFIX).ok_or(KeyError::Format)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Format);
        }
        let mut master = [0u8; 32];
        for (i, byte) in master.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| KeyError::Format)?;
        }
        Ok(Keyring::from_master(&master))
    }

    /// A new random master key, as key-file text.
    pub fn generate() -> String {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}\n")
    }

    /// The key id (safe to print).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The keyed hash of a person identifier (`kind` is `cpr` or
    /// `replacement_cpr`): equal identifiers give equal hashes; without the
    /// key, a hash cannot be tested against the 10^10 possible CPR numbers.
    pub fn person_key(&self, kind: &str, value: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.index).expect("any key length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The keyed hash of an identifier on the wire (none for an unset kind or
    /// an empty value); equal to [`Keyring::person_key`] of the same identifier.
    pub fn identifier_key(&self, id: &bro_proto::v1::PersonIdentifier) -> Option<Vec<u8>> {
        use bro_proto::v1::PersonIdentifierKind as K;
        let kind = match K::try_from(id.kind).ok()? {
            K::Cpr => "cpr",
            K::ReplacementCpr => "replacement_cpr",
            K::Unspecified => return None,
        };
        let value = id.value.trim();
        (!value.is_empty()).then(|| self.person_key(kind, value))
    }

    /// The chain value of audit record `sequence` with `bytes`, after `previous`.
    pub fn audit_mac(&self, previous: &[u8], sequence: u64, bytes: &[u8]) -> Vec<u8> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.audit).expect("any key length");
        mac.update(b"bro-audit-v1");
        mac.update(&(previous.len() as u64).to_be_bytes());
        mac.update(previous);
        mac.update(&sequence.to_be_bytes());
        mac.update(&(bytes.len() as u64).to_be_bytes());
        mac.update(bytes);
        mac.finalize().into_bytes().to_vec()
    }

    /// The stored form of a request's fingerprint (`plain`, a hash of what
    /// it asked) under request id `context`: a keyed hash, so that whoever
    /// holds the database cannot confirm a guessed message or event offline.
    pub fn keyed_fingerprint(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.push(KEYED_FINGERPRINT_V1);
        out.extend_from_slice(&self.fingerprint_mac(context, plain).finalize().into_bytes());
        out
    }

    /// The MAC a keyed fingerprint holds, before it is finished.
    fn fingerprint_mac(&self, context: &str, plain: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.fingerprint).expect("any key length");
        mac.update(b"bro-fingerprint-v1");
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context.as_bytes());
        mac.update(plain);
        mac
    }

    /// Whether a stored fingerprint is that of `plain` under `context`: its
    /// keyed form, or (stored before fingerprints were keyed) `plain` itself.
    pub fn fingerprint_matches(&self, context: &str, stored: &[u8], plain: &[u8]) -> bool {
        match stored.first() {
            Some(&KEYED_FINGERPRINT_V1) if stored.len() == 33 => {
                self.fingerprint_mac(context, plain).verify_slice(&stored[1..]).is_ok()
            }
            _ => stored == plain,
        }
    }

    /// Encrypts `plain` (XChaCha20-Poly1305, random nonce), bound to `context`
    /// (e.g. the table and row it belongs in) so sealed data cannot be moved.
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, chacha20poly1305::aead::Payload { msg: plain, aad: context })
            .expect("encryption of in-memory data does not fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts what [`Keyring::seal`] made with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEALED_V1 {
            return Err(KeyError::Open);
        }
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        cipher
            .decrypt(nonce, chacha20poly1305::aead::Payload { msg: &sealed[1 + NONCE_LEN..], aad: context })
            .map_err(|_| KeyError::Open)
    }
}

/// Writes a secret (a key file) readable by its owner only, so that after a
/// crash or a power loss `path` is absent or whole: a temporary file,
/// synced, renamed into place, and the directory synced.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    // A partial file a crash left keeps its mode if reopened: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Syncs the directory holding `path`, so a file created or renamed there survives a power loss.
pub fn sync_dir(path: &std::path::Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_stored_keyed_and_cannot_be_confirmed_without_the_key() {
        let keys = Keyring::parse(&Keyring::generate()).expect("key");
        let other = Keyring::parse(&Keyring::generate()).expect("key");
        let plain = Sha256::digest(b"a guessed message").to_vec();
        let stored = keys.keyed_fingerprint("r1", &plain);
        assert_ne!(stored[1..], plain[..], "the stored form is not the plain hash");
        assert!(keys.fingerprint_matches("r1", &stored, &plain));
        assert!(!keys.fingerprint_matches("r1", &stored, &Sha256::digest(b"another message")));
        assert!(!keys.fingerprint_matches("r2", &stored, &plain), "bound to its request id");
        assert!(!other.fingerprint_matches("r1", &stored, &plain), "another key cannot confirm it");
        // One stored before fingerprints were keyed still tells a retry from a reuse.
        assert!(keys.fingerprint_matches("r1", &plain, &plain));
    }

    #[test]
    fn a_key_file_is_written_whole_for_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("bro-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bro.key");
        // A crash mid-write left a partial file: it is replaced, never read as the key.
        std::fs::write(dir.join(".bro.key.partial"), "half a ke").expect("partial");
        let text = Keyring::generate();
        write_private(&path, &text).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["bro.key"], "nothing but the key is left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn keys_parse_derive_and_seal() {
        let text = Keyring::generate();
        let keys = Keyring::parse(&text).expect("a generated key parses");
        let again = Keyring::parse(&text).expect("parses");
        assert_eq!(keys.key_id(), again.key_id());
        assert_eq!(keys.person_key("cpr", "0101901234"), again.person_key("cpr", "0101901234"));
        assert_ne!(keys.person_key("cpr", "0101901234"), keys.person_key("cpr", "0101901235"));
        assert_ne!(keys.person_key("cpr", "0101901234"), keys.person_key("replacement_cpr", "0101901234"));
        let sealed = keys.seal(b"events/1", b"0101901234");
        assert!(!sealed.windows(10).any(|w| w == b"0101901234"));
        assert_eq!(again.open(b"events/1", &sealed).expect("opens"), b"0101901234");
        assert!(again.open(b"events/2", &sealed).is_err(), "bound to its context");
        let other = Keyring::parse(&Keyring::generate()).expect("parses");
        assert!(other.open(b"events/1", &sealed).is_err(), "another key does not open it");
        let mut changed = sealed.clone();
        *changed.last_mut().expect("non-empty") ^= 1;
        assert!(keys.open(b"events/1", &changed).is_err(), "a changed byte is detected");
        for bad in ["", "bro-key-v1:abc", "bro-key-v2:", &text.replace("bro-key-v1:", "")] {
            assert!(Keyring::parse(bad).is_err(), "{bad:?}");
        }
        assert!(!format!("{keys:?}").contains(&text[11..20]), "Debug shows the id only");
    }
}
