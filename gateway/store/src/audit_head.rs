//! Signed audit heads: evidence a third party can check. The audit chain's
//! MACs prove nothing to someone without the chain key, and whoever holds
//! that key (and the database) could rebuild the log. So the head — time,
//! last sequence, chain value — is signed with an Ed25519 key kept apart
//! from the master key ([`AuditSigner`]) and handed to someone else to keep
//! ([`SignedHead`], one JSON line each). Later, [`extends`] shows that a log
//! still contains the record the head names with the same chain value: the
//! chain makes every record up to it unchangeable since the head was signed.
//!
//! The signing key file: one line `bro-audit-signing-v1:` followed by 64 hex
//! digits (the key's seed). The public key is printed and kept as base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bro_domain::Timestamp;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{AuditHead, StoredAuditRecord};

const PREFIX: &str = "bro-audit-signing-v1:";
/// The format a signed head names, and the first line of what is signed.
pub const HEAD_FORMAT: &str = "bro-audit-head-v1";

/// What is wrong with a signing key, a signed head, or a log against one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    /// The signing key file does not hold a key in the expected format.
    #[error("not a bro audit signing key: expected one line \"bro-audit-signing-v1:\" followed by 64 hex digits")]
    KeyFormat,
    /// A public key is not base64 of 32 bytes, or not a valid key.
    #[error("not an Ed25519 public key (base64 of 32 bytes): {0}")]
    PublicKey(String),
    /// A signed head does not parse.
    #[error("not a signed audit head: {0}")]
    Format(String),
    /// The head was signed by another key than the one pinned.
    #[error("the head was signed by key {found}, not by the pinned key {pinned}")]
    OtherKey {
        /// The pinned key's id.
        pinned: String,
        /// The head's key id.
        found: String,
    },
    /// The signature does not match the head's content.
    #[error(
        "the signature of the head of record {sequence} does not verify: the head was changed or not signed by this key"
    )]
    Signature {
        /// The head's sequence.
        sequence: u64,
    },
    /// The log is shorter than the head.
    #[error("the log ends at record {last}, before record {sequence} of the signed head: records were removed")]
    Shorter {
        /// The head's sequence.
        sequence: u64,
        /// The log's last record.
        last: u64,
    },
    /// The log's record at the head's sequence has another chain value.
    #[error("record {sequence} no longer has the chain value of the signed head: the log was rewritten up to it")]
    Rewritten {
        /// The head's sequence.
        sequence: u64,
    },
}

/// The key that signs audit heads.
pub struct AuditSigner {
    key: SigningKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditSigner({})", self.verifier().key_id())
    }
}

impl AuditSigner {
    /// A new random signing key, as key-file text.
    pub fn generate() -> String {
        use chacha20poly1305::aead::{KeyInit as _, OsRng};
        let seed = chacha20poly1305::XChaCha20Poly1305::generate_key(&mut OsRng);
        let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        format!("{PREFIX}{hex}\n")
    }

    /// Reads a signing key file's text.
    pub fn parse(text: &str) -> Result<AuditSigner, HeadError> {
        let hex = text.trim().strip_prefix(PREFIX).ok_or(HeadError::KeyFormat)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HeadError::KeyFormat);
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| HeadError::KeyFormat)?;
        }
        Ok(AuditSigner { key: SigningKey::from_bytes(&seed) })
    }

    /// The public half, for verifying.
    pub fn verifier(&self) -> AuditVerifier {
        AuditVerifier { key: self.key.verifying_key() }
    }

    /// The signed form of `head`, as of `time`.
    pub fn sign(&self, head: &AuditHead, time: Timestamp) -> SignedHead {
        let verifier = self.verifier();
        let mut signed = SignedHead {
            format: HEAD_FORMAT.into(),
            time: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sequence: head.sequence,
            chain_value: head.mac.iter().map(|b| format!("{b:02x}")).collect(),
            key_id: verifier.key_id(),
            public_key: verifier.public_key(),
            signature: String::new(),
        };
        signed.signature = B64.encode(self.key.sign(&signed.signed_bytes()).to_bytes());
        signed
    }
}

/// A public key that checks signed heads.
#[derive(Clone, Debug)]
pub struct AuditVerifier {
    key: VerifyingKey,
}

impl AuditVerifier {
    /// Reads a base64 public key.
    pub fn parse_public(text: &str) -> Result<AuditVerifier, HeadError> {
        let bytes = B64.decode(text.trim()).map_err(|e| HeadError::PublicKey(e.to_string()))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| HeadError::PublicKey("not 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| HeadError::PublicKey(e.to_string()))?;
        Ok(AuditVerifier { key })
    }

    /// The public key, base64.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.to_bytes())
    }

