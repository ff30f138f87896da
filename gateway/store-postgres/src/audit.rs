//! The audit log on PostgreSQL, in the event store's database: records,
//! their chain values, an index of the people concerned (keyed hashes) and
//! the head, written in one transaction per batch. Each append locks the
//! head's row, so appends from several replicas chain one after another;
//! PostgreSQL flushes concurrent commits together. Triggers refuse changes;
//! [`bro_store::audit::verify`] finds whatever gets past them.
//!
//! A write's own record (who made it) is committed in the append's
//! transaction (`AppendBatch::audit`, into `audit_pending`), so an append
//! never takes the head's lock; the next audit append, on whichever
//! replica, chains those records first, then its own. [`AuditLog::settle`]
//! chains what a crash left waiting.

use async_trait::async_trait;
use bro_proto::v1 as pb;
use bro_store::audit::{AuditHead, AuditLog, StoredAuditRecord, chain};
use bro_store::{Keyring, StoreError};
use deadpool_postgres::Pool;
use prost::Message as _;
use tokio_postgres::Client;

use crate::{PostgresStore, pg};

/// Most records an append commits that one audit append chains with its own.
const PENDING_PER_APPEND: i64 = 10_000;

/// The audit database failed (its errors say so, apart from the event store's).
fn backend(e: impl std::error::Error) -> StoreError {
    match crate::backend(e) {
        StoreError::Backend(said) => StoreError::Backend(format!("audit log: {said}")),
        other => other,
    }
}

/// The PostgreSQL audit log.
#[derive(Clone)]
pub struct PostgresAuditLog {
    pool: Pool,
    keys: Keyring,
}

impl PostgresAuditLog {
    /// The audit log in `store`'s database, chained with `keys`.
    pub fn new(store: &PostgresStore, keys: Keyring) -> PostgresAuditLog {
        PostgresAuditLog { pool: store.pool.clone(), keys }
    }

    /// A whole audit log (for `bro audit verify`): every record in stored
    /// order, the head, and the people index, read in one snapshot.
    pub async fn read_all(
        store: &PostgresStore,
    ) -> Result<(Vec<StoredAuditRecord>, AuditHead, Vec<(Vec<u8>, u64)>), StoreError> {
        let mut client = store.pool.get().await.map_err(backend)?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(backend)?;
        let records = tx
            .query("SELECT sequence, record, mac FROM audit_records ORDER BY sequence", &[])
            .await
            .map_err(backend)?
            .iter()
            .map(|r| StoredAuditRecord { sequence: r.get::<_, i64>(0) as u64, record: r.get(1), mac: r.get(2) })
            .collect();
        let head = head(&*tx).await?;
        let index = tx
            .query("SELECT person_key, sequence FROM audit_people", &[])
            .await
            .map_err(backend)?
            .iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1) as u64))
            .collect();
        tx.commit().await.map_err(backend)?;
        Ok((records, head, index))
    }

    /// How many records appends committed that wait to be chained.
    pub async fn pending(store: &PostgresStore) -> Result<u64, StoreError> {
        let client = store.pool.get().await.map_err(backend)?;
        let row = client.query_one("SELECT count(*) FROM audit_pending", &[]).await.map_err(backend)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| if self.pool.is_closed() { StoreError::Closed } else { backend(e) })
    }
}

async fn head<C: tokio_postgres::GenericClient + Sync>(client: &C) -> Result<AuditHead, StoreError> {
    let row = client.query_one("SELECT sequence, mac FROM audit_head WHERE id = 1", &[]).await.map_err(backend)?;
    Ok(AuditHead { sequence: row.get::<_, i64>(0) as u64, mac: row.get(1) })
}

