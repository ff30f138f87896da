//! The embedded SQLite backend of bro's event store.
//!
//! One writer connection and a small pool of readers on one database file in
//! WAL mode with `synchronous = FULL`: when `append` returns, the batch is on
//! disk. Appends are committed in groups: each caller queues its batch and
//! then asks for the writer; whoever gets it writes every queued batch (up to
//! [`MAX_GROUP`]) in one `IMMEDIATE` transaction and one fsync, each batch in
//! its own savepoint, and answers each caller once the group is durable. A
//! lone caller finds only its own batch and waits for nothing; under load,
//! the batches that queued during one fsync share the next. Triggers make
//! the events table append-only. A lock file keeps a second process off the
//! same data directory.
//!
//! The SQL lives by table group: [`schema`] (the migrations), [`events`]
//! (the case log and the append), [`outbox`] (deliveries), [`inbox`]
//! (unmatched and rejected messages) and [`worklist`] (the worklist index); this file opens the database and runs
//! each call on the right connection, off the async runtime.

mod audit;
mod events;
mod inbox;
mod outbox;
mod schema;
mod worklist;

pub use audit::{AUDIT_FILE, SqliteAuditLog};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bro_domain::{CaseId, Timestamp};
use bro_store::{
    AppendBatch, AppendObserver, AppendOutcome, CaseQuery, ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery,
    DeliveryUpdate, DueQuery, EventStore, InboxEntry, InboxPut, InboxQuery, InboxState, LeaseToken, NewDelivery,
    RequestRecord, SourceKey, Stage, StoreError, StoredCase, StoredDueItem, StoredEvent, WorklistEntry,
};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "bro.sqlite3";
const LOCK_FILE: &str = "bro.lock";
const MAX_READERS: usize = 8;
/// Most batches committed together: bounds how long the last of a group waits.
pub const MAX_GROUP: usize = 128;

/// The SQLite event store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<Connection>>,
    /// Batches waiting for the next group commit.
    appends: Mutex<Vec<QueuedAppend>>,
    /// Groups committed, and batches in them, since opening.
    groups: std::sync::atomic::AtomicU64,
    grouped: std::sync::atomic::AtomicU64,
    /// Told how long batches waited and groups took.
    observer: std::sync::OnceLock<Arc<dyn AppendObserver>>,
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
                appends: Mutex::new(Vec::new()),
                groups: Default::default(),
                grouped: Default::default(),
                observer: std::sync::OnceLock::new(),
                readers: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
                _lock: lock,
            }),
        })
    }

    /// Group commits since opening: (groups, batches in them). Their ratio
    /// is how many appends shared each fsync.
    pub fn group_commits(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.inner.groups.load(Relaxed), self.inner.grouped.load(Relaxed))
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

/// A batch waiting for a group commit, and where its outcome goes.
struct QueuedAppend {
    batch: AppendBatch,
    reply: tokio::sync::oneshot::Sender<Result<AppendOutcome, StoreError>>,
    since: std::time::Instant,
}

