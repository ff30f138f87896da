//! The schema, as migrations applied once each, in order, by SQLite's
//! `user_version`: a database knows how far it has been migrated, and one
//! migrated further than this bro knows is refused rather than misread.

use rusqlite::Connection;

use crate::{StoreError, backend};

/// The schema, one step per `user_version`. A step is never edited once
/// released; a change is a new step.
const MIGRATIONS: &[&str] = &[
    // 1: the case log. `cases` holds each case's projection (sealed protobuf)
    // with the columns it is found by; `ordinal` is creation order, the
    // order of listings and page tokens. `events` is the log itself, keyed
    // (case, sequence) so sequences are gap-free and unique per case, and
    // append-only: the triggers refuse any update or delete. `requests` is
    // the idempotency record: which request id wrote which events, and a
    // fingerprint of what it asked, to tell a retry from a reuse.
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
    // 2: the pipeline. `source_messages` makes ingest idempotent per message
    // (a system's message id, whatever the request id). `deliveries` is the
    // transactional outbox: a row per batch per receiving system, its state
    // and attempts, and the translated message once rendered; the indexes
    // serve the worker's "due" query (state, time), the per-queue head test
    // (system, case, state, ordinal) and listings by system. `inbox` holds
    // unmatched and rejected messages; one unmatched entry per source
    // message (the partial unique index).
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
    // 3: the person index: keyed hashes (never clear identifiers) of each
    // case's people, rewritten with every append, so ingest finds a
    // message's cases without opening any.
    r"
CREATE TABLE case_people (
    person_key BLOB NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (person_key, case_id)
) WITHOUT ROWID;
CREATE INDEX case_people_by_case ON case_people (case_id);
",
    // 4: the worklist index. `worklist` has a row per case: the version,
    // rules revision and day its entry was evaluated for, the day it goes
    // stale (`refresh_on`; 0: stale now, which every append sets), and its
    // counts of open and overdue obligations (for `ListCases`' filter, in
    // creation order). `worklist_items` holds the due obligations, keyed
    // by municipality and sort key: a page of the worklist is one range
    // scan. Existing cases start stale.
    r"
CREATE TABLE worklist (
    case_id TEXT PRIMARY KEY,
    municipality_cvr TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    version INTEGER NOT NULL,
    revision TEXT NOT NULL,
    evaluated_on INTEGER NOT NULL,
    refresh_on INTEGER NOT NULL,
    open INTEGER NOT NULL,
    overdue INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX worklist_refresh ON worklist (municipality_cvr, refresh_on);
CREATE INDEX worklist_evaluated ON worklist (municipality_cvr, evaluated_on);
CREATE INDEX worklist_by_ordinal ON worklist (municipality_cvr, ordinal);
CREATE TABLE worklist_items (
    municipality_cvr TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    case_id TEXT NOT NULL,
    overdue INTEGER NOT NULL,
    due_on INTEGER,
    obligation BLOB NOT NULL,
    PRIMARY KEY (municipality_cvr, sort_key)
) WITHOUT ROWID;
CREATE INDEX worklist_items_by_case ON worklist_items (case_id);
INSERT INTO worklist (case_id, municipality_cvr, ordinal, version, revision, evaluated_on, refresh_on, open, overdue)
    SELECT case_id, municipality_cvr, ordinal, 0, '', 0, 0, 0, 0 FROM cases;
",
    // 5: snapshots: each case's latest, its state after event `version`
    // (sealed), replaced in the transaction of the append that writes it.
    // A cache: a case without one replays its history.
    r"
CREATE TABLE snapshots (
    case_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state BLOB NOT NULL
) WITHOUT ROWID;
",
    // 6: delivery leases, one row per (system, case) queue ever claimed:
    // who holds it, until when (0: released), and the epoch every claim
    // raises — kept after release, so a later claim's epoch is higher.
    r"
CREATE TABLE delivery_leases (
    system TEXT NOT NULL,
    case_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expire_time INTEGER NOT NULL,
    PRIMARY KEY (system, case_id)
) WITHOUT ROWID;
",
    // 7: jobs that run once per period: when each last ran.
    r"
CREATE TABLE jobs (
    job TEXT PRIMARY KEY,
    last_run INTEGER NOT NULL
) WITHOUT ROWID;
",
    // 8: revoked parents' page links: per keyed hash of (case, plan,
    // parent), the time up to which the links made are revoked.
    r"
CREATE TABLE plan_link_revocations (
    link_key BLOB PRIMARY KEY,
    revoked_at INTEGER NOT NULL
) WITHOUT ROWID;
",
];

/// Brings the database up to this bro's schema, one step per transaction
/// (a crash mid-way leaves it at the last step completed).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
