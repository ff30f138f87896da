//! The embedded SQLite backend of bro's event store.
//!
//! One writer connection and a small pool of readers on one database file in
//! WAL mode with `synchronous = FULL`: when `append` returns, the batch is on
//! disk. Appends run in one `IMMEDIATE` transaction (events, projection and
//! request record together); triggers make the events table append-only. A
//! lock file keeps a second process off the same data directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bro_domain::{CaseId, Date, Timestamp};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, EventStore, RequestRecord, StoreError, StoredCase, StoredEvent,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "bro.sqlite3";
const LOCK_FILE: &str = "bro.lock";
const MAX_READERS: usize = 8;

/// The schema, applied once per `user_version` step.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE cases (
    ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    municipality_cvr TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    projection BLOB NOT NULL
);
CREATE INDEX cases_by_municipality ON cases (municipality_cvr, ordinal);
CREATE TABLE events (
    case_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    occurred_on TEXT NOT NULL,
    record_time INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (case_id, sequence)
) WITHOUT ROWID;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL
) WITHOUT ROWID;
"];

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

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
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
        migrate(&mut writer)?;
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

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(backend(format!(
            "the database has schema version {version}, newer than this bro ({}); upgrade bro",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i + 1).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_timestamp_micros(us).unwrap_or_default()
}

fn find_request(conn: &Connection, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
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
            case_id: CaseId::parse("case_id", &case).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            fingerprint,
            first_sequence: first as u64,
            last_sequence: last as u64,
        })
    })
    .transpose()
}

/// A `cases` row as SQLite returns it.
type CaseRow = (i64, String, i64, String, i64, i64, Vec<u8>);

fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn to_stored_case(row: CaseRow) -> Result<StoredCase, StoreError> {
    let (ordinal, case_id, version, cvr, created, updated, projection) = row;
    Ok(StoredCase {
        case_id: CaseId::parse("case_id", &case_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ordinal: ordinal as u64,
        version: version as u64,
        municipality_cvr: cvr,
        create_time: from_micros(created),
        update_time: from_micros(updated),
        projection,
    })
}

const CASE_COLUMNS: &str = "ordinal, case_id, version, municipality_cvr, create_time, update_time, projection";

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        batch.check_shape()?;
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            if let Some(record) = find_request(&tx, &batch.request.request_id)? {
                return Ok(AppendOutcome::AlreadyApplied(record));
            }
            let current: u64 = tx
                .query_row("SELECT version FROM cases WHERE case_id = ?1", [batch.case_id.as_str()], |r| {
                    r.get::<_, i64>(0)
                })
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
                .map_err(backend)?;
            } else {
                tx.execute(
                    "UPDATE cases SET version = ?2, municipality_cvr = ?3, update_time = ?4, projection = ?5
                     WHERE case_id = ?1",
                    params![
                        p.case_id.as_str(),
                        p.version as i64,
                        p.municipality_cvr,
                        micros(p.update_time),
                        p.projection
                    ],
                )
                .map_err(backend)?;
            }
            let r = &batch.request;
            tx.execute(
                "INSERT INTO requests (request_id, case_id, fingerprint, first_sequence, last_sequence)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    r.request_id,
                    r.case_id.as_str(),
                    r.fingerprint,
                    r.first_sequence as i64,
                    r.last_sequence as i64
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(AppendOutcome::Appended)
        })
        .await
    }

    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let request_id = request_id.to_owned();
        self.read(move |conn| find_request(conn, &request_id)).await
    }

    async fn read_events(
        &self,
        case_id: &CaseId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| {
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
        })
        .await
    }

    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE case_id = ?1"),
                [case_id.as_str()],
                case_row,
            )
            .optional()
            .map_err(backend)?
            .map(to_stored_case)
            .transpose()
        })
        .await
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
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
        })
        .await
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
