//! The outbox: one row per delivery of a batch to a receiving system, in
//! the same transaction as its events; its state, attempts and next attempt;
//! and the translated message once the worker rendered it.

use bro_domain::{CaseId, Timestamp};
use bro_store::{
    ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery, DeliveryState, DeliveryUpdate, LeaseToken, NewDelivery,
    StoreError,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::{backend, corrupt, from_micros, micros};

/// Enqueues a delivery: pending, no attempts, due at once.
pub(crate) fn insert(conn: &Connection, d: &NewDelivery) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO deliveries (delivery_id, system, case_id, first_sequence, last_sequence, payload, create_time,
                                 replay_of, state, attempts, next_attempt_time, last_error, update_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?7, '', ?7)",
        params![
            d.delivery_id,
            d.system,
            d.case_id.as_str(),
            d.first_sequence as i64,
            d.last_sequence as i64,
            d.payload,
            micros(d.create_time),
            d.replay_of
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// The due heads of the (system, case) queues: pending, due at `?1`, and
/// no earlier delivery of the same system and case still pending (so a
/// case's deliveries to a system go in order; `deliveries_queue` serves it).
const DUE_HEADS: &str = "FROM deliveries AS d
    WHERE state = 'pending' AND next_attempt_time <= ?1
      AND NOT EXISTS (SELECT 1 FROM deliveries AS e
                      WHERE e.system = d.system AND e.case_id = d.case_id
                        AND e.state = 'pending' AND e.ordinal < d.ordinal)";

const DELIVERY_COLUMNS: &str = "ordinal, delivery_id, system, case_id, first_sequence, last_sequence, payload, \
    create_time, replay_of, state, attempts, next_attempt_time, last_error, update_time, rendered_type, rendered_body";

/// A `deliveries` row as SQLite returns it.
struct DeliveryRow {
    ordinal: i64,
    delivery_id: String,
    system: String,
    case_id: String,
    first_sequence: i64,
    last_sequence: i64,
    payload: Vec<u8>,
    create_time: i64,
    replay_of: String,
    state: String,
    attempts: i64,
    next_attempt_time: i64,
    last_error: String,
    update_time: i64,
    rendered_type: Option<String>,
    rendered_body: Option<Vec<u8>>,
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        ordinal: r.get(0)?,
        delivery_id: r.get(1)?,
        system: r.get(2)?,
        case_id: r.get(3)?,
        first_sequence: r.get(4)?,
        last_sequence: r.get(5)?,
        payload: r.get(6)?,
        create_time: r.get(7)?,
        replay_of: r.get(8)?,
        state: r.get(9)?,
        attempts: r.get(10)?,
        next_attempt_time: r.get(11)?,
        last_error: r.get(12)?,
        update_time: r.get(13)?,
        rendered_type: r.get(14)?,
        rendered_body: r.get(15)?,
    })
}

fn to_delivery(row: DeliveryRow) -> Result<Delivery, StoreError> {
    let damaged = |what: &str| StoreError::Corrupt(format!("delivery {}: {what}", row.delivery_id));
    Ok(Delivery {
        ordinal: row.ordinal as u64,
        state: DeliveryState::parse(&row.state).ok_or_else(|| damaged("unknown state"))?,
        attempts: u32::try_from(row.attempts).map_err(|_| damaged("attempts out of range"))?,
        next_attempt_time: from_micros(row.next_attempt_time),
        last_error: row.last_error,
        update_time: from_micros(row.update_time),
        rendered: row.rendered_type.zip(row.rendered_body),
        new: NewDelivery {
            case_id: CaseId::parse("case_id", &row.case_id).map_err(corrupt)?,
            delivery_id: row.delivery_id,
            system: row.system,
            first_sequence: row.first_sequence as u64,
            last_sequence: row.last_sequence as u64,
            payload: row.payload,
            create_time: from_micros(row.create_time),
            replay_of: row.replay_of,
        },
    })
}

/// Pending deliveries due at `now`, oldest first — only the head of each
/// (system, case) queue ([`DUE_HEADS`]).
pub(crate) fn due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} {DUE_HEADS}
             ORDER BY next_attempt_time, ordinal LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = stmt.query_map(params![micros(now), limit as i64], delivery_row).map_err(backend)?;
    rows.map(|r| to_delivery(r.map_err(backend)?)).collect()
}

/// Claims the due heads of queues without a live lease, in one write
/// transaction (SQLite has one writer, so claims never overlap): each
/// queue's lease row is taken over — its epoch raised — only if it has
/// lapsed, so a queue held is never claimed twice.
pub(crate) fn claim(
    conn: &mut Connection,
    holder: &str,
    now: Timestamp,
    expire_time: Timestamp,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let heads = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} {DUE_HEADS}
                   AND NOT EXISTS (SELECT 1 FROM delivery_leases AS l
                                   WHERE l.system = d.system AND l.case_id = d.case_id AND l.expire_time > ?1)
                 ORDER BY next_attempt_time, ordinal LIMIT ?2"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map(params![micros(now), limit as i64], delivery_row).map_err(backend)?;
        rows.map(|r| to_delivery(r.map_err(backend)?)).collect::<Result<Vec<_>, _>>()?
    };
    let mut claimed = Vec::with_capacity(heads.len());
    for delivery in heads {
        if let Some(epoch) = take_lease(&tx, &delivery, holder, now, expire_time)? {
            let lease = DeliveryLease {
                system: delivery.new.system.clone(),
                case_id: delivery.new.case_id.clone(),
                token: LeaseToken { holder: holder.to_owned(), epoch },
                expire_time,
            };
            claimed.push(ClaimedDelivery { delivery, lease });
        }
    }
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

