//! Runs the event-store conformance suite against a real PostgreSQL (one
//! fresh database per run, dropped afterwards; one schema per fresh store),
//! and checks the audit log there: two replicas chaining at once.
//! The server is `BRO_TEST_POSTGRES` (a connection URL to a database the
//! test may create databases from), or the local one on 127.0.0.1:5432.

#![allow(clippy::print_stderr)] // A skipped suite says so, for whoever runs it without a server.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bro_store::EventStore;
use bro_store::conformance::{Harness, run_all};
use bro_store_postgres::PostgresStore;
use tokio_postgres::NoTls;

fn server_url() -> String {
    std::env::var("BRO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to the server's maintenance database.
async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server_url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} (set BRO_TEST_POSTGRES): {e}", server_url()));
    tokio::spawn(connection);
    client
}

/// Whether a server answers. Without one, the suite is skipped with a
/// notice on a developer's machine (SQLite needs none) and fails in CI
/// (`CI` set), whose `.ci/run` starts one.
async fn server_answers(test: &str) -> bool {
    match tokio_postgres::connect(&server_url(), NoTls).await {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{test}: no PostgreSQL at {} in CI: {e}", server_url()),
        Err(e) => {
            eprintln!("SKIPPED {test}: no PostgreSQL at {} ({e}); set BRO_TEST_POSTGRES to run it", server_url());
            false
        }
    }
}

/// A database of its own for one test run, dropped when done.
struct TestDatabase {
    name: String,
}

impl TestDatabase {
    async fn create(purpose: &str) -> TestDatabase {
        let name = format!("bro_test_{purpose}_{}", std::process::id());
        let admin = admin().await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.expect("drop old");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        TestDatabase { name }
    }

    /// The connection string of the database (the server's host, port,
    /// user and password), with `search_path` set to `schema`.
    fn url(&self, schema: Option<&str>) -> String {
        let config: tokio_postgres::Config = server_url().parse().expect("a valid URL");
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let mut url = format!(
            "host={} port={} user={} dbname={}",
            quote(&host),
            config.get_ports().first().copied().unwrap_or(5432),
            quote(config.get_user().unwrap_or("postgres")),
            quote(&self.name)
        );
        if let Some(password) = config.get_password() {
            url.push_str(&format!(" password={}", quote(&String::from_utf8_lossy(password))));
        }
        if let Some(schema) = schema {
            url.push_str(&format!(" options='-c search_path={schema}'"));
        }
        url
    }

    async fn drop_now(self) {
        admin()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await
            .expect("drop");
    }
}

/// Fresh stores, each in a schema of its own in the run's database.
struct Schemas {
    database: TestDatabase,
    next: AtomicUsize,
    urls: Mutex<Vec<String>>,
}

#[async_trait]
impl Harness for Schemas {
    type Store = PostgresStore;

    async fn fresh(&self) -> PostgresStore {
        let schema = format!("s{}", self.next.fetch_add(1, Ordering::SeqCst));
        let (client, connection) = tokio_postgres::connect(&self.database.url(None), NoTls).await.expect("connect");
        let driver = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
        drop(client);
        let _ = driver.await;
        let url = self.database.url(Some(&schema));
        assert_eq!(PostgresStore::migrate(&url).await.expect("migrate"), bro_store_postgres::SCHEMA_VERSION);
        let store = PostgresStore::open(&url).await.expect("open");
        self.urls.lock().expect("lock").push(url);
        store
    }

