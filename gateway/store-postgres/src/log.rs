//! The case log: events, projections, snapshots, idempotency records,
//! source messages and the person index — and the append that writes them,
//! with the batch's deliveries and inbox changes, in one transaction.

use bro_domain::{CaseId, Date};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, DueStatus, RequestRecord, SourceKey, StoreError, StoredCase, StoredEvent,
};
use tokio_postgres::{Client, GenericClient, Row};

use crate::{Failure, backend, corrupt, from_micros, micros, pipeline};

/// The stored record of `request_id`, if a batch wrote it.
pub(crate) async fn find_request<C: GenericClient + Sync>(
    client: &C,
    request_id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    let row = client
        .query_opt(
            "SELECT case_id, fingerprint, first_sequence, last_sequence FROM requests WHERE request_id = $1",
            &[&request_id],
        )
        .await
        .map_err(backend)?;
    row.map(|r| {
        Ok(RequestRecord {
            request_id: request_id.to_owned(),
            case_id: CaseId::parse("case_id", r.get(0)).map_err(corrupt)?,
            fingerprint: r.get(1),
            first_sequence: r.get::<_, i64>(2) as u64,
            last_sequence: r.get::<_, i64>(3) as u64,
        })
    })
    .transpose()
}

/// The record of the batch that stored a source message, if one did.
pub(crate) async fn find_source<C: GenericClient + Sync>(
    client: &C,
    key: &SourceKey,
) -> Result<Option<RequestRecord>, StoreError> {
    let row = client
        .query_opt(
            "SELECT request_id FROM source_messages WHERE system = $1 AND message_id = $2",
            &[&key.system, &key.message_id],
        )
        .await
        .map_err(backend)?;
    match row {
        Some(r) => find_request(client, r.get::<_, &str>(0)).await,
        None => Ok(None),
    }
}

