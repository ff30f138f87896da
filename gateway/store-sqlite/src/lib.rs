//! The embedded SQLite backend of bro's event store.
//!
//! One writer connection and a small pool of readers on one database file in
//! WAL mode with `synchronous = FULL`: when `append` returns, the batch is on
//! disk. Appends run in one `IMMEDIATE` transaction (events, projection and
//! request record together); triggers make the events table append-only. A
//! lock file keeps a second process off the same data directory.
//!
//! The SQL lives by table group: [`schema`] (the migrations), [`events`]
//! (the case log and the append), [`outbox`] (deliveries) and [`inbox`]
//! (unmatched and rejected messages); this file opens the database and runs
//! each call on the right connection, off the async runtime.

mod audit;
mod events;
mod inbox;
mod outbox;
mod schema;

pub use audit::{AUDIT_FILE, SqliteAuditLog};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bro_domain::{CaseId, Timestamp};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, Delivery, DeliveryQuery, DeliveryUpdate, EventStore, InboxEntry, InboxPut,
    InboxQuery, InboxState, NewDelivery, RequestRecord, SourceKey, StoreError, StoredCase, StoredEvent,
};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "bro.sqlite3";
const LOCK_FILE: &str = "bro.lock";
const MAX_READERS: usize = 8;

/// The SQLite event store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    closed: std::sync::atomic::AtomicBool,
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`. Fails if another
    /// process holds the directory.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| backend(format!("cannot create data directory {}: {e}", data_dir.display())))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join(LOCK_FILE))
            .map_err(|e| backend(format!("cannot open lock file in {}: {e}", data_dir.display())))?;
        lock.try_lock()
            .map_err(|_| backend(format!("data directory {} is in use by another bro process", data_dir.display())))?;
        let path = data_dir.join(DB_FILE);
        let mut writer = Connection::open(&path).map_err(backend)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        schema::migrate(&mut writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
                _lock: lock,
            }),
        })
    }

    /// Runs `f` on the writer connection, off the async runtime.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.writer.lock().map_err(|_| backend("writer lock poisoned"))?;
            let conn = guard.as_mut().ok_or(StoreError::Closed)?;
            f(conn)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` on a pooled reader connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().map_err(|_| backend("reader pool lock poisoned"))?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(backend)?;
                    configure(&c)?;
                    c
                }
            };
            let result = f(&conn);
            let mut pool = inner.readers.lock().map_err(|_| backend("reader pool lock poisoned"))?;
            if pool.len() < MAX_READERS && !inner.closed.load(std::sync::atomic::Ordering::Acquire) {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(backend)?
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
    Ok(())
}

/// The database failed (a message from SQLite or the file system).
pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A stored value that no longer parses (an id, a state): the row is damaged.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Times are stored as microseconds since the epoch, UTC.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_timestamp_micros(us).unwrap_or_default()
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        batch.check_shape()?;
        self.write(move |conn| events::append(conn, &batch)).await
    }

    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let request_id = request_id.to_owned();
        self.read(move |conn| events::find_request(conn, &request_id)).await
    }

    async fn read_events(
        &self,
        case_id: &CaseId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| events::read(conn, &case_id, after_sequence, limit)).await
    }

    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| events::get_case(conn, &case_id)).await
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
        let query = query.clone();
        self.read(move |conn| events::list_cases(conn, &query)).await
    }

    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        let key = person_key.to_vec();
        self.read(move |conn| events::cases_by_person(conn, &key)).await
    }

    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
        let key = key.clone();
        self.read(move |conn| events::find_source(conn, &key)).await
    }

    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            outbox::insert(&tx, &delivery)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |conn| outbox::due(conn, now, limit)).await
    }

    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError> {
        self.write(move |conn| outbox::update(conn, update)).await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = delivery_id.to_owned();
        self.read(move |conn| outbox::get(conn, &id)).await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let query = query.clone();
        self.read(move |conn| outbox::list(conn, &query)).await
    }

    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError> {
        self.write(move |conn| inbox::put(conn, &entry)).await
    }

    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        let id = request_id.to_owned();
        self.read(move |conn| inbox::by_request(conn, &id)).await
    }

    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        let id = entry_id.to_owned();
        self.read(move |conn| inbox::get(conn, &id)).await
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
        let query = query.clone();
        self.read(move |conn| inbox::list(conn, &query)).await
    }

    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
        let id = entry_id.to_owned();
        self.write(move |conn| inbox::close(conn, &id, state, now)).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.closed.store(true, std::sync::atomic::Ordering::Release);
        self.inner.readers.lock().map_err(|_| backend("reader pool lock poisoned"))?.clear();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.writer.lock().map_err(|_| backend("writer lock poisoned"))?;
            if let Some(conn) = guard.take() {
                conn.pragma_query(None, "wal_checkpoint", |_| Ok(())).map_err(backend)?;
                conn.close().map_err(|(_, e)| backend(e))?;
                tracing::info!(path = %inner.path.display(), "event store closed");
            }
            Ok(())
        })
        .await
        .map_err(backend)?
    }
}