    /// The key id: the first 8 hex digits of SHA-256 over the public key.
    pub fn key_id(&self) -> String {
        Sha256::digest(self.key.to_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
    }

    /// Checks that `head` was signed by this key and not changed since.
    pub fn verify(&self, head: &SignedHead) -> Result<(), HeadError> {
        if head.format != HEAD_FORMAT {
            return Err(HeadError::Format(format!("format {:?}, expected {HEAD_FORMAT:?}", head.format)));
        }
        if head.public_key != self.public_key() {
            return Err(HeadError::OtherKey { pinned: self.key_id(), found: head.key_id.clone() });
        }
        let bytes = B64.decode(&head.signature).map_err(|e| HeadError::Format(format!("signature: {e}")))?;
        let bytes: [u8; 64] =
            bytes.try_into().map_err(|_| HeadError::Format("signature: an Ed25519 signature is 64 bytes".into()))?;
        self.key
            .verify(&head.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| HeadError::Signature { sequence: head.sequence })
    }
}

/// An exported, signed audit head (one JSON object per line in a file).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedHead {
    /// [`HEAD_FORMAT`].
    pub format: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// The log's last sequence then (0: empty).
    pub sequence: u64,
    /// Its chain value, hex (empty for an empty log).
    pub chain_value: String,
    /// The signing key's id.
    pub key_id: String,
    /// The signing key's public half, base64.
    pub public_key: String,
    /// Ed25519 over [`SignedHead::signed_bytes`], base64.
    pub signature: String,
}

impl SignedHead {
    /// What the signature covers: the format, time, sequence and chain value.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n{}\n", self.format, self.time, self.sequence, self.chain_value).into_bytes()
    }

    /// One line of JSON, with its newline.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a signed head serialises");
        line.push('\n');
        line
    }

    /// Every signed head in a file's text (one per non-empty line).
    pub fn parse_lines(text: &str) -> Result<Vec<SignedHead>, HeadError> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| serde_json::from_str(line).map_err(|e| HeadError::Format(format!("line {}: {e}", i + 1))))
            .collect()
    }
}

/// Checks that a log (its records in sequence order, as [`crate::audit::verify`]
/// checked them) still extends `head`: the record at the head's sequence is
/// there, with the head's chain value.
pub fn extends(records: &[StoredAuditRecord], head: &SignedHead) -> Result<(), HeadError> {
    if head.sequence == 0 {
        return Ok(());
    }
    let last = records.last().map_or(0, |r| r.sequence);
    let Some(record) = records.iter().find(|r| r.sequence == head.sequence) else {
        return Err(HeadError::Shorter { sequence: head.sequence, last });
    };
    let chain_value: String = record.mac.iter().map(|b| format!("{b:02x}")).collect();
    if chain_value != head.chain_value {
        return Err(HeadError::Rewritten { sequence: head.sequence });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u64) -> Vec<StoredAuditRecord> {
        (1..=n).map(|s| StoredAuditRecord { sequence: s, record: vec![s as u8], mac: vec![s as u8, 0xab] }).collect()
    }

    fn at(sequence: u64) -> AuditHead {
        AuditHead { sequence, mac: vec![sequence as u8, 0xab] }
    }

    #[test]
    fn a_signed_head_verifies_and_a_longer_log_extends_it() {
        let signer = AuditSigner::parse(&AuditSigner::generate()).expect("key");
        let time = chrono::DateTime::parse_from_rfc3339("2026-12-08T10:00:00Z").expect("time").to_utc();
        let head = signer.sign(&at(3), time);
        let parsed = SignedHead::parse_lines(&format!("{}\n{}", head.to_line(), head.to_line())).expect("lines");
        assert_eq!(parsed, [head.clone(), head.clone()]);
        assert_eq!(signer.verifier().verify(&head), Ok(()));
        assert_eq!(extends(&log(3), &head), Ok(()));
        assert_eq!(extends(&log(9), &head), Ok(()), "records appended since do not matter");
    }

    #[test]
    fn a_changed_head_another_key_a_cut_or_rewritten_log_are_each_named() {
        let signer = AuditSigner::parse(&AuditSigner::generate()).expect("key");
        let other = AuditSigner::parse(&AuditSigner::generate()).expect("key");
        let head = signer.sign(&at(3), chrono::DateTime::UNIX_EPOCH);
        let moved = SignedHead { sequence: 2, ..head.clone() };
        assert_eq!(signer.verifier().verify(&moved), Err(HeadError::Signature { sequence: 2 }));
        assert!(matches!(other.verifier().verify(&head), Err(HeadError::OtherKey { .. })));
        let forged = SignedHead {
            public_key: other.verifier().public_key(),
            ..other.sign(&at(3), chrono::DateTime::UNIX_EPOCH)
        };
        assert!(matches!(signer.verifier().verify(&forged), Err(HeadError::OtherKey { .. })));
        assert_eq!(extends(&log(2), &head), Err(HeadError::Shorter { sequence: 3, last: 2 }));
        let mut rewritten = log(5);
        rewritten[2].mac = vec![0; 2];
        assert_eq!(extends(&rewritten, &head), Err(HeadError::Rewritten { sequence: 3 }));
        assert!(AuditSigner::parse("bro-key-v1:00").is_err());
        assert!(SignedHead::parse_lines("{not json").is_err());
    }
}
