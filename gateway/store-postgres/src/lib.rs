//! bro's event store on PostgreSQL, for one or several gateway replicas on
//! one database.
//!
//! Each append is one transaction, under `READ COMMITTED`: it locks its
//! case's row (`SELECT … FOR UPDATE`) and numbers the events from the
//! version it finds there — no sequence object decides a case's order — and
//! writes the events, the projection, the snapshot, the idempotency record,
//! the source message, the person index, the deliveries and the inbox change
//! with it. A new case is inserted with `ON CONFLICT DO NOTHING`, so of two
//! concurrent creations one waits for the other and then finds the case
//! there. A request id or source message that another transaction stored
//! between the check and the insert makes the unique index refuse the
//! insert; the append then starts again and is answered from the record.
//! PostgreSQL flushes the write-ahead log of concurrent commits together, so
//! appends are group-committed by the server itself.
//!
//! The SQL lives by table group: [`schema`] (the migrations), [`log`] (the
//! case log and the append), [`pipeline`] (deliveries and the inbox),
//! [`worklist`] and [`audit`] (the hash-chained audit log, in the same
//! database); this file holds the connection pool and the trait.

mod audit;
mod feed;
mod log;
mod pipeline;
mod schema;
mod worklist;

pub use audit::PostgresAuditLog;
pub use feed::RESYNC_INTERVAL;
pub use schema::SCHEMA_VERSION;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bro_domain::{CaseId, Date, Timestamp};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery, DeliveryUpdate,
    DueQuery, EventStore, InboxEntry, InboxPut, InboxQuery, InboxState, LeaseToken, NewDelivery, RequestRecord,
    SourceKey, StoreChange, StoreError, StoredCase, StoredDueItem, StoredEvent, StoredSnapshot, WorklistEntry,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::broadcast;
use tokio_postgres::NoTls;

/// Most connections one gateway holds.
const MAX_CONNECTIONS: usize = 16;
/// How often an append starts again after another transaction stored its
/// request id or source message first.
const MAX_RETRIES: usize = 3;

/// The PostgreSQL event store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    closed: AtomicBool,
    /// Where the change feed connects.
    config: tokio_postgres::Config,
    /// The change feed, once somebody follows it.
    feed: Mutex<Option<(broadcast::Sender<StoreChange>, tokio::task::JoinHandle<()>)>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some((_, task)) = self.feed.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// A backend failure, with every cause the driver gives (PostgreSQL's own
/// message, detail and hint, not only "db error").
fn backend(e: impl std::error::Error) -> StoreError {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !said.contains(&text) {
            said = format!("{said}: {text}");
        }
        cause = inner.source();
    }
    StoreError::Backend(said)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn from_day_number(n: i64) -> Result<Date, StoreError> {
    bro_store::from_day_number(n).ok_or_else(|| corrupt(format!("day number {n} is out of range")))
}

/// The driver's client inside a pooled connection.
fn pg(object: &deadpool_postgres::Object) -> &tokio_postgres::Client {
    object
}

/// Whether an error is the unique index refusing a row another transaction
/// stored first (then the append starts again and finds it).
fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Why an append did not commit: its own failure, or a race another
/// transaction won (the append is tried again and answered from the record).
pub(crate) enum Failure {
    /// The batch's answer.
    Store(StoreError),
    /// A unique index refused a row another transaction stored first.
    Raced,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        if is_unique_violation(&e) { Failure::Raced } else { Failure::Store(backend(e)) }
    }
}