    async fn reopen(&self, store: PostgresStore) -> PostgresStore {
        store.close().await.expect("close");
        drop(store);
        let url = self.urls.lock().expect("lock").last().cloned().expect("a fresh store first");
        PostgresStore::open(&url).await.expect("reopen")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    if !server_answers("postgres_passes_the_conformance_suite").await {
        return;
    }
    let schemas = Schemas {
        database: TestDatabase::create("conformance").await,
        next: AtomicUsize::new(0),
        urls: Mutex::default(),
    };
    run_all(&schemas).await;
    schemas.database.drop_now().await;
}

#[tokio::test]
async fn a_database_at_another_schema_version_is_refused_by_name() {
    if !server_answers("a_database_at_another_schema_version_is_refused_by_name").await {
        return;
    }
    let database = TestDatabase::create("versions").await;
    let url = database.url(None);
    let unmigrated = PostgresStore::open(&url).await.err().expect("refused");
    assert!(unmigrated.to_string().contains("run `bro store migrate`"), "{unmigrated}");
    assert_eq!(PostgresStore::migrate(&url).await.expect("migrate"), bro_store_postgres::SCHEMA_VERSION);
    assert_eq!(PostgresStore::migrate(&url).await.expect("again"), bro_store_postgres::SCHEMA_VERSION, "idempotent");
    PostgresStore::open(&url).await.expect("opens when migrated");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.batch_execute("INSERT INTO bro_schema (version) VALUES (999)").await.expect("a newer bro was here");
    let newer = PostgresStore::open(&url).await.err().expect("refused");
    assert!(newer.to_string().contains("schema version 999, newer than this bro"), "{newer}");
    // The log is append-only whatever the client.
    client
        .batch_execute("INSERT INTO events VALUES ('c-1', 1, '2026-01-01', 0, 'r-1', '\\x00')")
        .await
        .expect("an event");
    for change in ["UPDATE events SET payload = '\\x01'", "DELETE FROM events", "TRUNCATE events"] {
        let err = client.batch_execute(change).await.expect_err("refused");
        assert!(format!("{err:?}").contains("events are append-only"), "{change}: {err:?}");
    }
    drop(client);
    database.drop_now().await;
}

/// The same suite through [`bro_store::SealedStore`].
struct SealedSchemas {
    schemas: Schemas,
    keys: std::sync::Arc<bro_store::Keyring>,
}

#[async_trait]
impl Harness for SealedSchemas {
    type Store = bro_store::SealedStore;

    async fn fresh(&self) -> bro_store::SealedStore {
        bro_store::SealedStore::new(std::sync::Arc::new(self.schemas.fresh().await), self.keys.clone())
    }

