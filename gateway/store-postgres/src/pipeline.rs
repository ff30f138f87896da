//! The outbox (one row per delivery of a batch to a receiving system, in
//! the same transaction as its events) and the inbox (unmatched and
//! rejected messages).

use bro_domain::{CaseId, Timestamp};
use bro_store::{
    ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery, DeliveryState, DeliveryUpdate, InboxEntry, InboxKind,
    InboxPut, InboxQuery, InboxState, LeaseToken, NewDelivery, StoreError,
};
use tokio_postgres::{Client, GenericClient, Row, Transaction};

use crate::{Failure, backend, corrupt, from_micros, micros};

/// Enqueues a delivery: pending, no attempts, due at once.
pub(crate) async fn insert_delivery<C: GenericClient + Sync>(client: &C, d: &NewDelivery) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO deliveries (delivery_id, system, case_id, first_sequence, last_sequence, payload,
                                     create_time, replay_of, state, attempts, next_attempt_time, last_error,
                                     update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $7, '', $7)",
            &[
                &d.delivery_id,
                &d.system,
                &d.case_id.as_str(),
                &(d.first_sequence as i64),
                &(d.last_sequence as i64),
                &d.payload,
                &micros(d.create_time),
                &d.replay_of,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// The due heads of the (system, case) queues: pending, due at `$1`, and
/// no earlier delivery of the same system and case still pending (so a
/// case's deliveries to a system go in order; `deliveries_queue` serves it).
const DUE_HEADS: &str = "FROM deliveries AS d
    WHERE state = 'pending' AND next_attempt_time <= $1
      AND NOT EXISTS (SELECT 1 FROM deliveries AS e
                      WHERE e.system = d.system AND e.case_id = d.case_id
                        AND e.state = 'pending' AND e.ordinal < d.ordinal)";

const DELIVERY_COLUMNS: &str = "ordinal, delivery_id, system, case_id, first_sequence, last_sequence, payload, \
    create_time, replay_of, state, attempts, next_attempt_time, last_error, update_time, rendered_type, rendered_body";

fn to_delivery(r: &Row) -> Result<Delivery, StoreError> {
    let delivery_id: String = r.get(1);
    let damaged = |what: &str| StoreError::Corrupt(format!("delivery {delivery_id}: {what}"));
    let rendered_type: Option<String> = r.get(14);
    let rendered_body: Option<Vec<u8>> = r.get(15);
    Ok(Delivery {
        ordinal: r.get::<_, i64>(0) as u64,
        state: DeliveryState::parse(r.get(9)).ok_or_else(|| damaged("unknown state"))?,
        attempts: u32::try_from(r.get::<_, i64>(10)).map_err(|_| damaged("attempts out of range"))?,
        next_attempt_time: from_micros(r.get(11)),
        last_error: r.get(12),
        update_time: from_micros(r.get(13)),
        rendered: rendered_type.zip(rendered_body),
        new: NewDelivery {
            case_id: CaseId::parse("case_id", r.get(3)).map_err(corrupt)?,
            system: r.get(2),
            first_sequence: r.get::<_, i64>(4) as u64,
            last_sequence: r.get::<_, i64>(5) as u64,
            payload: r.get(6),
            create_time: from_micros(r.get(7)),
            replay_of: r.get(8),
            delivery_id,
        },
    })
}

/// Pending deliveries due at `now`, oldest first — only the head of each
/// (system, case) queue, so a case's deliveries to a system go in order.
pub(crate) async fn due_deliveries(client: &Client, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} {DUE_HEADS}
                 ORDER BY next_attempt_time, ordinal LIMIT $2"
            ),
            &[&micros(now), &(limit as i64)],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(to_delivery).collect()
}

/// Claims the due heads of queues without a live lease. The heads are
/// locked `FOR UPDATE SKIP LOCKED`, so claimers at once pass over each
/// other's candidates instead of waiting; each queue's lease row is then
/// taken over — its epoch raised — only if it has lapsed (the row lock
/// makes a second claimer wait and then see it live), so a queue is never
/// claimed twice. Row locks are taken delivery first, lease second, as in
/// [`update_delivery`], so the two never deadlock.
pub(crate) async fn claim(
    tx: &Transaction<'_>,
    holder: &str,
    now: Timestamp,
    expire_time: Timestamp,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} {DUE_HEADS}
                   AND NOT EXISTS (SELECT 1 FROM delivery_leases AS l
                                   WHERE l.system = d.system AND l.case_id = d.case_id AND l.expire_time > $1)
                 ORDER BY next_attempt_time, ordinal LIMIT $2
                 FOR UPDATE OF d SKIP LOCKED"
            ),
            &[&micros(now), &(limit as i64)],
        )
        .await
        .map_err(backend)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let delivery = to_delivery(row)?;
        let epoch = tx
            .query_opt(
                "INSERT INTO delivery_leases (system, case_id, holder, epoch, expire_time) VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (system, case_id) DO UPDATE
                     SET holder = EXCLUDED.holder, epoch = delivery_leases.epoch + 1,
                         expire_time = EXCLUDED.expire_time
                     WHERE delivery_leases.expire_time <= $5
                 RETURNING epoch",
                &[&delivery.new.system, &delivery.new.case_id.as_str(), &holder, &micros(expire_time), &micros(now)],
            )
            .await
            .map_err(backend)?;
        if let Some(epoch) = epoch {
            let lease = DeliveryLease {
                system: delivery.new.system.clone(),
                case_id: delivery.new.case_id.clone(),
                token: LeaseToken { holder: holder.to_owned(), epoch: epoch.get::<_, i64>(0) as u64 },
                expire_time,
            };
            claimed.push(ClaimedDelivery { delivery, lease });
        }
    }
    Ok(claimed)
}