impl PostgresStore {
    /// Applies the schema migrations to the database at `url` (a
    /// `postgres://` URL or key-value connection string); the schema version
    /// it is at afterwards. Safe to run from several processes at once.
    pub async fn migrate(url: &str) -> Result<i64, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Backend(format!("store url: {e}")))?;
        let (mut client, connection) = config.connect(NoTls).await.map_err(backend)?;
        let driver = tokio::spawn(connection);
        let result = schema::migrate(&mut client).await;
        drop(client);
        let _ = driver.await;
        result
    }

    /// Opens the store on the database at `url`; refuses a database whose
    /// schema is not this bro's (`bro store migrate` makes it so).
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Backend(format!("store url: {e}")))?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(MAX_CONNECTIONS).build().map_err(backend)?;
        let store = PostgresStore { pool, closed: AtomicBool::new(false), config, feed: Mutex::new(None) };
        let client = store.client().await?;
        schema::check(schema::version(&client).await?)?;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        self.pool.get().await.map_err(backend)
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        batch.check_shape()?;
        let mut client = self.client().await?;
        for _ in 0..MAX_RETRIES {
            let tx = client.transaction().await.map_err(backend)?;
            match log::append(&tx, &batch).await {
                Ok(outcome) => {
                    tx.commit().await.map_err(backend)?;
                    return Ok(outcome);
                }
                Err(Failure::Store(e)) => return Err(e),
                // Dropped, the transaction rolls back; the next try finds the row.
                Err(Failure::Raced) => continue,
            }
        }
        Err(StoreError::Backend(format!(
            "append of request {} kept losing races after {MAX_RETRIES} tries",
            batch.request.request_id
        )))
    }

    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        log::find_request(pg(&self.client().await?), request_id).await
    }

    async fn read_events(
        &self,
        case_id: &CaseId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        log::read(pg(&self.client().await?), case_id, after_sequence, limit).await
    }

    async fn case_version(&self, case_id: &CaseId) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT version FROM cases WHERE case_id = $1", &[&case_id.as_str()])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn get_snapshot(&self, case_id: &CaseId) -> Result<Option<StoredSnapshot>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT version, state FROM snapshots WHERE case_id = $1", &[&case_id.as_str()])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| StoredSnapshot { version: r.get::<_, i64>(0) as u64, state: r.get(1) }))
    }

    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
        log::get_case(pg(&self.client().await?), case_id).await
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
        log::list_cases(pg(&self.client().await?), query).await
    }

    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        log::cases_by_person(pg(&self.client().await?), person_key).await
    }

    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
        log::find_source(pg(&self.client().await?), key).await
    }

    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError> {
        pipeline::insert_delivery(pg(&self.client().await?), &delivery).await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        pipeline::due_deliveries(pg(&self.client().await?), now, limit).await
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        expire_time: Timestamp,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let claimed = pipeline::claim(&tx, holder, now, expire_time, limit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn renew_lease(&self, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError> {
        pipeline::renew(pg(&self.client().await?), lease, expire_time).await
    }

    async fn release_lease(&self, system: &str, case_id: &CaseId, token: &LeaseToken) -> Result<(), StoreError> {
        pipeline::release(pg(&self.client().await?), system, case_id, token).await.map(drop)
    }

    async fn live_leases(&self, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError> {
        pipeline::live_leases(pg(&self.client().await?), now).await
    }

    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let changed = pipeline::update_delivery(&tx, update).await?;
        tx.commit().await.map_err(backend)?;
        Ok(changed)
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        pipeline::get_delivery(pg(&self.client().await?), delivery_id).await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        pipeline::list_deliveries(pg(&self.client().await?), query).await
    }

    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError> {
        let mut client = self.client().await?;
        for _ in 0..MAX_RETRIES {
            let tx = client.transaction().await.map_err(backend)?;
            match pipeline::put_inbox(&tx, &entry).await {
                Ok(put) => {
                    tx.commit().await.map_err(backend)?;
                    return Ok(put);
                }
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Raced) => continue,
            }
        }
        Err(StoreError::Backend(format!("inbox entry {} kept losing races", entry.entry_id)))
    }

    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        pipeline::find_inbox(pg(&self.client().await?), "request_id = $1", request_id).await
    }

    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        pipeline::find_inbox(pg(&self.client().await?), "entry_id = $1", entry_id).await
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
        pipeline::list_inbox(pg(&self.client().await?), query).await
    }

    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE inbox SET state = $2, update_time = $3 WHERE entry_id = $1 AND state = 'open'",
                &[&entry_id, &state.as_str(), &micros(now)],
            )
            .await
            .map_err(backend)?;
        Ok(changed == 1)
    }

    async fn stale_worklist(
        &self,
        municipality_cvr: &str,
        today: Date,
        limit: usize,
    ) -> Result<Vec<CaseId>, StoreError> {
        worklist::stale(pg(&self.client().await?), municipality_cvr, today, limit).await
    }

    async fn put_worklist(&self, entries: Vec<WorklistEntry>) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let stored = worklist::put(&tx, &entries).await?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn reset_worklist(&self, revision: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute("UPDATE worklist SET refresh_on = 0 WHERE revision <> $1 AND refresh_on <> 0", &[&revision])
            .await
            .map_err(backend)
    }

    async fn due_items(&self, query: &DueQuery) -> Result<Vec<StoredDueItem>, StoreError> {
        worklist::page(pg(&self.client().await?), query).await
    }

    /// Under a transaction-scoped advisory lock on the job's name: a
    /// replica that finds it taken does not wait (another is claiming the
    /// same run) and is told no.
    async fn claim_job(&self, job: &str, now: Timestamp, every: chrono::Duration) -> Result<bool, StoreError> {
        let due_before = micros(now) - every.num_microseconds().unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock(hashtext('bro job ' || $1))", &[&job])
            .await
            .map_err(backend)?
            .get(0);
        if !locked {
            return Ok(false);
        }
        let claimed = tx
            .execute(
                "INSERT INTO jobs (job, last_run) VALUES ($1, $2)
                 ON CONFLICT (job) DO UPDATE SET last_run = EXCLUDED.last_run WHERE jobs.last_run <= $3",
                &[&job, &micros(now), &due_before],
            )
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed == 1)
    }

    async fn revoke_plan_links(&self, link_key: &[u8], at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO plan_link_revocations (link_key, revoked_at) VALUES ($1, $2)
                 ON CONFLICT (link_key) DO UPDATE
                 SET revoked_at = greatest(plan_link_revocations.revoked_at, EXCLUDED.revoked_at)",
                &[&link_key, &micros(at)],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn plan_links_revoked_at(&self, link_key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT revoked_at FROM plan_link_revocations WHERE link_key = $1", &[&link_key])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| from_micros(r.get(0))))
    }

    fn pool_usage(&self) -> Option<bro_store::PoolUsage> {
        let status = self.pool.status();
        Some(bro_store::PoolUsage {
            max: status.max_size,
            open: status.size,
            idle: status.available,
            waiting: status.waiting,
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::SeqCst);
        if let Some((_, task)) = self.feed.lock().ok().and_then(|mut f| f.take()) {
            task.abort();
        }
        self.pool.close();
        Ok(())
    }

    /// Starts the change feed on first use (it needs the async runtime).
    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        if self.closed.load(Ordering::SeqCst) || tokio::runtime::Handle::try_current().is_err() {
            return None;
        }
        let mut feed = self.feed.lock().ok()?;
        let (sender, _) = feed.get_or_insert_with(|| feed::start(self.config.clone()));
        Some(sender.subscribe())
    }
}
