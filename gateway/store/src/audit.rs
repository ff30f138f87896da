//! The audit log: one record per access, append-only, each record chained to
//! the one before by a keyed MAC ([`Keyring::audit_mac`]), and the head (last
//! sequence and MAC) kept beside the records. [`verify`] finds any changed,
//! removed, inserted or reordered record, and a truncated tail.

use async_trait::async_trait;
use bro_proto::v1 as pb;
use prost::Message as _;

use crate::{Keyring, StoreError};

/// One stored audit record: its position, the encoded `bro.v1.AuditRecord`
/// (sequence included) and its chain value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditRecord {
    /// 1-based, gap-free.
    pub sequence: u64,
    /// Protobuf bytes of `bro.v1.AuditRecord`.
    pub record: Vec<u8>,
    /// The chain value: `audit_mac(previous mac, sequence, record)`.
    pub mac: Vec<u8>,
}

/// The head of the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditHead {
    /// The last sequence (0: empty log).
    pub sequence: u64,
    /// The last MAC (empty for an empty log).
    pub mac: Vec<u8>,
}

/// An append-only, hash-chained audit log.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends the records in one durable transaction, numbering and chaining
    /// them; returns their sequences.
    async fn append(&self, records: Vec<pb::AuditRecord>) -> Result<Vec<u64>, StoreError>;
    /// Records after `after_sequence`, in order.
    async fn read(&self, after_sequence: u64, limit: usize) -> Result<Vec<StoredAuditRecord>, StoreError>;
    /// Records concerning the person with this keyed hash, after `after_sequence`.
    async fn read_person(
        &self,
        person_key: &[u8],
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredAuditRecord>, StoreError>;
    /// The head.
    async fn head(&self) -> Result<AuditHead, StoreError>;

    /// True when records an append carries ([`crate::AppendBatch::audit`])
    /// are committed in the append's own transaction and chained by this
    /// log: the audit log is in the event store's database.
    fn commits_with_appends(&self) -> bool {
        false
    }

    /// Chains the records appends committed that are not chained yet (a
    /// crash can leave some); returns how many. [`AuditLog::append`] does
    /// this too, first, so such records precede the calls' own.
    async fn settle(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Numbers and chains `records` after `head`: what a backend stores.
pub fn chain(keys: &Keyring, head: &AuditHead, records: Vec<pb::AuditRecord>) -> Vec<StoredAuditRecord> {
    let mut previous = head.mac.clone();
    let mut sequence = head.sequence;
    records
        .into_iter()
        .map(|mut record| {
            sequence += 1;
            record.sequence = sequence as i64;
            let bytes = record.encode_to_vec();
            let mac = keys.audit_mac(&previous, sequence, &bytes);
            previous = mac.clone();
            StoredAuditRecord { sequence, record: bytes, mac }
        })
        .collect()
}

/// The first break in a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditBreak {
    /// A sequence is missing or out of place (a removed or inserted record).
    #[error("record {found} found where record {expected} belongs: a record was removed, inserted or reordered")]
    Gap {
        /// The sequence that should come next.
        expected: u64,
        /// The sequence found.
        found: u64,
    },
    /// A record's MAC does not match its content and predecessor.
    #[error("record {sequence} does not match its chain value: it or the record before it was changed or moved")]
    Mac {
        /// The record.
        sequence: u64,
    },
    /// A record does not decode or names another sequence.
    #[error("record {sequence} is not a valid audit record: {reason}")]
    Malformed {
        /// The record.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// The index of people does not match the records (entries removed or added).
    #[error("the index of the people concerned does not match record {sequence}: index entries were removed or added")]
    Index {
        /// The first record whose people and index entries differ.
        sequence: u64,
    },
    /// The log ends elsewhere than its recorded head (records removed from the end).
    #[error("the log ends at record {last} but its head says {head}: records were removed from the end")]
    Head {
        /// The last record present.
        last: u64,
        /// The head's sequence.
        head: u64,
    },
}

/// Checks a whole log, read in sequence order, against its head; returns the
/// number of records.
pub fn verify(
    keys: &Keyring,
    records: impl IntoIterator<Item = StoredAuditRecord>,
    head: &AuditHead,
) -> Result<u64, AuditBreak> {
    let mut previous: Vec<u8> = Vec::new();
    let mut expected = 1u64;
    for stored in records {
        if stored.sequence != expected {
            return Err(AuditBreak::Gap { expected, found: stored.sequence });
        }
        let decoded = pb::AuditRecord::decode(stored.record.as_slice())
            .map_err(|e| AuditBreak::Malformed { sequence: stored.sequence, reason: e.to_string() })?;
        if decoded.sequence != stored.sequence as i64 {
            return Err(AuditBreak::Malformed {
                sequence: stored.sequence,
                reason: format!("it says it is record {}", decoded.sequence),
            });
        }
        if keys.audit_mac(&previous, stored.sequence, &stored.record) != stored.mac {
            return Err(AuditBreak::Mac { sequence: stored.sequence });
        }
        previous = stored.mac;
        expected += 1;
    }
    let last = expected - 1;
    if last != head.sequence || (last > 0 && previous != head.mac) {
        return Err(AuditBreak::Head { last, head: head.sequence });
    }
    Ok(last)
}

/// Checks the people index (keyed hash, sequence) against the records it was
/// built from: a removed entry would hide a look-up from a citizen's report.
pub fn verify_index(records: &[StoredAuditRecord], index: &[(Vec<u8>, u64)]) -> Result<(), AuditBreak> {
    let mut expected: Vec<(Vec<u8>, u64)> = Vec::new();
    for stored in records {
        let decoded = pb::AuditRecord::decode(stored.record.as_slice())
            .map_err(|e| AuditBreak::Malformed { sequence: stored.sequence, reason: e.to_string() })?;
        for key in decoded.person_keys {
            expected.push((key, stored.sequence));
        }
    }
    expected.sort();
    expected.dedup();
    let mut actual = index.to_vec();
    actual.sort();
    if expected == actual {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(actual.iter())
        .find(|(e, a)| e != a)
        .map(|(e, a)| e.1.min(a.1))
        .or_else(|| expected.get(actual.len()).or(actual.get(expected.len())).map(|(_, s)| *s))
        .unwrap_or(0);
    Err(AuditBreak::Index { sequence: first })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(keys: &Keyring, n: usize) -> (Vec<StoredAuditRecord>, AuditHead) {
        let records = (0..n)
            .map(|i| pb::AuditRecord { method: format!("/bro.v1.CaseService/GetCase#{i}"), ..Default::default() })
            .collect();
        let stored = chain(keys, &AuditHead::default(), records);
        let last = stored.last().expect("non-empty");
        let head = AuditHead { sequence: last.sequence, mac: last.mac.clone() };
        (stored, head)
    }

    #[test]
    fn verify_finds_every_kind_of_tampering() {
        let keys = Keyring::parse(&Keyring::generate()).expect("key");
        let (stored, head) = log(&keys, 5);
        assert_eq!(verify(&keys, stored.clone(), &head), Ok(5));
        assert_eq!(verify(&keys, Vec::new(), &AuditHead::default()), Ok(0));

        let mut changed = stored.clone();
        let mut record = pb::AuditRecord::decode(changed[2].record.as_slice()).expect("decodes");
        record.purpose = "case-handling".into();
        changed[2].record = record.encode_to_vec();
        assert_eq!(verify(&keys, changed, &head), Err(AuditBreak::Mac { sequence: 3 }));

        let mut removed = stored.clone();
        removed.remove(1);
        assert_eq!(verify(&keys, removed, &head), Err(AuditBreak::Gap { expected: 2, found: 3 }));

        let mut swapped = stored.clone();
        let (a, b) = (swapped[1].record.clone(), swapped[2].record.clone());
        swapped[1].record = b;
        swapped[2].record = a;
        assert!(verify(&keys, swapped, &head).is_err());

        let truncated = stored[..4].to_vec();
        assert_eq!(verify(&keys, truncated, &head), Err(AuditBreak::Head { last: 4, head: 5 }));

        let other = Keyring::parse(&Keyring::generate()).expect("key");
        assert_eq!(verify(&other, stored, &head), Err(AuditBreak::Mac { sequence: 1 }));
    }
}