/// Extends a lease still its queue's latest; whether it was.
pub(crate) async fn renew(client: &Client, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError> {
    let changed = client
        .execute(
            "UPDATE delivery_leases SET expire_time = $5
             WHERE system = $1 AND case_id = $2 AND holder = $3 AND epoch = $4 AND expire_time <> 0",
            &[
                &lease.system,
                &lease.case_id.as_str(),
                &lease.token.holder,
                &(lease.token.epoch as i64),
                &micros(expire_time),
            ],
        )
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}

/// Ends a lease still its queue's latest (its epoch stays, so the next
/// claim's is higher); whether it was.
pub(crate) async fn release<C: GenericClient + Sync>(
    client: &C,
    system: &str,
    case_id: &CaseId,
    token: &LeaseToken,
) -> Result<bool, StoreError> {
    let changed = client
        .execute(
            "UPDATE delivery_leases SET expire_time = 0
             WHERE system = $1 AND case_id = $2 AND holder = $3 AND epoch = $4 AND expire_time <> 0",
            &[&system, &case_id.as_str(), &token.holder, &(token.epoch as i64)],
        )
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}

/// Leases live at `now`, by queue.
pub(crate) async fn live_leases(client: &Client, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError> {
    let rows = client
        .query(
            "SELECT system, case_id, holder, epoch, expire_time FROM delivery_leases
             WHERE expire_time > $1 ORDER BY system COLLATE \"C\", case_id COLLATE \"C\"",
            &[&micros(now)],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryLease {
                system: r.get(0),
                case_id: CaseId::parse("case_id", r.get(1)).map_err(corrupt)?,
                token: LeaseToken { holder: r.get(2), epoch: r.get::<_, i64>(3) as u64 },
                expire_time: from_micros(r.get(4)),
            })
        })
        .collect()
}

/// Applies a state change if the delivery is still in `update.from` (a
/// compare-and-set) and, under a lease, the lease is still its queue's
/// latest — then ending it, in the same transaction (the delivery's row is
/// locked first, as a claim locks it); a rendering, once stored, is kept
/// when a later change brings none.
pub(crate) async fn update_delivery(tx: &Transaction<'_>, update: DeliveryUpdate) -> Result<bool, StoreError> {
    if let Some(token) = &update.lease {
        tx.execute("SELECT 1 FROM deliveries WHERE delivery_id = $1 FOR UPDATE", &[&update.delivery_id])
            .await
            .map_err(backend)?;
        if !release(tx, &update.system, &update.case_id, token).await? {
            return Ok(false);
        }
    }
    let (rendered_type, rendered_body) = match update.rendered {
        Some((t, b)) => (Some(t), Some(b)),
        None => (None, None),
    };
    let changed = tx
        .execute(
            "UPDATE deliveries SET state = $3, attempts = $4, next_attempt_time = $5, last_error = $6,
                 update_time = $7,
                 rendered_type = coalesce($8, rendered_type), rendered_body = coalesce($9, rendered_body)
             WHERE delivery_id = $1 AND state = $2 AND system = $10 AND case_id = $11",
            &[
                &update.delivery_id,
                &update.from.as_str(),
                &update.to.as_str(),
                &i64::from(update.attempts),
                &micros(update.next_attempt_time),
                &update.last_error,
                &micros(update.update_time),
                &rendered_type,
                &rendered_body,
                &update.system,
                &update.case_id.as_str(),
            ],
        )
        .await
        .map_err(backend)?;
    Ok(changed == 1)
}

/// One delivery.
pub(crate) async fn get_delivery(client: &Client, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
    let row = client
        .query_opt(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = $1"), &[&delivery_id])
        .await
        .map_err(backend)?;
    row.as_ref().map(to_delivery).transpose()
}

/// Deliveries in enqueue order after an ordinal, each filter applied only when given.
pub(crate) async fn list_deliveries(client: &Client, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE ordinal > $1 AND ($2::TEXT IS NULL OR system = $2) AND ($3::TEXT IS NULL OR state = $3)
                   AND ($4::TEXT IS NULL OR case_id = $4)
                 ORDER BY ordinal LIMIT $5"
            ),
            &[
                &(query.after_ordinal as i64),
                &query.system,
                &query.state.map(DeliveryState::as_str),
                &query.case_id.as_ref().map(CaseId::as_str),
                &(query.limit as i64),
            ],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(to_delivery).collect()
}

