//! Runs the event-store conformance suite against SQLite on a temporary directory.

use std::sync::Mutex;

use async_trait::async_trait;
use bro_store::EventStore;
use bro_store::conformance::{Harness, run_all};
use bro_store_sqlite::SqliteStore;

struct TempDirs {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait]
impl Harness for TempDirs {
    type Store = SqliteStore;

    async fn fresh(&self) -> SqliteStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        self.dirs.lock().expect("lock").push(dir);
        store
    }

    async fn reopen(&self, store: SqliteStore) -> SqliteStore {
        store.close().await.expect("close");
        drop(store);
        let dirs = self.dirs.lock().expect("lock");
        SqliteStore::open(dirs.last().expect("a fresh store first").path()).expect("reopen")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    run_all(&TempDirs { dirs: Mutex::new(Vec::new()) }).await;
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = SqliteStore::open(dir.path()).expect("open");
    let second = SqliteStore::open(dir.path()).err().expect("refused");
    assert!(second.to_string().contains("in use by another bro process"), "{second}");
}

/// The same suite through [`bro_store::SealedStore`]: sealing changes nothing a caller sees.
struct SealedDirs {
    dirs: TempDirs,
    keys: std::sync::Arc<bro_store::Keyring>,
}

#[async_trait]
impl Harness for SealedDirs {
    type Store = bro_store::SealedStore;

    async fn fresh(&self) -> bro_store::SealedStore {
        let inner = self.dirs.fresh().await;
        bro_store::SealedStore::new(std::sync::Arc::new(inner), self.keys.clone())
    }

    async fn reopen(&self, store: bro_store::SealedStore) -> bro_store::SealedStore {
        store.close().await.expect("close");
        drop(store);
        let dirs = self.dirs.dirs.lock().expect("lock");
        let inner = SqliteStore::open(dirs.last().expect("a fresh store first").path()).expect("reopen");
        bro_store::SealedStore::new(std::sync::Arc::new(inner), self.keys.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_sqlite_passes_the_conformance_suite() {
    let keys = std::sync::Arc::new(bro_store::Keyring::parse(&bro_store::Keyring::generate()).expect("key"));
    run_all(&SealedDirs { dirs: TempDirs { dirs: Mutex::new(Vec::new()) }, keys }).await;
}

#[tokio::test]
async fn a_sealed_store_keeps_request_fingerprints_keyed() {
    use bro_store::EventStore as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = std::sync::Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let keys = std::sync::Arc::new(bro_store::Keyring::parse(&bro_store::Keyring::generate()).expect("key"));
    let sealed = bro_store::SealedStore::new(inner.clone(), keys);
    let plain = b"sha-256 of a guessed message".to_vec();
    let mut batch = bro_store::conformance::raw_batch("c1", 0, 1, "r1", "29189846");
    batch.request.fingerprint = plain.clone();
    sealed.append(batch).await.expect("append");
    let stored = inner.find_request("r1").await.expect("find").expect("recorded");
    assert!(!stored.fingerprint.windows(plain.len()).any(|w| w == plain), "the database holds no plain fingerprint");
    assert!(!inner.fingerprint_matches(&stored, &plain), "without the key it confirms nothing");
    assert!(sealed.fingerprint_matches(&stored, &plain), "with the key a retry is recognised");
}
