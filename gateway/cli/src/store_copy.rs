//! `bro store copy --from DIR --to postgres://…`: moves a stopped gateway's
//! whole embedded store — events, cases, snapshots, request records, source
//! messages, the person index, deliveries, the inbox — and its audit log
//! into a migrated, empty PostgreSQL database, in one transaction.
//!
//! Rows are copied as stored: sealed blobs stay sealed with the same key
//! (the target gateway uses the same key file), ordinals keep their values
//! (page tokens stay valid), and the audit chain keeps its MACs, so `bro
//! audit verify --store` passes on the target. The worklist index is not
//! copied: every case starts stale, and the gateway re-evaluates it.

use std::path::Path;

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Transaction};

/// The SQLite schema version this copy reads (`bro-store-sqlite`'s migrations).
const SQLITE_SCHEMA: i64 = 8;

/// How a column crosses: SQLite's integer, text or blob, possibly null.
#[derive(Clone, Copy)]
enum Column {
    Int,
    Text,
    Blob,
    OptText,
    OptBlob,
}

/// One table: its name, its columns in order, and whether its first
/// column is an identity the target generates (copied with `OVERRIDING
/// SYSTEM VALUE`, then the identity restarts after the largest).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Column)],
    identity: bool,
}

use Column::{Blob, Int, OptBlob, OptText, Text};

/// The store's tables, in an order that satisfies the target's references.
const STORE_TABLES: &[Table] = &[
    Table {
        name: "cases",
        columns: &[
            ("ordinal", Int),
            ("case_id", Text),
            ("version", Int),
            ("municipality_cvr", Text),
            ("create_time", Int),
            ("update_time", Int),
            ("projection", Blob),
        ],
        identity: true,
    },
    Table {
        name: "events",
        columns: &[
            ("case_id", Text),
            ("sequence", Int),
            ("occurred_on", Text),
            ("record_time", Int),
            ("request_id", Text),
            ("payload", Blob),
        ],
        identity: false,
    },
    Table {
        name: "requests",
        columns: &[
            ("request_id", Text),
            ("case_id", Text),
            ("fingerprint", Blob),
            ("first_sequence", Int),
            ("last_sequence", Int),
        ],
        identity: false,
    },
    Table {
        name: "source_messages",
        columns: &[("system", Text), ("message_id", Text), ("request_id", Text)],
        identity: false,
    },
    Table {
        name: "deliveries",
        columns: &[
            ("ordinal", Int),
            ("delivery_id", Text),
            ("system", Text),
            ("case_id", Text),
            ("first_sequence", Int),
            ("last_sequence", Int),
            ("payload", Blob),
            ("create_time", Int),
            ("replay_of", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_time", Int),
            ("last_error", Text),
            ("update_time", Int),
            ("rendered_type", OptText),
            ("rendered_body", OptBlob),
        ],
        identity: true,
    },
    Table {
        name: "inbox",
        columns: &[
            ("ordinal", Int),
            ("entry_id", Text),
            ("kind", Text),
            ("system", Text),
            ("request_id", Text),
            ("source_message_id", Text),
            ("content_type", Text),
            ("body", Blob),
            ("batch", Blob),
            ("reason", Text),
            ("state", Text),
            ("resolved_case", OptText),
            ("create_time", Int),
            ("update_time", Int),
        ],
        identity: true,
    },
    Table { name: "case_people", columns: &[("person_key", Blob), ("case_id", Text)], identity: false },
    Table { name: "snapshots", columns: &[("case_id", Text), ("version", Int), ("state", Blob)], identity: false },
    Table { name: "plan_link_revocations", columns: &[("link_key", Blob), ("revoked_at", Int)], identity: false },
];

/// The audit log's tables (its head is copied separately, onto the target's row).
const AUDIT_TABLES: &[Table] = &[
    Table { name: "audit_records", columns: &[("sequence", Int), ("record", Blob), ("mac", Blob)], identity: false },
    Table { name: "audit_people", columns: &[("person_key", Blob), ("sequence", Int)], identity: false },
];

/// One value read from SQLite, ready for PostgreSQL.
enum Value {
    Int(i64),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int(v) => v,
            Value::Text(v) => v,
            Value::Blob(v) => v,
        }
    }
}

fn read_value(row: &rusqlite::Row<'_>, i: usize, column: Column) -> rusqlite::Result<Value> {
    Ok(match column {
        Int => Value::Int(row.get(i)?),
        Text => Value::Text(Some(row.get(i)?)),
        OptText => Value::Text(row.get(i)?),
        Blob => Value::Blob(Some(row.get(i)?)),
        OptBlob => Value::Blob(row.get(i)?),
    })
}