const INBOX_COLUMNS: &str = "ordinal, entry_id, kind, system, request_id, source_message_id, content_type, body, \
    batch, reason, state, resolved_case, create_time, update_time";

fn to_inbox(r: &Row) -> Result<InboxEntry, StoreError> {
    let entry_id: String = r.get(1);
    let damaged = |what: &str| StoreError::Corrupt(format!("inbox entry {entry_id}: {what}"));
    let resolved_case: Option<&str> = r.get(11);
    Ok(InboxEntry {
        ordinal: r.get::<_, i64>(0) as u64,
        kind: InboxKind::parse(r.get(2)).ok_or_else(|| damaged("unknown kind"))?,
        state: InboxState::parse(r.get(10)).ok_or_else(|| damaged("unknown state"))?,
        resolved_case: resolved_case.map(|c| CaseId::parse("resolved_case", c).map_err(corrupt)).transpose()?,
        system: r.get(3),
        request_id: r.get(4),
        source_message_id: r.get(5),
        content_type: r.get(6),
        body: r.get(7),
        batch: r.get(8),
        reason: r.get(9),
        create_time: from_micros(r.get(12)),
        update_time: from_micros(r.get(13)),
        entry_id,
    })
}

/// The entry matching `condition` on its one `$1`, if any.
pub(crate) async fn find_inbox<C: GenericClient + Sync>(
    client: &C,
    condition: &str,
    value: &str,
) -> Result<Option<InboxEntry>, StoreError> {
    let row = client
        .query_opt(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE {condition}"), &[&value])
        .await
        .map_err(backend)?;
    row.as_ref().map(to_inbox).transpose()
}

/// Stores an entry unless its request id, or (for an unmatched message) its
/// system and source message id, is stored already: then that entry. A
/// concurrent store of the same makes the unique index refuse this one
/// ([`Failure::Raced`]); tried again, it finds it.
pub(crate) async fn put_inbox(tx: &Transaction<'_>, entry: &InboxEntry) -> Result<InboxPut, Failure> {
    if let Some(existing) = find_inbox(tx, "request_id = $1", &entry.request_id).await? {
        return Ok(InboxPut::Existing(Box::new(existing)));
    }
    if entry.kind == InboxKind::Unmatched && !entry.source_message_id.is_empty() {
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox
                     WHERE kind = 'unmatched' AND system = $1 AND source_message_id = $2"
                ),
                &[&entry.system, &entry.source_message_id],
            )
            .await?;
        if let Some(row) = row {
            return Ok(InboxPut::Existing(Box::new(to_inbox(&row)?)));
        }
    }
    tx.execute(
        "INSERT INTO inbox (entry_id, kind, system, request_id, source_message_id, content_type, body, batch,
                            reason, state, resolved_case, create_time, update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &entry.entry_id,
            &entry.kind.as_str(),
            &entry.system,
            &entry.request_id,
            &entry.source_message_id,
            &entry.content_type,
            &entry.body,
            &entry.batch,
            &entry.reason,
            &entry.state.as_str(),
            &entry.resolved_case.as_ref().map(CaseId::as_str),
            &micros(entry.create_time),
            &micros(entry.update_time),
        ],
    )
    .await?;
    Ok(InboxPut::Inserted)
}

/// Entries of one kind in arrival order after an ordinal, each filter applied only when given.
pub(crate) async fn list_inbox(client: &Client, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {INBOX_COLUMNS} FROM inbox
                 WHERE kind = $1 AND ordinal > $2 AND ($3::TEXT IS NULL OR state = $3)
                   AND ($4::TEXT IS NULL OR system = $4)
                 ORDER BY ordinal LIMIT $5"
            ),
            &[
                &query.kind.as_str(),
                &(query.after_ordinal as i64),
                &query.state.map(InboxState::as_str),
                &query.system,
                &(query.limit as i64),
            ],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(to_inbox).collect()
}

/// Within an append: the open unmatched entry it resolves, into its case;
/// the whole append fails if the entry is not (or no longer) open.
pub(crate) async fn resolve_inbox(
    tx: &Transaction<'_>,
    entry_id: &str,
    case_id: &CaseId,
    now_micros: i64,
) -> Result<(), Failure> {
    let changed = tx
        .execute(
            "UPDATE inbox SET state = 'resolved', resolved_case = $2, update_time = $3
             WHERE entry_id = $1 AND kind = 'unmatched' AND state = 'open'",
            &[&entry_id, &case_id.as_str(), &now_micros],
        )
        .await?;
    if changed != 1 {
        return Err(Failure::Store(StoreError::InvalidBatch(format!(
            "inbox entry {entry_id} is not an open unmatched message"
        ))));
    }
    Ok(())
}
