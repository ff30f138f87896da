//! Snapshots of a case's state, so that a read that misses the ledger's
//! cache need not replay the whole history: the state at a version is the
//! snapshot's state with the events after it applied.
//!
//! A snapshot is a cache and nothing more. The events stay the only record:
//! a snapshot of another format, one that does not decode, or one the
//! events after it cannot continue (a backdated event reorders the history)
//! is ignored and the history replayed.

use bro_domain::Case;

/// The snapshot format. Raise it whenever the meaning of a [`Case`] field
/// changes without its shape changing (a changed shape already fails to
/// decode): snapshots of another format are ignored.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A snapshot is written when an append crosses a multiple of this many events.
pub const SNAPSHOT_INTERVAL: u64 = 256;

/// A stored snapshot: the case's state after event `version`, encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The last event it includes.
    pub version: u64,
    /// [`encode`]'s bytes.
    pub state: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Written<'a> {
    format: u32,
    case: &'a Case,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Read {
    format: u32,
    case: Case,
}

/// Whether an append from `before` to `after` events should write a snapshot.
pub fn due(before: u64, after: u64) -> bool {
    after / SNAPSHOT_INTERVAL > before / SNAPSHOT_INTERVAL
}

/// The snapshot of `case`.
pub fn encode(case: &Case) -> StoredSnapshot {
    let state = serde_json::to_vec(&Written { format: SNAPSHOT_FORMAT, case })
        .expect("a case's fields are all plain data and always serialise");
    StoredSnapshot { version: case.version, state }
}

/// The case a snapshot holds, if it is of this format and decodes to the
/// version it claims.
pub fn decode(snapshot: &StoredSnapshot) -> Option<Case> {
    let read: Read = serde_json::from_slice(&snapshot.state).ok()?;
    (read.format == SNAPSHOT_FORMAT && read.case.version == snapshot.version).then_some(read.case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_due_when_an_append_crosses_an_interval() {
        assert!(!due(0, SNAPSHOT_INTERVAL - 1));
        assert!(due(SNAPSHOT_INTERVAL - 1, SNAPSHOT_INTERVAL));
        assert!(due(10, 3 * SNAPSHOT_INTERVAL + 1), "one snapshot for a batch crossing several");
        assert!(!due(SNAPSHOT_INTERVAL, 2 * SNAPSHOT_INTERVAL - 1));
    }

    #[test]
    fn another_format_or_version_is_ignored() {
        let on = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let id = bro_domain::CaseId::parse("id", "c-1").expect("id");
        let holder = bro_domain::PartyId::parse("party_id", "parent-1").expect("party");
        let case = Case::opened_for(id, &[holder], "12345678", on).expect("opened");
        let snapshot = encode(&case);
        assert_eq!(decode(&snapshot), Some(case.clone()));
        let elsewhere = StoredSnapshot { version: 2, ..snapshot.clone() };
        assert_eq!(decode(&elsewhere), None, "a snapshot claiming another version");
        let text = String::from_utf8(snapshot.state.clone()).expect("json");
        let older = text.replacen(&format!("\"format\":{SNAPSHOT_FORMAT}"), "\"format\":0", 1);
        assert_eq!(decode(&StoredSnapshot { state: older.into_bytes(), ..snapshot.clone() }), None);
        assert_eq!(decode(&StoredSnapshot { state: b"{\"format\":1}".to_vec(), ..snapshot }), None);
    }
}
