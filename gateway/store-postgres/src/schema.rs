//! The schema, as migrations applied once each, in order, and recorded in
//! `bro_schema`: a database knows how far it has been migrated. Migrating
//! is explicit ([`migrate`], `bro store migrate`); a store opened on a
//! database at another version is refused, naming both versions.

use tokio_postgres::Client;

use crate::backend;
use bro_store::StoreError;

/// The schema, one step per version. A step is never edited once released;
/// a change is a new step.
const MIGRATIONS: &[&str] = &[
    // 1: the whole store as of SQLite's migration 5, designed for PostgreSQL:
    // times are microseconds since the epoch and days are days from the
    // common era (as in SQLite, so a copy moves numbers, not formats);
    // `events` is append-only by trigger; ordinals come from identity
    // columns; the worklist's sort key compares bytewise (`COLLATE "C"`),
    // the order `due_sort_key` promises.
    r#"
CREATE TABLE cases (
    ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id TEXT NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    municipality_cvr TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    projection BYTEA NOT NULL
);
CREATE INDEX cases_by_municipality ON cases (municipality_cvr, ordinal);
CREATE TABLE events (
    case_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    occurred_on TEXT NOT NULL,
    record_time BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    payload BYTEA NOT NULL,
    PRIMARY KEY (case_id, sequence)
);
CREATE FUNCTION bro_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION bro_events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION bro_events_are_append_only();
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    first_sequence BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL
);
CREATE TABLE source_messages (
    system TEXT NOT NULL,
    message_id TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (request_id),
    PRIMARY KEY (system, message_id)
);
CREATE TABLE deliveries (
    ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    system TEXT NOT NULL,
    case_id TEXT NOT NULL,
    first_sequence BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    create_time BIGINT NOT NULL,
    replay_of TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_time BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    update_time BIGINT NOT NULL,
    rendered_type TEXT,
    rendered_body BYTEA
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_time);
CREATE INDEX deliveries_queue ON deliveries (system, case_id, state, ordinal);
CREATE INDEX deliveries_by_system ON deliveries (system, ordinal);
CREATE TABLE inbox (
    ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    system TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    source_message_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BYTEA NOT NULL,
    batch BYTEA NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    resolved_case TEXT,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE UNIQUE INDEX inbox_unmatched_source ON inbox (system, source_message_id)
    WHERE kind = 'unmatched' AND source_message_id <> '';
CREATE INDEX inbox_by_kind ON inbox (kind, ordinal);
CREATE TABLE case_people (
    person_key BYTEA NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (person_key, case_id)
);
CREATE INDEX case_people_by_case ON case_people (case_id);
CREATE TABLE worklist (
    case_id TEXT PRIMARY KEY,
    municipality_cvr TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    version BIGINT NOT NULL,
    revision TEXT NOT NULL,
    evaluated_on BIGINT NOT NULL,
    refresh_on BIGINT NOT NULL,
    open BIGINT NOT NULL,
    overdue BIGINT NOT NULL
);
CREATE INDEX worklist_refresh ON worklist (municipality_cvr, refresh_on);
CREATE INDEX worklist_evaluated ON worklist (municipality_cvr, evaluated_on);
CREATE INDEX worklist_by_ordinal ON worklist (municipality_cvr, ordinal);
CREATE TABLE worklist_items (
    municipality_cvr TEXT NOT NULL,
    sort_key TEXT COLLATE "C" NOT NULL,
    case_id TEXT NOT NULL,
    overdue BOOLEAN NOT NULL,
    due_on BIGINT,
    obligation BYTEA NOT NULL,
    PRIMARY KEY (municipality_cvr, sort_key)
);
CREATE INDEX worklist_items_by_case ON worklist_items (case_id);
CREATE TABLE snapshots (
    case_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state BYTEA NOT NULL
);
"#,
    // 2: the audit log, as SQLite's `audit.sqlite3` holds it: records with
    // their chain values, the index of the people concerned (keyed hashes),
    // and the head, whose row every append locks (so replicas chain one
    // after another); records and index are append-only by trigger.
    r#"
CREATE TABLE audit_records (
    sequence BIGINT PRIMARY KEY,
    record BYTEA NOT NULL,
    mac BYTEA NOT NULL
);
CREATE TABLE audit_people (
    person_key BYTEA NOT NULL,
    sequence BIGINT NOT NULL,
    PRIMARY KEY (person_key, sequence)
);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sequence BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
INSERT INTO audit_head (id, sequence, mac) VALUES (1, 0, '');
CREATE FUNCTION bro_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_records_no_change BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION bro_audit_is_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION bro_audit_is_append_only();
CREATE TRIGGER audit_people_no_change BEFORE UPDATE OR DELETE ON audit_people
    FOR EACH ROW EXECUTE FUNCTION bro_audit_is_append_only();
CREATE TRIGGER audit_people_no_truncate BEFORE TRUNCATE ON audit_people
    FOR EACH STATEMENT EXECUTE FUNCTION bro_audit_is_append_only();
"#,
    // 3: several replicas. `delivery_leases` has one row per (system, case)
    // queue ever claimed: its holder, until when (0: released) and the
    // epoch every claim raises, kept after release. The triggers tell
    // listening replicas (`LISTEN bro_changes`) what was committed: a case's
    // new version, or that deliveries were enqueued or moved; PostgreSQL
    // sends them at commit, and not at all for a rollback.
    r#"
CREATE TABLE delivery_leases (
    system TEXT NOT NULL,
    case_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    PRIMARY KEY (system, case_id)
);
CREATE INDEX delivery_leases_live ON delivery_leases (expire_time);
CREATE FUNCTION bro_notify_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bro_changes', 'case ' || NEW.version || ' ' || NEW.case_id); RETURN NULL; END $$;
CREATE TRIGGER cases_notify AFTER INSERT OR UPDATE OF version ON cases
    FOR EACH ROW EXECUTE FUNCTION bro_notify_case();
CREATE FUNCTION bro_notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bro_changes', 'deliveries'); RETURN NULL; END $$;
CREATE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF state, next_attempt_time ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION bro_notify_deliveries();
"#,
    // 4: jobs that run once per period across replicas: when each last ran.
    r#"
CREATE TABLE jobs (
    job TEXT PRIMARY KEY,
    last_run BIGINT NOT NULL
);
"#,
    // 5: audit records committed in an append's own transaction (the
    // record of who made the write), waiting to be chained: the next audit
    // append on any replica moves them into `audit_records`, under the
    // head's lock, so no append has to take that lock itself.
    r#"
CREATE TABLE audit_pending (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record BYTEA NOT NULL
);
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION bro_audit_is_append_only();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION bro_audit_is_append_only();
"#,
    // 6: revoked parents' page links: per keyed hash of (case, plan,
    // parent), the time (microseconds) up to which the links made are revoked.
    r#"
CREATE TABLE plan_link_revocations (
    link_key BYTEA PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
"#,
];

/// The schema version this bro reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Serialises migrations of one database across processes.
const MIGRATION_LOCK: i64 = 0x0062_726f_5f6d_6967; // "bro_mig"

/// The version a database is at; 0 for one bro never migrated.
pub(crate) async fn version(client: &Client) -> Result<i64, StoreError> {
    let exists: bool =
        client.query_one("SELECT to_regclass('bro_schema') IS NOT NULL", &[]).await.map_err(backend)?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM bro_schema", &[]).await.map_err(backend)?;
    Ok(row.get(0))
}

/// Brings the database up to this bro's schema, one step per transaction,
/// under an advisory lock (two replicas migrating at once take turns); the
/// version it is at afterwards.
pub(crate) async fn migrate(client: &mut Client) -> Result<i64, StoreError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS bro_schema (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .await
        .map_err(backend)?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let step = i as i64 + 1;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(backend)?;
        let at: i64 =
            tx.query_one("SELECT coalesce(max(version), 0) FROM bro_schema", &[]).await.map_err(backend)?.get(0);
        if at > SCHEMA_VERSION {
            return Err(newer(at));
        }
        if at >= step {
            continue;
        }
        tx.batch_execute(sql).await.map_err(backend)?;
        tx.execute("INSERT INTO bro_schema (version) VALUES ($1)", &[&step]).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
    }
    version(client).await
}

/// Refuses a database not at this bro's schema, saying what to do.
pub(crate) fn check(at: i64) -> Result<(), StoreError> {
    match at {
        v if v == SCHEMA_VERSION => Ok(()),
        v if v > SCHEMA_VERSION => Err(newer(v)),
        0 => Err(StoreError::Backend(format!(
            "the database has no bro schema; run `bro store migrate` to create schema version {SCHEMA_VERSION}"
        ))),
        v => Err(StoreError::Backend(format!(
            "the database has schema version {v}, older than this bro's {SCHEMA_VERSION}; run `bro store migrate`"
        ))),
    }
}

fn newer(at: i64) -> StoreError {
    StoreError::Backend(format!(
        "the database has schema version {at}, newer than this bro ({SCHEMA_VERSION}); upgrade bro"
    ))
}
