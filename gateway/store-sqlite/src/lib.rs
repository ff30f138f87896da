//! The embedded SQLite backend of bro's event store.
//!
//! One writer connection and a small pool of readers on one database file in
//! WAL mode with `synchronous = FULL`: when `append` returns, the batch is on
//! disk. Appends run in one `IMMEDIATE` transaction (events, projection and
//! request record together); triggers make the events table append-only. A
//! lock file keeps a second process off the same data directory.

mod audit;

pub use audit::{AUDIT_FILE, SqliteAuditLog};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bro_domain::{CaseId, Date, Timestamp};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, Delivery, DeliveryQuery, DeliveryState, DeliveryUpdate, EventStore,
    InboxEntry, InboxKind, InboxPut, InboxQuery, InboxState, NewDelivery, RequestRecord, SourceKey, StoreError,
    StoredCase, StoredEvent,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "bro.sqlite3";
const LOCK_FILE: &str = "bro.lock";
const MAX_READERS: usize = 8;

/// The schema, applied once per `user_version` step.
const MIGRATIONS: &[&str] = &[
    r"
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
",
    r"
CREATE TABLE source_messages (
    system TEXT NOT NULL,
    message_id TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (request_id),
    PRIMARY KEY (system, message_id)
) WITHOUT ROWID;
CREATE TABLE deliveries (
    ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    system TEXT NOT NULL,
    case_id TEXT NOT NULL,
    first_sequence INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL,
    payload BLOB NOT NULL,
    create_time INTEGER NOT NULL,
    replay_of TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_time INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    update_time INTEGER NOT NULL,
    rendered_type TEXT,
    rendered_body BLOB
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_time);
CREATE INDEX deliveries_queue ON deliveries (system, case_id, state, ordinal);
CREATE INDEX deliveries_by_system ON deliveries (system, ordinal);
CREATE TABLE inbox (
    ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    system TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    source_message_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    batch BLOB NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    resolved_case TEXT,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
CREATE UNIQUE INDEX inbox_unmatched_source ON inbox (system, source_message_id)
    WHERE kind = 'unmatched' AND source_message_id != '';
CREATE INDEX inbox_by_kind ON inbox (kind, ordinal);
",
    r"
CREATE TABLE case_people (
    person_key BLOB NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (person_key, case_id)
) WITHOUT ROWID;
CREATE INDEX case_people_by_case ON case_people (case_id);
",
];

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

fn find_source(conn: &Connection, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
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

fn insert_delivery(conn: &Connection, d: &NewDelivery) -> Result<(), StoreError> {
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
    let corrupt = |what: &str| StoreError::Corrupt(format!("delivery {}: {what}", row.delivery_id));
    Ok(Delivery {
        ordinal: row.ordinal as u64,
        state: DeliveryState::parse(&row.state).ok_or_else(|| corrupt("unknown state"))?,
        attempts: u32::try_from(row.attempts).map_err(|_| corrupt("attempts out of range"))?,
        next_attempt_time: from_micros(row.next_attempt_time),
        last_error: row.last_error,
        update_time: from_micros(row.update_time),
        rendered: row.rendered_type.zip(row.rendered_body),
        new: NewDelivery {
            case_id: CaseId::parse("case_id", &row.case_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
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

const INBOX_COLUMNS: &str = "ordinal, entry_id, kind, system, request_id, source_message_id, content_type, body, \
    batch, reason, state, resolved_case, create_time, update_time";

/// An `inbox` row as SQLite returns it.
type InboxRow =
    (i64, String, String, String, String, String, String, Vec<u8>, Vec<u8>, String, String, Option<String>, i64, i64);

fn inbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

fn to_inbox(row: InboxRow) -> Result<InboxEntry, StoreError> {
    let (
        ordinal,
        entry_id,
        kind,
        system,
        request_id,
        source_message_id,
        content_type,
        body,
        batch,
        reason,
        state,
        case,
        created,
        updated,
    ) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("inbox entry {entry_id}: {what}"));
    Ok(InboxEntry {
        ordinal: ordinal as u64,
        kind: InboxKind::parse(&kind).ok_or_else(|| corrupt("unknown kind"))?,
        state: InboxState::parse(&state).ok_or_else(|| corrupt("unknown state"))?,
        resolved_case: case
            .map(|c| CaseId::parse("resolved_case", &c).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        entry_id,
        system,
        request_id,
        source_message_id,
        content_type,
        body,
        batch,
        reason,
        create_time: from_micros(created),
        update_time: from_micros(updated),
    })
}

fn find_inbox(conn: &Connection, condition: &str, value: &str) -> Result<Option<InboxEntry>, StoreError> {
    conn.query_row(&format!("SELECT {INBOX_COLUMNS} FROM inbox WHERE {condition}"), [value], inbox_row)
        .optional()
        .map_err(backend)?
        .map(to_inbox)
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

impl SqliteStore {
    fn cases_by_person(conn: &Connection, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        let mut stmt = conn
            .prepare(
                "SELECT p.case_id FROM case_people p JOIN cases c ON c.case_id = p.case_id
                 WHERE p.person_key = ?1 ORDER BY c.ordinal",
            )
            .map_err(backend)?;
        let rows = stmt.query_map([person_key], |r| r.get::<_, String>(0)).map_err(backend)?;
        rows.map(|r| {
            let id = r.map_err(backend)?;
            CaseId::parse("case_id", &id).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect()
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        batch.check_shape()?;
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            if let Some(record) = find_request(&tx, &batch.request.request_id)? {
                return Ok(AppendOutcome::AlreadyApplied(record));
            }
            if let Some(source) = &batch.source
                && let Some(record) = find_source(&tx, source)?
            {
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
            tx.execute("DELETE FROM case_people WHERE case_id = ?1", [batch.case_id.as_str()]).map_err(backend)?;
            for key in &batch.person_keys {
                tx.execute(
                    "INSERT OR IGNORE INTO case_people (person_key, case_id) VALUES (?1, ?2)",
                    params![key, batch.case_id.as_str()],
                )
                .map_err(backend)?;
            }
            if let Some(entry_id) = &batch.resolves_inbox {
                let changed = tx
                    .execute(
                        "UPDATE inbox SET state = 'resolved', resolved_case = ?2, update_time = ?3
                         WHERE entry_id = ?1 AND kind = 'unmatched' AND state = 'open'",
                        params![entry_id, batch.case_id.as_str(), micros(batch.projection.update_time)],
                    )
                    .map_err(backend)?;
                if changed != 1 {
                    return Err(StoreError::InvalidBatch(format!(
                        "inbox entry {entry_id} is not an open unmatched message"
                    )));
                }
            }
            if let Some(source) = &batch.source {
                tx.execute(
                    "INSERT INTO source_messages (system, message_id, request_id) VALUES (?1, ?2, ?3)",
                    params![source.system, source.message_id, r.request_id],
                )
                .map_err(backend)?;
                // The same message waiting as unmatched is now in a case.
                tx.execute(
                    "UPDATE inbox SET state = 'resolved', resolved_case = ?3, update_time = ?4
                     WHERE kind = 'unmatched' AND system = ?1 AND source_message_id = ?2 AND state = 'open'",
                    params![
                        source.system,
                        source.message_id,
                        batch.case_id.as_str(),
                        micros(batch.projection.update_time)
                    ],
                )
                .map_err(backend)?;
            }
            for d in &batch.deliveries {
                insert_delivery(&tx, d)?;
            }
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

    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        let key = person_key.to_vec();
        self.read(move |conn| Self::cases_by_person(conn, &key)).await
    }

    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
        let key = key.clone();
        self.read(move |conn| find_source(conn, &key)).await
    }

    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            insert_delivery(&tx, &delivery)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries AS d
                     WHERE state = 'pending' AND next_attempt_time <= ?1
                       AND NOT EXISTS (SELECT 1 FROM deliveries AS e
                                       WHERE e.system = d.system AND e.case_id = d.case_id
                                         AND e.state = 'pending' AND e.ordinal < d.ordinal)
                     ORDER BY next_attempt_time, ordinal LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map(params![micros(now), limit as i64], delivery_row).map_err(backend)?;
            rows.map(|r| to_delivery(r.map_err(backend)?)).collect()
        })
        .await
    }

    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let (rendered_type, rendered_body) = match update.rendered {
                Some((t, b)) => (Some(t), Some(b)),
                None => (None, None),
            };
            let changed = conn
                .execute(
                    "UPDATE deliveries SET state = ?3, attempts = ?4, next_attempt_time = ?5, last_error = ?6,
                         update_time = ?7,
                         rendered_type = coalesce(?8, rendered_type), rendered_body = coalesce(?9, rendered_body)
                     WHERE delivery_id = ?1 AND state = ?2",
                    params![
                        update.delivery_id,
                        update.from.as_str(),
                        update.to.as_str(),
                        update.attempts,
                        micros(update.next_attempt_time),
                        update.last_error,
                        micros(update.update_time),
                        rendered_type,
                        rendered_body
                    ],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = delivery_id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?1"),
                [id],
                delivery_row,
            )
            .optional()
            .map_err(backend)?
            .map(to_delivery)
            .transpose()
        })
        .await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
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
                        query.case_id.as_ref().map(|c| c.as_str().to_owned()),
                        query.limit as i64
                    ],
                    delivery_row,
                )
                .map_err(backend)?;
            rows.map(|r| to_delivery(r.map_err(backend)?)).collect()
        })
        .await
    }

    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            if let Some(existing) = find_inbox(&tx, "request_id = ?1", &entry.request_id)? {
                return Ok(InboxPut::Existing(Box::new(existing)));
            }
            if entry.kind == InboxKind::Unmatched && !entry.source_message_id.is_empty() {
                let existing = tx
                    .query_row(
                        &format!(
                            "SELECT {INBOX_COLUMNS} FROM inbox
                             WHERE kind = 'unmatched' AND system = ?1 AND source_message_id = ?2"
                        ),
                        params![entry.system, entry.source_message_id],
                        inbox_row,
                    )
                    .optional()
                    .map_err(backend)?;
                if let Some(existing) = existing {
                    return Ok(InboxPut::Existing(Box::new(to_inbox(existing)?)));
                }
            }
            tx.execute(
                "INSERT INTO inbox (entry_id, kind, system, request_id, source_message_id, content_type, body, batch,
                                    reason, state, resolved_case, create_time, update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    entry.entry_id,
                    entry.kind.as_str(),
                    entry.system,
                    entry.request_id,
                    entry.source_message_id,
                    entry.content_type,
                    entry.body,
                    entry.batch,
                    entry.reason,
                    entry.state.as_str(),
                    entry.resolved_case.as_ref().map(|c| c.as_str().to_owned()),
                    micros(entry.create_time),
                    micros(entry.update_time)
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(InboxPut::Inserted)
        })
        .await
    }

    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        let id = request_id.to_owned();
        self.read(move |conn| find_inbox(conn, "request_id = ?1", &id)).await
    }

    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        let id = entry_id.to_owned();
        self.read(move |conn| find_inbox(conn, "entry_id = ?1", &id)).await
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {INBOX_COLUMNS} FROM inbox
                     WHERE kind = ?1 AND ordinal > ?2 AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR system = ?4)
                     ORDER BY ordinal LIMIT ?5"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        query.kind.as_str(),
                        query.after_ordinal as i64,
                        query.state.map(InboxState::as_str),
                        query.system,
                        query.limit as i64
                    ],
                    inbox_row,
                )
                .map_err(backend)?;
            rows.map(|r| to_inbox(r.map_err(backend)?)).collect()
        })
        .await
    }

    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
        let id = entry_id.to_owned();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE inbox SET state = ?2, update_time = ?3 WHERE entry_id = ?1 AND state = 'open'",
                    params![id, state.as_str(), micros(now)],
                )
                .map_err(backend)?;
            Ok(changed == 1)
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