/// Takes a queue's lease for `holder` unless a live one holds it; the new epoch.
fn take_lease(
    tx: &Transaction<'_>,
    delivery: &Delivery,
    holder: &str,
    now: Timestamp,
    expire_time: Timestamp,
) -> Result<Option<u64>, StoreError> {
    tx.query_row(
        "INSERT INTO delivery_leases (system, case_id, holder, epoch, expire_time) VALUES (?1, ?2, ?3, 1, ?4)
         ON CONFLICT (system, case_id) DO UPDATE
             SET holder = excluded.holder, epoch = epoch + 1, expire_time = excluded.expire_time
             WHERE expire_time <= ?5
         RETURNING epoch",
        params![delivery.new.system, delivery.new.case_id.as_str(), holder, micros(expire_time), micros(now)],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|epoch| epoch.map(|e| e as u64))
    .map_err(backend)
}

/// Extends a lease still its queue's latest; whether it was.
pub(crate) fn renew(conn: &Connection, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError> {
    let changed = conn
        .execute(
            "UPDATE delivery_leases SET expire_time = ?5
             WHERE system = ?1 AND case_id = ?2 AND holder = ?3 AND epoch = ?4 AND expire_time <> 0",
            params![
                lease.system,
                lease.case_id.as_str(),
                lease.token.holder,
                lease.token.epoch as i64,
                micros(expire_time)
            ],
        )
        .map_err(backend)?;
    Ok(changed == 1)
}

/// Ends a lease still its queue's latest (its epoch stays, so the next claim's is higher).
pub(crate) fn release(
    conn: &Connection,
    system: &str,
    case_id: &CaseId,
    token: &LeaseToken,
) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE delivery_leases SET expire_time = 0
         WHERE system = ?1 AND case_id = ?2 AND holder = ?3 AND epoch = ?4 AND expire_time <> 0",
        params![system, case_id.as_str(), token.holder, token.epoch as i64],
    )
    .map_err(backend)
}

/// Leases live at `now`, by queue.
pub(crate) fn live_leases(conn: &Connection, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT system, case_id, holder, epoch, expire_time FROM delivery_leases
             WHERE expire_time > ?1 ORDER BY system, case_id",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([micros(now)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get::<_, i64>(3)?, r.get(4)?))
        })
        .map_err(backend)?;
    rows.map(|r| {
        let (system, case_id, holder, epoch, expire_time) = r.map_err(backend)?;
        Ok(DeliveryLease {
            system,
            case_id: CaseId::parse("case_id", &case_id).map_err(corrupt)?,
            token: LeaseToken { holder, epoch: epoch as u64 },
            expire_time: from_micros(expire_time),
        })
    })
    .collect()
}

/// Applies a state change if the delivery is still in `update.from` (a
/// compare-and-set: two attempts cannot both move it) and, under a lease,
/// the lease is still the queue's latest — then ending it, in the same
/// transaction; a rendering, once stored, is kept when a later change
/// brings none (`coalesce`).
pub(crate) fn update(conn: &mut Connection, update: DeliveryUpdate) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    if let Some(token) = &update.lease
        && release(&tx, &update.system, &update.case_id, token)? != 1
    {
        return Ok(false);
    }
    let changed = apply_update(&tx, update)?;
    tx.commit().map_err(backend)?;
    Ok(changed)
}

fn apply_update(conn: &Connection, update: DeliveryUpdate) -> Result<bool, StoreError> {
    let (rendered_type, rendered_body) = match update.rendered {
        Some((t, b)) => (Some(t), Some(b)),
        None => (None, None),
    };
    let changed = conn
        .execute(
            "UPDATE deliveries SET state = ?3, attempts = ?4, next_attempt_time = ?5, last_error = ?6,
                 update_time = ?7,
                 rendered_type = coalesce(?8, rendered_type), rendered_body = coalesce(?9, rendered_body)
             WHERE delivery_id = ?1 AND state = ?2 AND system = ?10 AND case_id = ?11",
            params![
                update.delivery_id,
                update.from.as_str(),
                update.to.as_str(),
                update.attempts,
                micros(update.next_attempt_time),
                update.last_error,
                micros(update.update_time),
                rendered_type,
                rendered_body,
                update.system,
                update.case_id.as_str()
            ],
        )
        .map_err(backend)?;
    Ok(changed == 1)
}

/// One delivery.
pub(crate) fn get(conn: &Connection, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
    conn.query_row(
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?1"),
        [delivery_id],
        delivery_row,
    )
    .optional()
    .map_err(backend)?
    .map(to_delivery)
    .transpose()
}

/// Deliveries in enqueue order after an ordinal, each filter applied only
/// when given (`?n IS NULL OR …`).
pub(crate) fn list(conn: &Connection, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE ordinal > ?1 AND (?2 IS NULL OR system = ?2) AND (?3 IS NULL OR state = ?3)
               AND (?4 IS NULL OR case_id = ?4)
             ORDER BY ordinal LIMIT ?5"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                query.after_ordinal as i64,
                query.system,
                query.state.map(DeliveryState::as_str),
                query.case_id.as_ref().map(CaseId::as_str),
                query.limit as i64
            ],
            delivery_row,
        )
        .map_err(backend)?;
    rows.map(|r| to_delivery(r.map_err(backend)?)).collect()
}