/// One batch in its transaction: a known request id or source message is
/// answered with its first record; a case not at the expected version is a
/// conflict; otherwise everything is written.
pub(crate) async fn append(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &AppendBatch,
) -> Result<AppendOutcome, Failure> {
    if let Some(record) = find_request(&**tx, &batch.request.request_id).await? {
        return Ok(AppendOutcome::AlreadyApplied(record));
    }
    if let Some(source) = &batch.source
        && let Some(record) = find_source(&**tx, source).await?
    {
        return Ok(AppendOutcome::AlreadyApplied(record));
    }
    let case_id = batch.case_id.as_str();
    let p = &batch.projection;
    // The case's row, locked until commit: no other append to it runs meanwhile.
    let locked = query_opt(tx, "SELECT version FROM cases WHERE case_id = $1 FOR UPDATE", &[&case_id]).await?;
    let current = locked.map_or(0, |r| r.get::<_, i64>(0) as u64);
    let conflict = |actual| {
        Failure::Store(StoreError::Conflict {
            case_id: batch.case_id.clone(),
            expected: batch.expected_version,
            actual,
        })
    };
    if current != batch.expected_version {
        return Err(conflict(current));
    }
    if batch.expected_version == 0 {
        // A concurrent creation holds the unique index: this waits, then inserts nothing.
        let inserted = exec(
            tx,
            "INSERT INTO cases (case_id, version, municipality_cvr, create_time, update_time, projection)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id) DO NOTHING",
            &[
                &case_id,
                &(p.version as i64),
                &p.municipality_cvr,
                &micros(p.create_time),
                &micros(p.update_time),
                &p.projection,
            ],
        )
        .await?;
        if inserted == 0 {
            let actual = tx.query_one("SELECT version FROM cases WHERE case_id = $1", &[&case_id]).await?;
            return Err(conflict(actual.get::<_, i64>(0) as u64));
        }
    } else {
        exec(
            tx,
            "UPDATE cases SET version = $2, municipality_cvr = $3, update_time = $4, projection = $5 WHERE case_id = $1",
            &[&case_id, &(p.version as i64), &p.municipality_cvr, &micros(p.update_time), &p.projection],
        )
        .await?;
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO events (case_id, sequence, occurred_on, record_time, request_id, payload)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    for e in &batch.events {
        let on = e.occurred_on.to_string();
        tx.execute(&insert, &[&case_id, &(e.sequence as i64), &on, &micros(e.record_time), &e.request_id, &e.payload])
            .await?;
    }
    if let Some(snapshot) = &batch.snapshot {
        exec(
            tx,
            "INSERT INTO snapshots (case_id, version, state) VALUES ($1, $2, $3)
             ON CONFLICT (case_id) DO UPDATE SET version = excluded.version, state = excluded.state",
            &[&case_id, &(snapshot.version as i64), &snapshot.state],
        )
        .await?;
    }
    crate::worklist::mark_stale(tx, &batch.case_id, &p.municipality_cvr).await?;
    let r = &batch.request;
    exec(
        tx,
        "INSERT INTO requests (request_id, case_id, fingerprint, first_sequence, last_sequence)
         VALUES ($1, $2, $3, $4, $5)",
        &[&r.request_id, &r.case_id.as_str(), &r.fingerprint, &(r.first_sequence as i64), &(r.last_sequence as i64)],
    )
    .await?;
    // The person index of the case becomes exactly the batch's keys.
    exec(tx, "DELETE FROM case_people WHERE case_id = $1", &[&case_id]).await?;
    for key in &batch.person_keys {
        exec(
            tx,
            "INSERT INTO case_people (person_key, case_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[key, &case_id],
        )
        .await?;
    }
    let now = micros(p.update_time);
    if let Some(entry_id) = &batch.resolves_inbox {
        pipeline::resolve_inbox(tx, entry_id, &batch.case_id, now).await?;
    }
    if let Some(source) = &batch.source {
        exec(
            tx,
            "INSERT INTO source_messages (system, message_id, request_id) VALUES ($1, $2, $3)",
            &[&source.system, &source.message_id, &r.request_id],
        )
        .await?;
        // The same message waiting as unmatched is now in a case.
        exec(
            tx,
            "UPDATE inbox SET state = 'resolved', resolved_case = $3, update_time = $4
             WHERE kind = 'unmatched' AND system = $1 AND source_message_id = $2 AND state = 'open'",
            &[&source.system, &source.message_id, &case_id, &now],
        )
        .await?;
    }
    for d in &batch.deliveries {
        pipeline::insert_delivery(&**tx, d).await?;
    }
    if !batch.audit.is_empty() {
        // Committed with the write, chained after it (see `audit`).
        let records: Vec<Vec<u8>> = batch.audit.iter().map(prost::Message::encode_to_vec).collect();
        exec(tx, "INSERT INTO audit_pending (record) SELECT * FROM unnest($1::BYTEA[])", &[&records]).await?;
    }
    Ok(AppendOutcome::Appended)
}

/// Runs a statement prepared once per connection (the pool's statement
/// cache): one round trip per execution instead of a parse and an execute.
async fn exec(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

/// [`exec`] for a query of at most one row.
async fn query_opt(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_opt(&statement, params).await
}

/// Events of a case after `after_sequence`, in order (the primary key's order).
pub(crate) async fn read(
    client: &Client,
    case_id: &CaseId,
    after_sequence: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = client
        .query(
            "SELECT sequence, occurred_on, record_time, request_id, payload FROM events
             WHERE case_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            &[&case_id.as_str(), &(after_sequence as i64), &(limit as i64)],
        )
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|r| {
            let sequence: i64 = r.get(0);
            Ok(StoredEvent {
                sequence: sequence as u64,
                occurred_on: r
                    .get::<_, &str>(1)
                    .parse::<Date>()
                    .map_err(|e| StoreError::Corrupt(format!("event {sequence} date: {e}")))?,
                record_time: from_micros(r.get(2)),
                request_id: r.get(3),
                payload: r.get(4),
            })
        })
        .collect()
}

const CASE_COLUMNS: &str =
    "c.ordinal, c.case_id, c.version, c.municipality_cvr, c.create_time, c.update_time, c.projection";

fn to_stored_case(r: &Row) -> Result<StoredCase, StoreError> {
    Ok(StoredCase {
        ordinal: r.get::<_, i64>(0) as u64,
        case_id: CaseId::parse("case_id", r.get(1)).map_err(corrupt)?,
        version: r.get::<_, i64>(2) as u64,
        municipality_cvr: r.get(3),
        create_time: from_micros(r.get(4)),
        update_time: from_micros(r.get(5)),
        projection: r.get(6),
    })
}

/// One case's row.
pub(crate) async fn get_case(client: &Client, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
    let row = client
        .query_opt(&format!("SELECT {CASE_COLUMNS} FROM cases c WHERE c.case_id = $1"), &[&case_id.as_str()])
        .await
        .map_err(backend)?;
    row.as_ref().map(to_stored_case).transpose()
}

/// Cases in creation order after an ordinal, of one municipality or all;
/// with `due`, only those whose worklist entry holds such an obligation.
pub(crate) async fn list_cases(client: &Client, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
    let after = query.after_ordinal as i64;
    let limit = query.limit as i64;
    let rows = match query.due {
        None => client
            .query(
                &format!(
                    "SELECT {CASE_COLUMNS} FROM cases c
                     WHERE c.ordinal > $1 AND ($2::TEXT IS NULL OR c.municipality_cvr = $2)
                     ORDER BY c.ordinal LIMIT $3"
                ),
                &[&after, &query.municipality_cvr, &limit],
            )
            .await
            .map_err(backend)?,
        Some(due) => {
            let wanted = match due {
                DueStatus::Any => "w.open + w.overdue > 0",
                DueStatus::Open => "w.open > 0",
                DueStatus::Overdue => "w.overdue > 0",
            };
            client
                .query(
                    &format!(
                        "SELECT {CASE_COLUMNS} FROM worklist w JOIN cases c ON c.case_id = w.case_id
                         WHERE w.ordinal > $1 AND ($2::TEXT IS NULL OR w.municipality_cvr = $2) AND {wanted}
                         ORDER BY w.ordinal LIMIT $3"
                    ),
                    &[&after, &query.municipality_cvr, &limit],
                )
                .await
                .map_err(backend)?
        }
    };
    rows.iter().map(to_stored_case).collect()
}

/// The cases whose people include the one with `person_key`, in creation order.
pub(crate) async fn cases_by_person(client: &Client, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
    let rows = client
        .query(
            "SELECT p.case_id FROM case_people p JOIN cases c ON c.case_id = p.case_id
             WHERE p.person_key = $1 ORDER BY c.ordinal",
            &[&person_key],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(|r| CaseId::parse("case_id", r.get(0)).map_err(corrupt)).collect()
}
