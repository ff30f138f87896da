//! The worklist index: `worklist` holds per case the state of its entry,
//! `worklist_items` the due obligations, keyed by municipality and a sort
//! key that compares bytewise (`COLLATE "C"`), so a page is one range scan.
//! An append makes its case's entry stale in its own transaction
//! ([`mark_stale`]); an entry is stored only while its case is still at the
//! entry's version, judged under the case row's lock ([`put`]).

use bro_domain::{CaseId, Date};
use bro_store::{DueItem, DueQuery, DueStatus, StoreError, StoredDueItem, WorklistEntry};
use tokio_postgres::{Client, Transaction};

use bro_store::day_number;

use crate::{Failure, backend, corrupt, from_day_number};

/// `refresh_on` of an entry that holds until its case changes.
const NEVER: i64 = i64::MAX;

/// In an append's transaction: the case's entry is stale from now on, and
/// (when the case moved to another municipality) its items leave the old
/// municipality's worklist. A new case gets a stale entry.
pub(crate) async fn mark_stale(tx: &Transaction<'_>, case_id: &CaseId, municipality_cvr: &str) -> Result<(), Failure> {
    tx.execute(
        "INSERT INTO worklist (case_id, municipality_cvr, ordinal, version, revision, evaluated_on, refresh_on,
                               open, overdue)
         SELECT case_id, municipality_cvr, ordinal, 0, '', 0, 0, 0, 0 FROM cases WHERE case_id = $1
         ON CONFLICT (case_id) DO UPDATE SET refresh_on = 0, municipality_cvr = excluded.municipality_cvr",
        &[&case_id.as_str()],
    )
    .await?;
    tx.execute(
        "DELETE FROM worklist_items WHERE case_id = $1 AND municipality_cvr <> $2",
        &[&case_id.as_str(), &municipality_cvr],
    )
    .await?;
    Ok(())
}

/// Cases of a municipality whose entry is stale on `today`.
pub(crate) async fn stale(
    client: &Client,
    municipality_cvr: &str,
    today: Date,
    limit: usize,
) -> Result<Vec<CaseId>, StoreError> {
    let rows = client
        .query(
            "SELECT case_id FROM worklist WHERE municipality_cvr = $1 AND refresh_on <= $2
             UNION
             SELECT case_id FROM worklist WHERE municipality_cvr = $1 AND evaluated_on > $2
             LIMIT $3",
            &[&municipality_cvr, &day_number(today), &(limit as i64)],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(|r| CaseId::parse("case_id", r.get(0)).map_err(corrupt)).collect()
}

/// Stores each entry whose case is still at its version: the case's row is
/// locked (`FOR SHARE`) so no append can move it before this commits.
pub(crate) async fn put(tx: &Transaction<'_>, entries: &[WorklistEntry]) -> Result<usize, StoreError> {
    let mut stored = 0;
    // In case order, so two concurrent puts lock rows in the same order.
    let mut entries: Vec<&WorklistEntry> = entries.iter().collect();
    entries.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    for entry in entries {
        let case_id = entry.case_id.as_str();
        let current = tx
            .query_opt("SELECT version FROM cases WHERE case_id = $1 FOR SHARE", &[&case_id])
            .await
            .map_err(backend)?
            .map(|r| r.get::<_, i64>(0) as u64);
        if current != Some(entry.version) {
            // The case moved on (or is gone): its entry stays stale.
            continue;
        }
        let open = entry.items.iter().filter(|i| !i.overdue).count() as i64;
        let overdue = entry.items.len() as i64 - open;
        let refresh_on = entry.valid_until.map_or(NEVER, day_number);
        let updated = tx
            .execute(
                "UPDATE worklist SET version = $2, municipality_cvr = $3, revision = $4, evaluated_on = $5,
                        refresh_on = $6, open = $7, overdue = $8
                 WHERE case_id = $1",
                &[
                    &case_id,
                    &(entry.version as i64),
                    &entry.municipality_cvr,
                    &entry.revision,
                    &day_number(entry.evaluated_on),
                    &refresh_on,
                    &open,
                    &overdue,
                ],
            )
            .await
            .map_err(backend)?;
        if updated == 0 {
            continue;
        }
        tx.execute("DELETE FROM worklist_items WHERE case_id = $1", &[&case_id]).await.map_err(backend)?;
        for item in &entry.items {
            tx.execute(
                "INSERT INTO worklist_items (municipality_cvr, sort_key, case_id, overdue, due_on, obligation)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &entry.municipality_cvr,
                    &item.sort_key,
                    &case_id,
                    &item.overdue,
                    &item.due_on.map(day_number),
                    &item.obligation,
                ],
            )
            .await
            .map_err(backend)?;
        }
        stored += 1;
    }
    Ok(stored)
}

/// A page of a municipality's worklist: one scan of the primary key.
pub(crate) async fn page(client: &Client, query: &DueQuery) -> Result<Vec<StoredDueItem>, StoreError> {
    let overdue_only = match query.status {
        DueStatus::Any => None,
        DueStatus::Open => Some(false),
        DueStatus::Overdue => Some(true),
    };
    let rows = client
        .query(
            "SELECT sort_key, case_id, overdue, due_on, obligation FROM worklist_items
             WHERE municipality_cvr = $1 AND sort_key > $2 AND ($3::BOOLEAN IS NULL OR overdue = $3)
               AND ($4::BIGINT IS NULL OR due_on <= $4)
             ORDER BY sort_key LIMIT $5",
            &[
                &query.municipality_cvr,
                &query.after_key,
                &overdue_only,
                &query.due_on_or_before.map(day_number),
                &(query.limit as i64),
            ],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(StoredDueItem {
                case_id: CaseId::parse("case_id", r.get(1)).map_err(corrupt)?,
                item: DueItem {
                    sort_key: r.get(0),
                    overdue: r.get(2),
                    due_on: r.get::<_, Option<i64>>(3).map(from_day_number).transpose()?,
                    obligation: r.get(4),
                },
            })
        })
        .collect()
}
