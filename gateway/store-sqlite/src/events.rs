//! The case log: events, projections, snapshots, idempotency records,
//! source messages and the person index — and the append that writes them, with the
//! batch's deliveries and inbox changes, in one transaction.

use bro_domain::{CaseId, Date};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, DueStatus, RequestRecord, SourceKey, StoreError, StoredCase, StoredEvent,
    StoredSnapshot,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{backend, corrupt, from_micros, inbox, micros, outbox, worklist};

/// The stored record of `request_id`, if a batch wrote it.
pub(crate) fn find_request(conn: &Connection, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
    conn.query_row(
        "SELECT case_id, fingerprint, first_sequence, last_sequence FROM requests WHERE request_id = ?1",
        [request_id],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
    )
    .optional()
    .map_err(backend)?
    .map(|(case, fingerprint, first, last)| {
        Ok(RequestRecord {
            request_id: request_id.to_owned(),
            case_id: CaseId::parse("case_id", &case).map_err(corrupt)?,
            fingerprint,
            first_sequence: first as u64,
            last_sequence: last as u64,
        })
    })
    .transpose()
}

/// The record of the batch that stored a source message, if one did.
pub(crate) fn find_source(conn: &Connection, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
    let request_id: Option<String> = conn
        .query_row(
            "SELECT request_id FROM source_messages WHERE system = ?1 AND message_id = ?2",
            params![key.system, key.message_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    match request_id {
        Some(id) => find_request(conn, &id),
        None => Ok(None),
    }
}

/// Writes a group of batches in one `IMMEDIATE` transaction and one commit
/// (the writer's lock is taken at `BEGIN`, so no version read below can
/// change before the commit). Each batch runs in its own savepoint, so it is
/// written whole or not at all and its failure is its own: the others in the
/// group are still written. The outer error is the group's (it could not
/// begin or commit): then nothing of it is durable. Batches see the ones
/// before them in the group, as if they had come one after the other.
pub(crate) fn append_group(
    conn: &mut Connection,
    batches: &[&AppendBatch],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let savepoint = tx.savepoint().map_err(backend)?;
        let outcome = append_one(&savepoint, batch);
        if outcome.is_ok() {
            savepoint.commit().map_err(backend)?;
        }
        // Dropped unreleased, the savepoint rolls the failed batch back.
        outcomes.push(outcome);
    }
    tx.commit().map_err(backend)?;
    Ok(outcomes)
}

/// One batch, inside the group's transaction: a known request id or source
/// message is answered with its first record; a case not at the expected
/// version is a conflict.
fn append_one(tx: &Connection, batch: &AppendBatch) -> Result<AppendOutcome, StoreError> {
    // Idempotency first: a retry is answered before the version is looked at.
    if let Some(record) = find_request(tx, &batch.request.request_id)? {
        return Ok(AppendOutcome::AlreadyApplied(record));
    }
    if let Some(source) = &batch.source
        && let Some(record) = find_source(tx, source)?
    {
        return Ok(AppendOutcome::AlreadyApplied(record));
    }
    // The optimistic check: 0 means the case must not exist yet.
    let current: u64 = tx
        .query_row("SELECT version FROM cases WHERE case_id = ?1", [batch.case_id.as_str()], |r| r.get::<_, i64>(0))
        .optional()
        .map_err(backend)?
        .map_or(0, |v| v as u64);
    if current != batch.expected_version {
        return Err(StoreError::Conflict {
            case_id: batch.case_id.clone(),
            expected: batch.expected_version,
            actual: current,
        });
    }
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (case_id, sequence, occurred_on, record_time, request_id, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(backend)?;
        for e in &batch.events {
            insert
                .execute(params![
                    batch.case_id.as_str(),
                    e.sequence as i64,
                    e.occurred_on.to_string(),
                    micros(e.record_time),
                    e.request_id,
                    e.payload
                ])
                .map_err(backend)?;
        }
    }
    write_projection(tx, batch)?;
    if let Some(snapshot) = &batch.snapshot {
        tx.prepare_cached("INSERT OR REPLACE INTO snapshots (case_id, version, state) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![batch.case_id.as_str(), snapshot.version as i64, snapshot.state]))
            .map_err(backend)?;
    }
    worklist::mark_stale(tx, &batch.case_id, &batch.projection.municipality_cvr)?;
    let r = &batch.request;
    tx.execute(
        "INSERT INTO requests (request_id, case_id, fingerprint, first_sequence, last_sequence)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.request_id, r.case_id.as_str(), r.fingerprint, r.first_sequence as i64, r.last_sequence as i64],
    )
    .map_err(backend)?;
    // The person index of the case becomes exactly the batch's keys.
    tx.execute("DELETE FROM case_people WHERE case_id = ?1", [batch.case_id.as_str()]).map_err(backend)?;
    for key in &batch.person_keys {
        tx.execute(
            "INSERT OR IGNORE INTO case_people (person_key, case_id) VALUES (?1, ?2)",
            params![key, batch.case_id.as_str()],
        )
        .map_err(backend)?;
    }
    let now = micros(batch.projection.update_time);
    if let Some(entry_id) = &batch.resolves_inbox {
        inbox::resolve(tx, entry_id, &batch.case_id, now)?;
    }
    if let Some(source) = &batch.source {
        tx.execute(
            "INSERT INTO source_messages (system, message_id, request_id) VALUES (?1, ?2, ?3)",
            params![source.system, source.message_id, r.request_id],
        )
        .map_err(backend)?;
        // The same message waiting as unmatched is now in a case.
        inbox::resolve_source(tx, source, &batch.case_id, now)?;
    }
    for d in &batch.deliveries {
        outbox::insert(tx, d)?;
    }
    Ok(AppendOutcome::Appended)
}

/// The case's row: inserted with its first events, replaced with every
/// later batch (its creation time and ordinal stay).
fn write_projection(tx: &Connection, batch: &AppendBatch) -> Result<(), StoreError> {
    let p = &batch.projection;
    if batch.expected_version == 0 {
        tx.execute(
            "INSERT INTO cases (case_id, version, municipality_cvr, create_time, update_time, projection)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.case_id.as_str(),
                p.version as i64,
                p.municipality_cvr,
                micros(p.create_time),
                micros(p.update_time),
                p.projection
            ],
        )
    } else {
        tx.execute(
            "UPDATE cases SET version = ?2, municipality_cvr = ?3, update_time = ?4, projection = ?5
             WHERE case_id = ?1",
            params![p.case_id.as_str(), p.version as i64, p.municipality_cvr, micros(p.update_time), p.projection],
        )
    }
    .map_err(backend)?;
    Ok(())
}

/// Events of a case after `after_sequence`, in order (the primary key's order).
pub(crate) fn read(
    conn: &Connection,
    case_id: &CaseId,
    after_sequence: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT sequence, occurred_on, record_time, request_id, payload FROM events
             WHERE case_id = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![case_id.as_str(), after_sequence as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(backend)?;
    rows.map(|row| {
        let (sequence, occurred_on, record_time, request_id, payload) = row.map_err(backend)?;
        Ok(StoredEvent {
            sequence: sequence as u64,
            occurred_on: occurred_on
                .parse::<Date>()
                .map_err(|e| StoreError::Corrupt(format!("event {sequence} date: {e}")))?,
            record_time: from_micros(record_time),
            request_id,
            payload,
        })
    })
    .collect()
}

const CASE_COLUMNS: &str = "ordinal, case_id, version, municipality_cvr, create_time, update_time, projection";

/// A `cases` row as SQLite returns it.
type CaseRow = (i64, String, i64, String, i64, i64, Vec<u8>);

fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_stored_case(row: CaseRow) -> Result<StoredCase, StoreError> {
    let (ordinal, case_id, version, cvr, created, updated, projection) = row;
    Ok(StoredCase {
        case_id: CaseId::parse("case_id", &case_id).map_err(corrupt)?,
        ordinal: ordinal as u64,
        version: version as u64,
        municipality_cvr: cvr,
        create_time: from_micros(created),
        update_time: from_micros(updated),
        projection,
    })
}

/// One case's row.
pub(crate) fn get_case(conn: &Connection, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
    conn.query_row(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE case_id = ?1"), [case_id.as_str()], case_row)
        .optional()
        .map_err(backend)?
        .map(to_stored_case)
        .transpose()
}

/// A case's version, from its row's own column (the projection is not read).
pub(crate) fn case_version(conn: &Connection, case_id: &CaseId) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached("SELECT version FROM cases WHERE case_id = ?1")
        .and_then(|mut s| s.query_row([case_id.as_str()], |r| r.get::<_, i64>(0)).optional())
        .map(|v| v.map(|v| v as u64))
        .map_err(backend)
}

/// The case's latest snapshot.
pub(crate) fn get_snapshot(conn: &Connection, case_id: &CaseId) -> Result<Option<StoredSnapshot>, StoreError> {
    conn.query_row("SELECT version, state FROM snapshots WHERE case_id = ?1", [case_id.as_str()], |r| {
        Ok(StoredSnapshot { version: r.get::<_, i64>(0)? as u64, state: r.get(1)? })
    })
    .optional()
    .map_err(backend)
}

/// Cases in creation order after an ordinal, of one municipality or all
/// (`?2 IS NULL`: no filter; `cases_by_municipality` serves the filtered form).
pub(crate) fn list_cases(conn: &Connection, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
    if let Some(due) = query.due {
        return list_due_cases(conn, query, due);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM cases
             WHERE ordinal > ?1 AND (?2 IS NULL OR municipality_cvr = ?2)
             ORDER BY ordinal LIMIT ?3"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![query.after_ordinal as i64, query.municipality_cvr, query.limit as i64], case_row)
        .map_err(backend)?;
    rows.map(|r| to_stored_case(r.map_err(backend)?)).collect()
}

/// Cases whose worklist entry holds a `due` obligation, in creation order
/// (`worklist_by_ordinal` serves it; the counts are the entry's).
fn list_due_cases(conn: &Connection, query: &CaseQuery, due: DueStatus) -> Result<Vec<StoredCase>, StoreError> {
    let columns = CASE_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
    let wanted = match due {
        DueStatus::Any => "w.open + w.overdue > 0",
        DueStatus::Open => "w.open > 0",
        DueStatus::Overdue => "w.overdue > 0",
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {columns} FROM worklist w JOIN cases c ON c.case_id = w.case_id
             WHERE w.ordinal > ?1 AND (?2 IS NULL OR w.municipality_cvr = ?2) AND {wanted}
             ORDER BY w.ordinal LIMIT ?3"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![query.after_ordinal as i64, query.municipality_cvr, query.limit as i64], case_row)
        .map_err(backend)?;
    rows.map(|r| to_stored_case(r.map_err(backend)?)).collect()
}

/// The cases whose people include the one with `person_key`, in creation order.
pub(crate) fn cases_by_person(conn: &Connection, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT p.case_id FROM case_people p JOIN cases c ON c.case_id = p.case_id
             WHERE p.person_key = ?1 ORDER BY c.ordinal",
        )
        .map_err(backend)?;
    let rows = stmt.query_map([person_key], |r| r.get::<_, String>(0)).map_err(backend)?;
    rows.map(|r| CaseId::parse("case_id", &r.map_err(backend)?).map_err(corrupt)).collect()
}