    async fn reopen(&self, store: bro_store::SealedStore) -> bro_store::SealedStore {
        store.close().await.expect("close");
        drop(store);
        let url = self.schemas.urls.lock().expect("lock").last().cloned().expect("a fresh store first");
        let inner = PostgresStore::open(&url).await.expect("reopen");
        bro_store::SealedStore::new(std::sync::Arc::new(inner), self.keys.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_postgres_passes_the_conformance_suite() {
    if !server_answers("sealed_postgres_passes_the_conformance_suite").await {
        return;
    }
    let schemas =
        Schemas { database: TestDatabase::create("sealed").await, next: AtomicUsize::new(0), urls: Mutex::default() };
    let sealed = SealedSchemas { schemas, keys: std::sync::Arc::new(bro_store::Keyring::from_master(&[7; 32])) };
    run_all(&sealed).await;
    sealed.schemas.database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_chain_one_audit_log_that_verifies() {
    if !server_answers("two_replicas_chain_one_audit_log_that_verifies").await {
        return;
    }
    use bro_store::audit::{AuditLog, verify, verify_index};
    let database = TestDatabase::create("audit").await;
    let url = database.url(None);
    PostgresStore::migrate(&url).await.expect("migrate");
    let keys = bro_store::Keyring::from_master(&[9; 32]);
    let replicas: Vec<bro_store_postgres::PostgresAuditLog> = replica_logs(2, &url, &keys).await;
    // Each replica appends 40 batches of 1–3 records at once; the chain is one.
    let tasks: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(r, log)| {
            let log = log.clone();
            tokio::spawn(async move {
                for b in 0..40u8 {
                    let records = (0..=(b % 3))
                        .map(|i| bro_proto::v1::AuditRecord {
                            method: format!("/bro.v1.CaseService/GetCase#{r}-{b}-{i}"),
                            person_keys: vec![vec![r as u8, b % 5]],
                            ..Default::default()
                        })
                        .collect();
                    log.append(records).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("replica");
    }
    let store = PostgresStore::open(&url).await.expect("open");
    let (records, head, index) = bro_store_postgres::PostgresAuditLog::read_all(&store).await.expect("read");
    let expected: u64 = 2 * (0..40u64).map(|b| b % 3 + 1).sum::<u64>();
    assert_eq!(verify(&keys, records.clone(), &head).expect("the chain is whole"), expected);
    verify_index(&records, &index).expect("the index matches");
    assert_eq!(replicas[1].head().await.expect("head"), head);
    let mine = replicas[0].read_person(&[1, 3], 0, 1000).await.expect("read person");
    assert_eq!(mine.len() as u64, (0..40u64).filter(|b| b % 5 == 3).map(|b| b % 3 + 1).sum::<u64>());
    // Append-only whatever the client.
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    for change in ["UPDATE audit_records SET mac = ''", "DELETE FROM audit_people", "TRUNCATE audit_records"] {
        let err = client.batch_execute(change).await.expect_err("refused");
        assert!(format!("{err:?}").contains("the audit log is append-only"), "{change}: {err:?}");
    }
    drop(client);
    database.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writes_audit_record_commits_with_it_and_is_chained_before_later_records() {
    if !server_answers("a_writes_audit_record_commits_with_it_and_is_chained_before_later_records").await {
        return;
    }
    use bro_proto::v1::AuditRecord;
    use bro_store::audit::{AuditLog, verify, verify_index};
    use bro_store::conformance::raw_batch;
    use bro_store::{AppendBatch, AppendOutcome};
    use prost::Message as _;
    let database = TestDatabase::create("audit_append").await;
    let url = database.url(None);
    PostgresStore::migrate(&url).await.expect("migrate");
    let keys = bro_store::Keyring::from_master(&[5; 32]);
    let store = PostgresStore::open(&url).await.expect("open");
    let log = bro_store_postgres::PostgresAuditLog::new(&store, keys.clone());
    assert!(log.commits_with_appends());
    let record = |method: &str, person: u8| AuditRecord {
        method: method.into(),
        outcome: "COMMITTED".into(),
        person_keys: vec![vec![person]],
        ..Default::default()
    };
    let with =
        |batch: AppendBatch, method: &str, person: u8| AppendBatch { audit: vec![record(method, person)], ..batch };
    let chained = || async {
        let (records, head, index) = bro_store_postgres::PostgresAuditLog::read_all(&store).await.expect("read");
        verify(&keys, records.clone(), &head).expect("the chain is whole");
        verify_index(&records, &index).expect("the index matches");
        records.iter().map(|r| AuditRecord::decode(r.record.as_slice()).expect("a record").method).collect::<Vec<_>>()
    };
    let pending = || async { bro_store_postgres::PostgresAuditLog::pending(&store).await.expect("pending") };
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);

    // Committed with the write, not yet in the chain.
    let first = with(raw_batch("c1", 0, 1, "r1", "29189846"), "write-1", 1);
    assert_eq!(store.append(first.clone()).await.expect("append"), AppendOutcome::Appended);
    assert_eq!(pending().await, 1);
    assert!(chained().await.is_empty());
    // Append-only while it waits.
    let err = client.batch_execute("UPDATE audit_pending SET record = ''").await.expect_err("refused");
    assert!(format!("{err:?}").contains("append-only"), "{err:?}");
    // A write that does not commit leaves no record: a conflict, a replay.
    let stale = with(raw_batch("c1", 0, 1, "r2", "29189846"), "conflict", 2);
    assert!(store.append(stale).await.is_err(), "c1 is at version 1");
    let replay = with(first, "replay", 3);
    assert!(matches!(store.append(replay).await.expect("replay"), AppendOutcome::AlreadyApplied(_)));
    assert_eq!(pending().await, 1, "only the committed write's record");
    // The next audit append chains it first, then its own.
    let own = log.append(vec![record("call-1", 1)]).await.expect("audit append");
    assert_eq!(own, vec![2], "the call's own record follows the write's");
    assert_eq!(chained().await, ["write-1", "call-1"]);
    assert_eq!(pending().await, 0);
    assert_eq!(log.read_person(&[1], 0, 10).await.expect("person").len(), 2, "both are indexed by person");

    // A crash after the commit: another process (a replica, a restart) chains it.
    let second = with(raw_batch("c1", 1, 1, "r3", "29189846"), "write-2", 2);
    assert_eq!(store.append(second).await.expect("append"), AppendOutcome::Appended);
    let restarted = PostgresStore::open(&url).await.expect("open");
    let other = bro_store_postgres::PostgresAuditLog::new(&restarted, keys.clone());
    assert_eq!(other.settle().await.expect("settle"), 1);
    assert_eq!(other.settle().await.expect("settle"), 0, "nothing twice");
    assert_eq!(chained().await, ["write-1", "call-1", "write-2"]);

    // One transaction: when the record cannot be written, neither is the write.
    client.batch_execute("ALTER TABLE audit_pending ADD CONSTRAINT refuse CHECK (false) NOT VALID").await.expect("ddl");
    let lost = with(raw_batch("c2", 0, 1, "r4", "29189846"), "write-3", 3);
    let err = store.append(lost.clone()).await.expect_err("the record cannot be written");
    assert!(err.to_string().contains("refuse"), "{err}");
    assert_eq!(store.case_version(&lost.case_id).await.expect("version"), None, "c2 was not created");
    assert_eq!(store.find_request("r4").await.expect("request"), None);
    client.batch_execute("ALTER TABLE audit_pending DROP CONSTRAINT refuse").await.expect("ddl");
    assert_eq!(store.append(lost).await.expect("append"), AppendOutcome::Appended, "and then it can");
    drop(client);
    drop((log, other, store, restarted));
    database.drop_now().await;
}

/// `n` audit logs on `url`, each over its own store (as replicas would be).
async fn replica_logs(n: usize, url: &str, keys: &bro_store::Keyring) -> Vec<bro_store_postgres::PostgresAuditLog> {
    let mut logs = Vec::new();
    for _ in 0..n {
        let store = PostgresStore::open(url).await.expect("open");
        logs.push(bro_store_postgres::PostgresAuditLog::new(&store, keys.clone()));
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_hears_what_another_commits() {
    if !server_answers("a_replica_hears_what_another_commits").await {
        return;
    }
    use bro_store::StoreChange;
    let database = TestDatabase::create("feed").await;
    let url = database.url(None);
    PostgresStore::migrate(&url).await.expect("migrate");
    let (writer, follower) =
        (PostgresStore::open(&url).await.expect("open"), PostgresStore::open(&url).await.expect("open"));
    let mut changes = follower.changes().expect("a PostgreSQL store is shared");
    let next = |changes: &mut tokio::sync::broadcast::Receiver<StoreChange>| {
        let mut changes = changes.resubscribe();
        async move {
            loop {
                let change = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv()).await;
                match change.expect("a change within 10 s").expect("the feed runs") {
                    StoreChange::Resync => continue,
                    other => return other,
                }
            }
        }
    };
    // Connected, the feed says so first: whatever came before is to be re-read.
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv()).await;
    assert_eq!(first.expect("the feed starts").expect("open"), StoreChange::Resync);
    let waiting = next(&mut changes);
    let batch = bro_store::conformance::raw_batch("c1", 0, 3, "r1", "29189846");
    writer.append(batch).await.expect("append");
    let case_id = bro_domain::CaseId::parse("case_id", "c1").expect("id");
    assert_eq!(waiting.await, StoreChange::Case { case_id: case_id.clone(), version: 3 });
    let waiting = next(&mut changes);
    let delivery = bro_store::NewDelivery {
        delivery_id: "d1".into(),
        system: "jobcenter".into(),
        case_id,
        first_sequence: 1,
        last_sequence: 3,
        payload: b"batch".to_vec(),
        create_time: chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
        replay_of: String::new(),
    };
    writer.enqueue_delivery(delivery).await.expect("enqueue");
    assert_eq!(waiting.await, StoreChange::Deliveries);
    // A rolled-back append tells nobody anything.
    let waiting = next(&mut changes);
    writer.append(bro_store::conformance::raw_batch("c1", 1, 1, "r2", "29189846")).await.expect_err("stale version");
    writer.append(bro_store::conformance::raw_batch("c2", 0, 1, "r3", "29189846")).await.expect("append");
    assert!(
        matches!(waiting.await, StoreChange::Case { case_id, version: 1 } if case_id.as_str() == "c2"),
        "the next change is the next commit"
    );

    // The listening connection is cut: the feed says resync, reconnects, and hears commits again.
    let (admin_client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let mut after_cut = changes.resubscribe();
    let cut: i64 = admin_client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(cut, 1, "one listening connection");
    let resynced = tokio::time::timeout(std::time::Duration::from_secs(10), after_cut.recv()).await;
    assert_eq!(resynced.expect("a resync within 10 s").expect("the feed runs"), StoreChange::Resync);
    // It says resync again once it listens again; from then on commits are heard as before.
    let relistening = tokio::time::timeout(std::time::Duration::from_secs(10), after_cut.recv()).await;
    assert_eq!(relistening.expect("listening again within 10 s").expect("the feed runs"), StoreChange::Resync);
    let waiting = next(&mut changes);
    writer.append(bro_store::conformance::raw_batch("c2", 1, 1, "r4", "29189846")).await.expect("append");
    assert!(
        matches!(waiting.await, StoreChange::Case { case_id, version: 2 } if case_id.as_str() == "c2"),
        "heard after reconnecting"
    );
    follower.close().await.expect("close");
    writer.close().await.expect("close");
    database.drop_now().await;
}
