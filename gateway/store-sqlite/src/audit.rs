//! The audit log in its own SQLite file (`audit.sqlite3` beside the event
//! store): records, their chain values, an index of the people concerned
//! (keyed hashes), and the head, all written in one transaction per batch.
//! Triggers refuse updates and deletes; [`bro_store::audit::verify`] finds
//! whatever gets past them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bro_proto::v1 as pb;
use bro_store::audit::{AuditHead, AuditLog, StoredAuditRecord, chain};
use bro_store::{Keyring, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// File name of the audit database inside the data directory.
pub const AUDIT_FILE: &str = "audit.sqlite3";

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS audit_records (
    sequence INTEGER PRIMARY KEY,
    record BLOB NOT NULL,
    mac BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_people (
    person_key BLOB NOT NULL,
    sequence INTEGER NOT NULL,
    PRIMARY KEY (person_key, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sequence INTEGER NOT NULL,
    mac BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_people_no_update BEFORE UPDATE ON audit_people
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_people_no_delete BEFORE DELETE ON audit_people
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// The audit database failed (its errors name it, apart from the event store's).
fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("audit log: {e}"))
}

/// The SQLite audit log.
#[derive(Clone)]
pub struct SqliteAuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    keys: Keyring,
    writer: Mutex<Option<Connection>>,
}

impl SqliteAuditLog {
    /// Opens (creating if needed) the audit log in `data_dir`, chained with `keys`.
    pub fn open(data_dir: &Path, keys: Keyring) -> Result<SqliteAuditLog, StoreError> {
        let path = data_dir.join(AUDIT_FILE);
        let conn = Connection::open(&path).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(SqliteAuditLog { inner: Arc::new(Inner { path, keys, writer: Mutex::new(Some(conn)) }) })
    }

    /// Reads a whole audit log read-only (for `bro audit verify`): every
    /// record in stored order, and the head.
    pub fn read_all(data_dir: &Path) -> Result<(Vec<StoredAuditRecord>, AuditHead), StoreError> {
        let path = data_dir.join(AUDIT_FILE);
        if !path.exists() {
            return Err(backend(format!("{} does not exist", path.display())));
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
        let tx = conn.unchecked_transaction().map_err(backend)?;
        let records = select(&tx, "SELECT sequence, record, mac FROM audit_records ORDER BY rowid", [])?;
        let head = head(&tx)?;
        Ok((records, head))
    }

    /// The people index of a whole audit log, read-only: (keyed hash, sequence).
    pub fn read_index(data_dir: &Path) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        let conn = Connection::open_with_flags(data_dir.join(AUDIT_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(backend)?;
        let mut stmt = conn.prepare("SELECT person_key, sequence FROM audit_people").map_err(backend)?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)? as u64))).map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Keyring) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.writer.lock().map_err(|_| backend("lock poisoned"))?;
            let conn = guard.as_mut().ok_or(StoreError::Closed)?;
            f(conn, &inner.keys)
        })
        .await
        .map_err(backend)?
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
            conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
            f(&conn)
        })
        .await
        .map_err(backend)?
    }

    /// Closes the writer.
    pub fn close(&self) {
        if let Ok(mut guard) = self.inner.writer.lock() {
            guard.take();
        }
    }
}

fn head(conn: &Connection) -> Result<AuditHead, StoreError> {
    Ok(conn
        .query_row("SELECT sequence, mac FROM audit_head WHERE id = 1", [], |r| {
            Ok(AuditHead { sequence: r.get::<_, i64>(0)? as u64, mac: r.get(1)? })
        })
        .optional()
        .map_err(backend)?
        .unwrap_or_default())
}

fn select(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<StoredAuditRecord>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok(StoredAuditRecord { sequence: r.get::<_, i64>(0)? as u64, record: r.get(1)?, mac: r.get(2)? })
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    async fn append(&self, records: Vec<pb::AuditRecord>) -> Result<Vec<u64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.with_writer(move |conn, keys| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let current = head(&tx)?;
            let people: Vec<Vec<Vec<u8>>> = records.iter().map(|r| r.person_keys.clone()).collect();
            let stored = chain(keys, &current, records);
            for (row, keys_of_row) in stored.iter().zip(people) {
                tx.execute(
                    "INSERT INTO audit_records (sequence, record, mac) VALUES (?1, ?2, ?3)",
                    params![row.sequence as i64, row.record, row.mac],
                )
                .map_err(backend)?;
                for key in keys_of_row {
                    tx.execute(
                        "INSERT OR IGNORE INTO audit_people (person_key, sequence) VALUES (?1, ?2)",
                        params![key, row.sequence as i64],
                    )
                    .map_err(backend)?;
                }
            }
            let last = stored.last().expect("records is not empty");
            tx.execute(
                "INSERT INTO audit_head (id, sequence, mac) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, mac = excluded.mac",
                params![last.sequence as i64, last.mac],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(stored.iter().map(|r| r.sequence).collect())
        })
        .await
    }

    async fn read(&self, after_sequence: u64, limit: usize) -> Result<Vec<StoredAuditRecord>, StoreError> {
        self.with_reader(move |conn| {
            select(
                conn,
                "SELECT sequence, record, mac FROM audit_records WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
                params![after_sequence as i64, limit as i64],
            )
        })
        .await
    }

    async fn read_person(
        &self,
        person_key: &[u8],
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredAuditRecord>, StoreError> {
        let key = person_key.to_vec();
        self.with_reader(move |conn| {
            select(
                conn,
                "SELECT r.sequence, r.record, r.mac FROM audit_people p
                 JOIN audit_records r ON r.sequence = p.sequence
                 WHERE p.person_key = ?1 AND p.sequence > ?2 ORDER BY p.sequence LIMIT ?3",
                params![key, after_sequence as i64, limit as i64],
            )
        })
        .await
    }

    async fn head(&self) -> Result<AuditHead, StoreError> {
        self.with_reader(head).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_chain_and_verify_and_tampering_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = Keyring::parse(&Keyring::generate()).expect("key");
        let log = SqliteAuditLog::open(dir.path(), keys.clone()).expect("opens");
        let record = |method: &str, person: Option<Vec<u8>>| pb::AuditRecord {
            method: method.into(),
            person_keys: person.into_iter().collect(),
            ..Default::default()
        };
        let anna = keys.person_key("cpr", "0101901234");
        assert_eq!(log.append(vec![record("a", Some(anna.clone())), record("b", None)]).await.expect("append"), [1, 2]);
        assert_eq!(log.append(vec![record("c", Some(anna.clone()))]).await.expect("append"), [3]);
        let mine = log.read_person(&anna, 0, 10).await.expect("read");
        assert_eq!(mine.iter().map(|r| r.sequence).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(log.read(1, 10).await.expect("read").len(), 2);
        let (all, head) = SqliteAuditLog::read_all(dir.path()).expect("read all");
        assert_eq!(bro_store::audit::verify(&keys, all, &head), Ok(3));

        // The triggers refuse changes; someone who drops them is still found out.
        let conn = Connection::open(dir.path().join(AUDIT_FILE)).expect("open");
        assert!(conn.execute("DELETE FROM audit_records WHERE sequence = 2", []).is_err());
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit_records SET record = x'0801' WHERE sequence = 2",
        )
        .expect("tamper");
        let (all, head) = SqliteAuditLog::read_all(dir.path()).expect("read all");
        assert!(bro_store::audit::verify(&keys, all, &head).is_err());
    }
}