async fn select(
    client: &Client,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<StoredAuditRecord>, StoreError> {
    let rows = client.query(sql, args).await.map_err(backend)?;
    Ok(rows
        .iter()
        .map(|r| StoredAuditRecord { sequence: r.get::<_, i64>(0) as u64, record: r.get(1), mac: r.get(2) })
        .collect())
}

/// Appends `records` to the chain in one transaction, after every record an
/// append committed that is not chained yet (`audit_pending`); returns the
/// sequences of `records`.
async fn chain_in(
    client: &mut deadpool_postgres::Object,
    keys: &Keyring,
    records: Vec<pb::AuditRecord>,
) -> Result<(Vec<u64>, u64), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // The head's row lock orders appends from every replica.
    let row =
        tx.query_one("SELECT sequence, mac FROM audit_head WHERE id = 1 FOR UPDATE", &[]).await.map_err(backend)?;
    let current = AuditHead { sequence: row.get::<_, i64>(0) as u64, mac: row.get(1) };
    let waiting = tx
        .query("SELECT id, record FROM audit_pending ORDER BY id LIMIT $1", &[&PENDING_PER_APPEND])
        .await
        .map_err(backend)?;
    let mut pending_ids = Vec::with_capacity(waiting.len());
    let mut all = Vec::with_capacity(waiting.len() + records.len());
    for row in &waiting {
        let id: i64 = row.get(0);
        let record = pb::AuditRecord::decode(row.get::<_, &[u8]>(1))
            .map_err(|e| StoreError::Corrupt(format!("audit log: the record {id} an append committed: {e}")))?;
        pending_ids.push(id);
        all.push(record);
    }
    let settled = pending_ids.len() as u64;
    all.extend(records);
    if all.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let people: Vec<Vec<Vec<u8>>> = all.iter().map(|r| r.person_keys.clone()).collect();
    let stored = chain(keys, &current, all);
    // A few statements for the whole batch, however large: the head's lock is held for few round trips.
    let sequences: Vec<i64> = stored.iter().map(|r| r.sequence as i64).collect();
    let bodies: Vec<&[u8]> = stored.iter().map(|r| r.record.as_slice()).collect();
    let macs: Vec<&[u8]> = stored.iter().map(|r| r.mac.as_slice()).collect();
    tx.execute(
        "INSERT INTO audit_records (sequence, record, mac)
         SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
        &[&sequences, &bodies, &macs],
    )
    .await
    .map_err(backend)?;
    let (person_keys, of): (Vec<&[u8]>, Vec<i64>) = stored
        .iter()
        .zip(&people)
        .flat_map(|(row, keys)| keys.iter().map(move |k| (k.as_slice(), row.sequence as i64)))
        .unzip();
    if !person_keys.is_empty() {
        tx.execute(
            "INSERT INTO audit_people (person_key, sequence)
             SELECT * FROM unnest($1::BYTEA[], $2::BIGINT[]) ON CONFLICT DO NOTHING",
            &[&person_keys, &of],
        )
        .await
        .map_err(backend)?;
    }
    if !pending_ids.is_empty() {
        tx.execute("DELETE FROM audit_pending WHERE id = ANY($1)", &[&pending_ids]).await.map_err(backend)?;
    }
    let last = stored.last().expect("all is not empty");
    tx.execute("UPDATE audit_head SET sequence = $1, mac = $2 WHERE id = 1", &[&(last.sequence as i64), &last.mac])
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    let own = stored.iter().skip(settled as usize).map(|r| r.sequence).collect();
    Ok((own, settled))
}

#[async_trait]
impl AuditLog for PostgresAuditLog {
    async fn append(&self, records: Vec<pb::AuditRecord>) -> Result<Vec<u64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        Ok(chain_in(&mut client, &self.keys, records).await?.0)
    }

    async fn read(&self, after_sequence: u64, limit: usize) -> Result<Vec<StoredAuditRecord>, StoreError> {
        select(
            pg(&self.client().await?),
            "SELECT sequence, record, mac FROM audit_records WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            &[&(after_sequence as i64), &(limit as i64)],
        )
        .await
    }

    async fn read_person(
        &self,
        person_key: &[u8],
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredAuditRecord>, StoreError> {
        select(
            pg(&self.client().await?),
            "SELECT r.sequence, r.record, r.mac FROM audit_people p
             JOIN audit_records r ON r.sequence = p.sequence
             WHERE p.person_key = $1 AND p.sequence > $2 ORDER BY p.sequence LIMIT $3",
            &[&person_key, &(after_sequence as i64), &(limit as i64)],
        )
        .await
    }

    async fn head(&self) -> Result<AuditHead, StoreError> {
        head(pg(&self.client().await?)).await
    }

    fn commits_with_appends(&self) -> bool {
        true
    }

    async fn settle(&self) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let mut settled = 0;
        loop {
            match chain_in(&mut client, &self.keys, Vec::new()).await?.1 {
                0 => return Ok(settled),
                n => settled += n,
            }
        }
    }
}