/// Copies one table's rows; the number copied.
async fn copy_table(source: &Connection, target: &Transaction<'_>, table: &Table) -> anyhow::Result<u64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let overriding = if table.identity { " OVERRIDING SYSTEM VALUE" } else { "" };
    let insert = target
        .prepare(&format!(
            "INSERT INTO {} ({}){overriding} VALUES ({})",
            table.name,
            names.join(", "),
            placeholders.join(", ")
        ))
        .await
        .with_context(|| format!("cannot prepare the copy of {}", table.name))?;
    let mut select = source
        .prepare(&format!("SELECT {} FROM {} ORDER BY rowid", names.join(", "), table.name))
        .or_else(|_| source.prepare(&format!("SELECT {} FROM {}", names.join(", "), table.name)))
        .with_context(|| format!("cannot read {} from the SQLite store", table.name))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let values: Vec<Value> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, column))| read_value(row, i, *column))
            .collect::<rusqlite::Result<_>>()?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(Value::as_sql).collect();
        target.execute(&insert, &params).await.with_context(|| format!("cannot copy a row of {}", table.name))?;
        copied += 1;
    }
    if table.identity {
        target
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'ordinal'), coalesce(max(ordinal), 0) + 1, false) FROM {0}",
                    table.name
                ),
                &[],
            )
            .await
            .with_context(|| format!("cannot restart the ordinals of {}", table.name))?;
    }
    Ok(copied)
}

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// `bro store copy`: everything of the gateway in `data_dir` into the
/// database at `url`, which must be migrated and hold no cases and no
/// audit records. Prints what it copied.
#[allow(clippy::print_stdout)] // A command reports what it did.
pub async fn copy(data_dir: &Path, url: &str) -> anyhow::Result<()> {
    crate::config::check_store_url(url)?;
    // Another process using the directory could change it while we read.
    let lock = std::fs::File::options()
        .write(true)
        .open(data_dir.join("bro.lock"))
        .with_context(|| format!("{} is not a bro data directory", data_dir.display()))?;
    lock.try_lock().map_err(|_| anyhow::anyhow!("{} is in use by a running bro; stop it first", data_dir.display()))?;
    let store = open_read_only(&data_dir.join(bro_store_sqlite::DB_FILE))?;
    let version: i64 = store.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != SQLITE_SCHEMA {
        bail!("the SQLite store has schema version {version}; this bro copies version {SQLITE_SCHEMA}");
    }
    let audit = open_read_only(&data_dir.join(bro_store_sqlite::AUDIT_FILE))?;
    // Refuses an unmigrated database, or one of another version, by name.
    let target = bro_store_postgres::PostgresStore::open(url).await?;
    bro_store::EventStore::close(&target).await?;
    let (mut client, connection) = tokio_postgres::connect(url, NoTls).await.context("cannot connect to the target")?;
    let driver = tokio::spawn(connection);
    let tx = client.transaction().await?;
    let occupied: bool =
        tx.query_one("SELECT EXISTS (SELECT 1 FROM cases) OR EXISTS (SELECT 1 FROM audit_records)", &[]).await?.get(0);
    if occupied {
        bail!("the target database already holds cases or audit records; copy only into an empty one");
    }
    let mut report = Vec::new();
    for table in STORE_TABLES {
        report.push((table.name, copy_table(&store, &tx, table).await?));
    }
    // Every case starts with a stale worklist entry; the gateway re-evaluates it.
    tx.execute(
        "INSERT INTO worklist (case_id, municipality_cvr, ordinal, version, revision, evaluated_on, refresh_on,
                               open, overdue)
         SELECT case_id, municipality_cvr, ordinal, 0, '', 0, 0, 0, 0 FROM cases",
        &[],
    )
    .await?;
    for table in AUDIT_TABLES {
        report.push((table.name, copy_table(&audit, &tx, table).await?));
    }
    let head: Option<(i64, Vec<u8>)> = audit
        .query_row("SELECT sequence, mac FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(Some)
        .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
    let (sequence, mac) = head.unwrap_or((0, Vec::new()));
    tx.execute("UPDATE audit_head SET sequence = $1, mac = $2 WHERE id = 1", &[&sequence, &mac]).await?;
    tx.commit().await.context("cannot commit the copy")?;
    drop(client);
    let _ = driver.await;
    println!("copied {} into the PostgreSQL store:", data_dir.display());
    for (table, rows) in report {
        println!("  {table}: {rows} rows");
    }
    println!("  audit head: record {sequence}");
    Ok(())
}
