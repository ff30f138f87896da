//! The worklist index: `worklist` holds per case the state of its entry
//! (the version and day evaluated, the day it goes stale, its counts of
//! open and overdue obligations), `worklist_items` the due obligations
//! themselves, keyed by municipality and sort key so that a page is one
//! range scan. An append sets its case's `refresh_on` to 0 (stale now) in
//! its own transaction ([`mark_stale`]).

use bro_domain::{CaseId, Date};
use bro_store::{DueItem, DueQuery, DueStatus, StoreError, StoredDueItem, WorklistEntry, day_number};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::{backend, corrupt};

/// `refresh_on` of an entry that holds until its case changes.
const NEVER: i64 = i64::MAX;

fn from_day_number(n: i64) -> Result<Date, StoreError> {
    bro_store::from_day_number(n).ok_or_else(|| corrupt(format!("worklist day number {n} is out of range")))
}

/// In an append's transaction: the case's entry is stale from now on, and
/// (when the case moved to another municipality) its items leave the old
/// municipality's worklist. A new case gets a stale entry.
pub(crate) fn mark_stale(tx: &Connection, case_id: &CaseId, municipality_cvr: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO worklist (case_id, municipality_cvr, ordinal, version, revision, evaluated_on, refresh_on,
                               open, overdue)
         SELECT case_id, municipality_cvr, ordinal, 0, '', 0, 0, 0, 0 FROM cases WHERE case_id = ?1
         ON CONFLICT (case_id) DO UPDATE SET refresh_on = 0, municipality_cvr = excluded.municipality_cvr",
    )
    .map_err(backend)?
    .execute([case_id.as_str()])
    .map_err(backend)?;
    tx.prepare_cached("DELETE FROM worklist_items WHERE case_id = ?1 AND municipality_cvr != ?2")
        .map_err(backend)?
        .execute(params![case_id.as_str(), municipality_cvr])
        .map_err(backend)?;
    Ok(())
}

/// Cases of a municipality whose entry is stale on `today`.
pub(crate) fn stale(
    conn: &Connection,
    municipality_cvr: &str,
    today: Date,
    limit: usize,
) -> Result<Vec<CaseId>, StoreError> {
    // Two range scans: past their refresh day, and evaluated for a later day.
    let mut stmt = conn
        .prepare_cached(
            "SELECT case_id FROM worklist WHERE municipality_cvr = ?1 AND refresh_on <= ?2
             UNION
             SELECT case_id FROM worklist WHERE municipality_cvr = ?1 AND evaluated_on > ?2
             LIMIT ?3",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![municipality_cvr, day_number(today), limit as i64], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    rows.map(|r| CaseId::parse("case_id", &r.map_err(backend)?).map_err(corrupt)).collect()
}

/// Stores each entry whose case is still at its version, in one transaction.
pub(crate) fn put(conn: &mut Connection, entries: &[WorklistEntry]) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let mut stored = 0;
    for entry in entries {
        let open = entry.items.iter().filter(|i| !i.overdue).count() as i64;
        let overdue = entry.items.len() as i64 - open;
        let refresh_on = entry.valid_until.map_or(NEVER, day_number);
        let updated = tx
            .prepare_cached(
                "UPDATE worklist SET version = ?2, municipality_cvr = ?3, revision = ?4, evaluated_on = ?5,
                        refresh_on = ?6, open = ?7, overdue = ?8
                 WHERE case_id = ?1 AND (SELECT version FROM cases WHERE case_id = ?1) = ?2",
            )
            .map_err(backend)?
            .execute(params![
                entry.case_id.as_str(),
                entry.version as i64,
                entry.municipality_cvr,
                entry.revision,
                day_number(entry.evaluated_on),
                refresh_on,
                open,
                overdue
            ])
            .map_err(backend)?;
        if updated == 0 {
            // The case moved on (or is gone): its entry stays stale.
            continue;
        }
        tx.prepare_cached("DELETE FROM worklist_items WHERE case_id = ?1")
            .map_err(backend)?
            .execute([entry.case_id.as_str()])
            .map_err(backend)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO worklist_items (municipality_cvr, sort_key, case_id, overdue, due_on, obligation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(backend)?;
        for item in &entry.items {
            insert
                .execute(params![
                    entry.municipality_cvr,
                    item.sort_key,
                    entry.case_id.as_str(),
                    item.overdue,
                    item.due_on.map(day_number),
                    item.obligation
                ])
                .map_err(backend)?;
        }
        stored += 1;
    }
    tx.commit().map_err(backend)?;
    Ok(stored)
}

/// Every entry of another revision becomes stale.
pub(crate) fn reset(conn: &Connection, revision: &str) -> Result<u64, StoreError> {
    conn.execute("UPDATE worklist SET refresh_on = 0 WHERE revision != ?1 AND refresh_on != 0", [revision])
        .map(|n| n as u64)
        .map_err(backend)
}

/// A page of a municipality's worklist: one scan of the primary key.
pub(crate) fn page(conn: &Connection, query: &DueQuery) -> Result<Vec<StoredDueItem>, StoreError> {
    let overdue_only = match query.status {
        DueStatus::Any => None,
        DueStatus::Open => Some(false),
        DueStatus::Overdue => Some(true),
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT sort_key, case_id, overdue, due_on, obligation FROM worklist_items
             WHERE municipality_cvr = ?1 AND sort_key > ?2 AND (?3 IS NULL OR overdue = ?3)
               AND (?4 IS NULL OR due_on <= ?4)
             ORDER BY sort_key LIMIT ?5",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                query.municipality_cvr,
                query.after_key,
                overdue_only,
                query.due_on_or_before.map(day_number),
                query.limit as i64
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )
        .map_err(backend)?;
    rows.map(|row| {
        let (sort_key, case_id, overdue, due_on, obligation) = row.map_err(backend)?;
        Ok(StoredDueItem {
            case_id: CaseId::parse("case_id", &case_id).map_err(corrupt)?,
            item: DueItem { sort_key, overdue, due_on: due_on.map(from_day_number).transpose()?, obligation },
        })
    })
    .collect()
}
