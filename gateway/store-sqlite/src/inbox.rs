//! The inbox: messages that could not go straight into a case — unmatched
//! (translated, but no one case has their people) and rejected (refused by
//! the adapter or the case's rules) — with who sent them and why.

use bro_domain::{CaseId, Timestamp};
use bro_store::{InboxEntry, InboxKind, InboxPut, InboxQuery, InboxState, SourceKey, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{backend, corrupt, from_micros, micros};

const INBOX_COLUMNS: &str = "ordinal, entry_id, kind, system, request_id, source_message_id, content_type, body, \
    batch, reason, state, resolved_case, create_time, update_time";

/// An `inbox` row as SQLite returns it.
type InboxRow =
    (i64, String, String, String, String, String, String, Vec<u8>, Vec<u8>, String, String, Option<String>, i64, i64);

fn inbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

fn to_inbox(row: InboxRow) -> Result<InboxEntry, StoreError> {
    let (
        ordinal,
        entry_id,
        kind,
        system,
        request_id,
        source_message_id,
        content_type,
        body,
        batch,
        reason,
        state,
        case,
        created,
        updated,
    ) = row;
    let damaged = |what: &str| StoreError::Corrupt(format!("inbox entry {entry_id}: {what}"));
    Ok(InboxEntry {
        ordinal: ordinal as u64,
        kind: InboxKind::parse(&kind).ok_or_else(|| damaged("unknown kind"))?,
        state: InboxState::parse(&state).ok_or_else(|| damaged("unknown state"))?,
        resolved_case: case.map(|c| CaseId::parse("resolved_case", &c).map_err(corrupt)).transpose()?,
        entry_id,
        system,
        request_id,
        source_message_id,
        content_type,
        body,
        batch,
        reason,
        create_time: from_micros(created),
        update_time: from_micros(updated),
    })
}

/// The entry matching `condition` on its one `?1`, if any.
fn find(conn: &Connection, condition: &str, value: &str) -> Result<Option<InboxEntry>, StoreError> {
    conn.query_row(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE {condition}"), [value], inbox_row)
        .optional()
        .map_err(backend)?
        .map(to_inbox)
        .transpose()
}

/// The entry an ingest request stored.
pub(crate) fn by_request(conn: &Connection, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
    find(conn, "request_id = ?1", request_id)
}

/// One entry.
pub(crate) fn get(conn: &Connection, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
    find(conn, "entry_id = ?1", entry_id)
}

/// Stores an entry unless its request id, or (for an unmatched message) its
/// system and source message id, is stored already: then that entry.
pub(crate) fn put(conn: &mut Connection, entry: &InboxEntry) -> Result<InboxPut, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    if let Some(existing) = by_request(&tx, &entry.request_id)? {
        return Ok(InboxPut::Existing(Box::new(existing)));
    }
    if entry.kind == InboxKind::Unmatched && !entry.source_message_id.is_empty() {
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox
                     WHERE kind = 'unmatched' AND system = ?1 AND source_message_id = ?2"
                ),
                params![entry.system, entry.source_message_id],
                inbox_row,
            )
            .optional()
            .map_err(backend)?;
        if let Some(existing) = existing {
            return Ok(InboxPut::Existing(Box::new(to_inbox(existing)?)));
        }
    }
    tx.execute(
        "INSERT INTO inbox (entry_id, kind, system, request_id, source_message_id, content_type, body, batch,
                            reason, state, resolved_case, create_time, update_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            entry.entry_id,
            entry.kind.as_str(),
            entry.system,
            entry.request_id,
            entry.source_message_id,
            entry.content_type,
            entry.body,
            entry.batch,
            entry.reason,
            entry.state.as_str(),
            entry.resolved_case.as_ref().map(CaseId::as_str),
            micros(entry.create_time),
            micros(entry.update_time)
        ],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(InboxPut::Inserted)
}

/// Entries of one kind in arrival order after an ordinal, each filter
/// applied only when given; `inbox_by_kind` serves it.
pub(crate) fn list(conn: &Connection, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INBOX_COLUMNS} FROM inbox
             WHERE kind = ?1 AND ordinal > ?2 AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR system = ?4)
             ORDER BY ordinal LIMIT ?5"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                query.kind.as_str(),
                query.after_ordinal as i64,
                query.state.map(InboxState::as_str),
                query.system,
                query.limit as i64
            ],
            inbox_row,
        )
        .map_err(backend)?;
    rows.map(|r| to_inbox(r.map_err(backend)?)).collect()
}

/// Moves an open entry to `state`; false if it is not open.
pub(crate) fn close(conn: &Connection, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE inbox SET state = ?2, update_time = ?3 WHERE entry_id = ?1 AND state = 'open'",
            params![entry_id, state.as_str(), micros(now)],
        )
        .map_err(backend)?;
    Ok(changed == 1)
}

/// Within an append: the open unmatched entry it resolves, into its case;
/// the whole append fails if the entry is not (or no longer) open.
pub(crate) fn resolve(tx: &Connection, entry_id: &str, case_id: &CaseId, now_micros: i64) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE inbox SET state = 'resolved', resolved_case = ?2, update_time = ?3
             WHERE entry_id = ?1 AND kind = 'unmatched' AND state = 'open'",
            params![entry_id, case_id.as_str(), now_micros],
        )
        .map_err(backend)?;
    if changed != 1 {
        return Err(StoreError::InvalidBatch(format!("inbox entry {entry_id} is not an open unmatched message")));
    }
    Ok(())
}

/// Within an append of a source message: the same message waiting as
/// unmatched (if it is) is resolved into the case.
pub(crate) fn resolve_source(
    tx: &Connection,
    source: &SourceKey,
    case_id: &CaseId,
    now_micros: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE inbox SET state = 'resolved', resolved_case = ?3, update_time = ?4
         WHERE kind = 'unmatched' AND system = ?1 AND source_message_id = ?2 AND state = 'open'",
        params![source.system, source.message_id, case_id.as_str(), now_micros],
    )
    .map_err(backend)?;
    Ok(())
}