/// Takes the writer, then every batch queued by then (up to [`MAX_GROUP`]),
/// and commits them together; answers each once the group is durable.
fn commit_queued(inner: &Inner) {
    let mut writer = match inner.writer.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let group: Vec<QueuedAppend> = match inner.appends.lock() {
        Ok(mut queue) => {
            let n = queue.len().min(MAX_GROUP);
            queue.drain(..n).collect()
        }
        Err(_) => return,
    };
    if group.is_empty() {
        return; // An earlier commit took this caller's batch.
    }
    let Some(conn) = writer.as_mut() else {
        for queued in group {
            let _ = queued.reply.send(Err(StoreError::Closed));
        }
        return;
    };
    let observer = inner.observer.get();
    let started = std::time::Instant::now();
    if let Some(observer) = observer {
        for queued in &group {
            observer.stage_finished(Stage::CommitWait, started.duration_since(queued.since));
        }
    }
    let batches: Vec<&AppendBatch> = group.iter().map(|q| &q.batch).collect();
    let committed = events::append_group(conn, &batches);
    if let Some(observer) = observer {
        observer.stage_finished(Stage::Commit, started.elapsed());
    }
    match committed {
        Ok(outcomes) => {
            inner.groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            inner.grouped.fetch_add(outcomes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            for (queued, outcome) in group.into_iter().zip(outcomes) {
                let _ = queued.reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batches = group.len(), "a group of appends could not be committed");
            for queued in group {
                let _ = queued.reply.send(Err(StoreError::Backend(e.to_string())));
            }
        }
    }
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
        if !batch.audit.is_empty() {
            // The audit log is its own file here: the server writes the record before the append.
            return Err(StoreError::InvalidBatch(
                "audit records cannot be committed with an append on SQLite (the audit log is another file)".into(),
            ));
        }
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner.appends.lock().map_err(|_| backend("append queue lock poisoned"))?.push(QueuedAppend {
            batch,
            reply,
            since: std::time::Instant::now(),
        });
        // Every queued batch has a commit after it: this one, or an earlier
        // caller's that found it queued. Detached: a caller that goes away
        // does not take its batch with it.
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || commit_queued(&inner)).await.map_err(backend)?;
        answer.await.map_err(|_| backend("the append's group was dropped before it committed"))?
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

    async fn case_version(&self, case_id: &CaseId) -> Result<Option<u64>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| events::case_version(conn, &case_id)).await
    }

    async fn get_snapshot(&self, case_id: &CaseId) -> Result<Option<bro_store::StoredSnapshot>, StoreError> {
        let case_id = case_id.clone();
        self.read(move |conn| events::get_snapshot(conn, &case_id)).await
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

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        expire_time: Timestamp,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let holder = holder.to_owned();
        self.write(move |conn| outbox::claim(conn, &holder, now, expire_time, limit)).await
    }

    async fn renew_lease(&self, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError> {
        let lease = lease.clone();
        self.write(move |conn| outbox::renew(conn, &lease, expire_time)).await
    }

    async fn release_lease(&self, system: &str, case_id: &CaseId, token: &LeaseToken) -> Result<(), StoreError> {
        let (system, case_id, token) = (system.to_owned(), case_id.clone(), token.clone());
        self.write(move |conn| outbox::release(conn, &system, &case_id, &token).map(drop)).await
    }

    async fn live_leases(&self, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError> {
        self.read(move |conn| outbox::live_leases(conn, now)).await
    }

    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError> {
        self.write(move |conn| outbox::update(conn, update)).await
    }

    async fn claim_job(&self, job: &str, now: Timestamp, every: chrono::Duration) -> Result<bool, StoreError> {
        let (job, due_before) = (job.to_owned(), micros(now) - every.num_microseconds().unwrap_or(i64::MAX));
        self.write(move |conn| {
            let claimed = conn
                .execute(
                    "INSERT INTO jobs (job, last_run) VALUES (?1, ?2)
                     ON CONFLICT (job) DO UPDATE SET last_run = excluded.last_run WHERE last_run <= ?3",
                    rusqlite::params![job, micros(now), due_before],
                )
                .map_err(backend)?;
            Ok(claimed == 1)
        })
        .await
    }

    async fn revoke_plan_links(&self, link_key: &[u8], at: Timestamp) -> Result<(), StoreError> {
        let key = link_key.to_vec();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO plan_link_revocations (link_key, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT (link_key) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)",
                rusqlite::params![key, micros(at)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn plan_links_revoked_at(&self, link_key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        use rusqlite::OptionalExtension as _;
        let key = link_key.to_vec();
        self.read(move |conn| {
            conn.query_row("SELECT revoked_at FROM plan_link_revocations WHERE link_key = ?1", [key], |r| r.get(0))
                .optional()
                .map(|at: Option<i64>| at.map(from_micros))
                .map_err(backend)
        })
        .await
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

    fn observe_commits(&self, observer: Arc<dyn AppendObserver>) {
        // The first observer stays (one server per store).
        let _ = self.inner.observer.set(observer);
    }

    async fn stale_worklist(
        &self,
        municipality_cvr: &str,
        today: bro_domain::Date,
        limit: usize,
    ) -> Result<Vec<CaseId>, StoreError> {
        let cvr = municipality_cvr.to_owned();
        self.read(move |conn| worklist::stale(conn, &cvr, today, limit)).await
    }

    async fn put_worklist(&self, entries: Vec<WorklistEntry>) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.write(move |conn| worklist::put(conn, &entries)).await
    }

    async fn reset_worklist(&self, revision: &str) -> Result<u64, StoreError> {
        let revision = revision.to_owned();
        self.write(move |conn| worklist::reset(conn, &revision)).await
    }

    async fn due_items(&self, query: &DueQuery) -> Result<Vec<StoredDueItem>, StoreError> {
        let query = query.clone();
        self.read(move |conn| worklist::page(conn, &query)).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use bro_domain::Date;

    fn id(s: &str) -> CaseId {
        CaseId::parse("case_id", s).expect("id")
    }

    fn batch(case: &str, version: u64, request_id: &str) -> AppendBatch {
        let at = Timestamp::from_timestamp(1_790_000_000, 0).expect("time");
        let sequence = version + 1;
        AppendBatch {
            case_id: id(case),
            expected_version: version,
            events: vec![StoredEvent {
                sequence,
                occurred_on: "2026-01-01".parse::<Date>().expect("date"),
                record_time: at,
                request_id: request_id.into(),
                payload: vec![1],
            }],
            projection: StoredCase {
                case_id: id(case),
                ordinal: 0,
                version: sequence,
                municipality_cvr: "29189846".into(),
                create_time: at,
                update_time: at,
                projection: vec![2],
            },
            request: RequestRecord {
                request_id: request_id.into(),
                case_id: id(case),
                fingerprint: request_id.as_bytes().to_vec(),
                first_sequence: sequence,
                last_sequence: sequence,
            },
            source: None,
            deliveries: Vec::new(),
            resolves_inbox: None,
            person_keys: Vec::new(),
            snapshot: None,
            audit: Vec::new(),
        }
    }

    /// Batches queued while the writer is busy are committed as one group,
    /// and the failures in it are their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_queued_behind_a_busy_writer_commit_as_one_group_and_fail_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("open"));
        store.append(batch("c0", 0, "r0")).await.expect("first");
        let before = store.group_commits();

        // Hold the writer (as a long commit would) while ten appends queue up.
        let inner = store.inner.clone();
        let (held, release) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            let _writer = inner.writer.lock().expect("writer");
            held.0.send(()).expect("held");
            release.1.recv().expect("release");
        });
        held.1.recv().expect("held");
        let mut batches: Vec<AppendBatch> = (1..=7).map(|i| batch(&format!("g{i}"), 0, &format!("good-{i}"))).collect();
        batches.push(batch("c0", 0, "stale"));
        batches.push(batch("c9", 0, "r0"));
        batches.push(batch("c0", 1, "next"));
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|b| {
                let store = store.clone();
                tokio::spawn(async move { (b.request.request_id.clone(), store.append(b).await) })
            })
            .collect();
        while store.inner.appends.lock().expect("queue").len() < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        release.0.send(()).expect("release");
        holder.join().expect("holder");

        for task in tasks {
            let (request_id, outcome) = task.await.expect("task");
            match request_id.as_str() {
                "stale" => assert!(matches!(outcome, Err(StoreError::Conflict { expected: 0, .. })), "{outcome:?}"),
                "r0" => assert!(matches!(outcome, Ok(AppendOutcome::AlreadyApplied(_))), "{outcome:?}"),
                _ => assert_eq!(outcome.expect("append"), AppendOutcome::Appended, "{request_id}"),
            }
        }
        let after = store.group_commits();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 10), "one group of ten, one commit");
        assert_eq!(store.get_case(&id("c0")).await.expect("get").expect("c0").version, 2);
        assert!(store.get_case(&id("c9")).await.expect("get").is_none());
        for i in 1..=7 {
            assert!(store.get_case(&id(&format!("g{i}"))).await.expect("get").is_some());
        }

        // And all of it is durable: reopened, the group is there.
        store.close().await.expect("close");
        drop(store);
        let reopened = SqliteStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.list_cases(&CaseQuery { limit: 100, ..Default::default() }).await.expect("list").len(), 8);
    }
}
