//! The case ledger: validated, idempotent, optimistic appends on any backend,
//! and a feed of committed changes for watchers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bro_domain::{Case, CaseId, Date, Event, EventKind, RecordedEvent, Timestamp, Violations};
use bro_proto::convert;
use bro_proto::v1 as pb;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use crate::{
    AppendBatch, AppendOutcome, CaseQuery, EventStore, NewDelivery, RequestRecord, SourceKey, StoreError, StoredCase,
    StoredEvent, snapshot,
};

/// Most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;
/// How many case states the ledger keeps in memory.
const CACHE_CAPACITY: usize = 4096;
/// How often an append without an etag is retried after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// Why the ledger refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// No such case.
    #[error("case {0} does not exist")]
    NotFound(CaseId),
    /// A case with that id exists already.
    #[error("case {0} already exists")]
    AlreadyExists(CaseId),
    /// The input breaks the model's rules; nothing was stored.
    #[error("invalid input: {0}")]
    Invalid(Violations),
    /// The etag did not match the case's current version; nothing was stored.
    #[error("case {case_id} is at version {actual}; the request expected version {expected}")]
    EtagMismatch {
        /// The case.
        case_id: CaseId,
        /// The version the etag stood for.
        expected: u64,
        /// The current version.
        actual: u64,
    },
    /// The request id was used before for a different request.
    #[error("request id {request_id:?} was already used for a different request")]
    RequestIdReused {
        /// The reused id.
        request_id: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of a create or append: the events written and the case after them.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The case after the change.
    pub case: pb::Case,
    /// The events the request wrote, in sequence order.
    pub events: Vec<pb::CaseEvent>,
    /// True when this is the stored result of an earlier identical request.
    pub replayed: bool,
}

/// A change other tasks can watch: a case and the events just added to it.
#[derive(Clone, Debug)]
pub struct CaseChange {
    /// The case.
    pub case_id: CaseId,
    /// The case's version after the change.
    pub version: u64,
    /// The new events, for a change made through this ledger; empty for
    /// one another process committed (`remote`): read them from the store.
    pub events: Vec<pb::CaseEvent>,
    /// Committed by another process on the same store (another replica).
    pub remote: bool,
}

/// A request to open a case.
#[derive(Clone, Debug)]
pub struct CreateCase {
    /// Chosen id, or a generated one when `None`.
    pub case_id: Option<CaseId>,
    /// The legal date the case opened.
    pub opened_on: Date,
    /// The `CaseOpened` kind.
    pub opening: EventKind,
    /// Idempotency key.
    pub request_id: String,
    /// The time of recording (the server's clock).
    pub now: Timestamp,
    /// Audit records committed with the write (see [`crate::AppendBatch::audit`]).
    pub audit: Vec<pb::AuditRecord>,
}

/// A case opened by an ingested message: its `case_opened` event and the
/// events after it, written in one transaction.
#[derive(Clone, Debug)]
pub struct OpenCase {
    /// Chosen id, or a generated one when `None`.
    pub case_id: Option<CaseId>,
    /// The events; the first is `case_opened`, no other is.
    pub events: Vec<Event>,
    /// Idempotency key.
    pub request_id: String,
    /// The time of recording.
    pub now: Timestamp,
    /// The source message (opening it twice opens one case).
    pub source: Option<SourceKey>,
    /// What tells a retry from a reuse of the request id (default: the events).
    pub fingerprint: Option<Vec<u8>>,
    /// Audit records committed with the write (see [`crate::AppendBatch::audit`]).
    pub audit: Vec<pb::AuditRecord>,
}

/// A request to append events.
#[derive(Clone, Debug)]
pub struct AppendEvents {
    /// The case.
    pub case_id: CaseId,
    /// The events, in request order.
    pub events: Vec<Event>,
    /// Append only if the case is at this version.
    pub expected_version: Option<u64>,
    /// Idempotency key.
    pub request_id: String,
    /// The time of recording.
    pub now: Timestamp,
    /// For ingested events: the source message (appending it twice stores it once).
    pub source: Option<SourceKey>,
    /// An unmatched inbox entry these events resolve, closed in the same transaction.
    pub resolves_inbox: Option<String>,
    /// What tells a retry from a reuse of the request id (default: the
    /// events); ingest uses the message as received.
    pub fingerprint: Option<Vec<u8>>,
    /// Audit records committed with the write (see [`crate::AppendBatch::audit`]).
    pub audit: Vec<pb::AuditRecord>,
}

impl AppendEvents {
    /// An append from a client: no source message, no inbox entry.
    pub fn new(case_id: CaseId, events: Vec<Event>, request_id: String, now: Timestamp) -> Self {
        AppendEvents {
            case_id,
            events,
            expected_version: None,
            request_id,
            now,
            source: None,
            resolves_inbox: None,
            fingerprint: None,
            audit: Vec::new(),
        }
    }
}

/// What a write carries besides its events.
#[derive(Default)]
struct WriteExtras {
    source: Option<SourceKey>,
    resolves_inbox: Option<String>,
    audit: Vec<pb::AuditRecord>,
}

/// Decides which systems receive a change: called for every write, its
/// deliveries are stored in the same transaction as the events (the
/// transactional outbox).
pub trait DeliveryPlanner: Send + Sync + 'static {
    /// The deliveries for `events` just numbered for `case` (state after
    /// them), and their encoding `wire` (the same events, in the same order);
    /// `before` is the case before them (none when they open it).
    fn plan(
        &self,
        before: Option<&Case>,
        case: &Case,
        events: &[RecordedEvent],
        wire: &[pb::CaseEvent],
        now: Timestamp,
    ) -> Vec<NewDelivery>;
}

/// Told of every append the ledger hands its backend (the server's metrics
/// time them this way, so no decorator has to wrap the whole backend), and
/// of the time each stage of a write took.
pub trait AppendObserver: Send + Sync + 'static {
    /// An append took `elapsed` and made `appended` events durable (none
    /// when it failed or found its request applied before).
    fn append_finished(&self, elapsed: std::time::Duration, appended: usize);

    /// One stage of a write took `elapsed`.
    fn stage_finished(&self, stage: Stage, elapsed: std::time::Duration) {
        let _ = (stage, elapsed);
    }
}

/// The stages a write goes through, timed separately so that an operator
/// can tell which one limits throughput.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// An adapter's translation (in or out).
    Adapter,
    /// Checking events against the case and the law's invariants.
    Validation,
    /// Waiting for the backend's writer: the group commit before this one.
    CommitWait,
    /// The group's transaction, its fsync included.
    Commit,
    /// Waiting for the call's audit record to be durable.
    Audit,
}

impl Stage {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Adapter => "adapter",
            Stage::Validation => "validation",
            Stage::CommitWait => "commit_wait",
            Stage::Commit => "commit",
            Stage::Audit => "audit",
        }
    }
}

/// A fresh id that sorts by the time it was made (a UUID v7 of `at`, the
/// caller's clock, with random low bits).
pub fn time_ordered_id(at: Timestamp) -> String {
    let (seconds, nanos) = (at.timestamp().max(0) as u64, at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, nanos)).to_string()
}

/// The case ledger. Cheap to share behind an `Arc`.
pub struct CaseLedger {
    store: Arc<dyn EventStore>,
    states: Mutex<HashMap<CaseId, Arc<Case>>>,
    case_locks: Vec<tokio::sync::Mutex<()>>,
    changes: broadcast::Sender<Arc<CaseChange>>,
    planner: Option<Arc<dyn DeliveryPlanner>>,
    observer: Option<Arc<dyn AppendObserver>>,
}

impl CaseLedger {
    /// A ledger over a backend.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        let (changes, _) = broadcast::channel(1024);
        CaseLedger {
            store,
            states: Mutex::new(HashMap::new()),
            case_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            changes,
            planner: None,
            observer: None,
        }
    }

    /// A ledger that enqueues deliveries with every write.
    pub fn with_planner(store: Arc<dyn EventStore>, planner: Arc<dyn DeliveryPlanner>) -> Self {
        CaseLedger { planner: Some(planner), ..CaseLedger::new(store) }
    }

    /// The same ledger, telling `observer` of every append.
    pub fn observed_by(mut self, observer: Arc<dyn AppendObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The backend.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Subscribes to committed changes of all cases.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CaseChange>> {
        self.changes.subscribe()
    }

    /// Tells this ledger's watchers that another process committed to a
    /// case (see [`crate::EventStore::changes`]); the cached state is
    /// checked against the store's version on its next use anyway.
    pub fn announce_remote(&self, case_id: CaseId, version: u64) {
        let change = CaseChange { case_id, version, events: Vec::new(), remote: true };
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(Arc::new(change));
    }

    /// Opens a case; its `case_opened` event is event 1.
    pub async fn create(&self, cmd: CreateCase) -> Result<Committed, LedgerError> {
        if !matches!(cmd.opening, EventKind::CaseOpened { .. }) {
            return Err(LedgerError::Invalid(Violations::one("", "a case opens with case_opened")));
        }
        let event = Event { occurred_on: cmd.opened_on, kind: cmd.opening, source: None };
        let fingerprint = fingerprint("create", cmd.case_id.as_ref(), std::slice::from_ref(&event));
        if let Some(done) = self.replay_request(&cmd.request_id, &fingerprint).await? {
            return Ok(done);
        }
        let case_id = match cmd.case_id {
            Some(id) => id,
            None => CaseId::parse("case_id", &time_ordered_id(cmd.now)).map_err(LedgerError::Invalid)?,
        };
        let recorded = RecordedEvent { sequence: 1, record_time: cmd.now, request_id: cmd.request_id.clone(), event };
        let case = Case::open(case_id.clone(), &recorded).map_err(|v| LedgerError::Invalid(v.within("")))?;
        let _guard = self.lock(&case_id).await;
        let extras = WriteExtras { audit: cmd.audit, ..WriteExtras::default() };
        let outcome = self.write(None, &case, 0, &[recorded], &cmd.request_id, fingerprint.clone(), extras).await;
        match outcome {
            Ok(committed) => Ok(committed),
            Err(LedgerError::Store(StoreError::Conflict { .. })) => Err(LedgerError::AlreadyExists(case_id)),
            Err(e) => Err(e),
        }
    }

    /// Opens a case with its first events in one transaction.
    pub async fn open(&self, cmd: OpenCase) -> Result<Committed, LedgerError> {
        let opens = |e: &Event| matches!(e.kind, EventKind::CaseOpened { .. });
        if !cmd.events.first().is_some_and(opens) {
            return Err(LedgerError::Invalid(Violations::one("events[0]", "a case opens with case_opened")));
        }
        if let Some(i) = cmd.events.iter().skip(1).position(opens) {
            return Err(LedgerError::Invalid(Violations::one(format!("events[{}]", i + 1), "case_opened comes once")));
        }
        if cmd.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(LedgerError::Invalid(Violations::one(
                "events",
                format!("{} events in one request; at most {MAX_EVENTS_PER_APPEND} are allowed", cmd.events.len()),
            )));
        }
        let fingerprint =
            cmd.fingerprint.clone().unwrap_or_else(|| fingerprint("open", cmd.case_id.as_ref(), &cmd.events));
        if let Some(done) = self.replay_request(&cmd.request_id, &fingerprint).await? {
            return Ok(done);
        }
        if let Some(source) = &cmd.source
            && let Some(record) = self.store.find_source(source).await?
        {
            return self.committed_from(&record).await;
        }
        let case_id = match cmd.case_id {
            Some(id) => id,
            None => CaseId::parse("case_id", &time_ordered_id(cmd.now)).map_err(LedgerError::Invalid)?,
        };
        let recorded: Vec<RecordedEvent> = cmd
            .events
            .into_iter()
            .enumerate()
            .map(|(i, event)| RecordedEvent {
                sequence: i as u64 + 1,
                record_time: cmd.now,
                request_id: cmd.request_id.clone(),
                event,
            })
            .collect();
        let case = Case::replay(case_id.clone(), &recorded)
            .map_err(|(i, v)| LedgerError::Invalid(v.within(&format!("events[{i}]"))))?;
        let _guard = self.lock(&case_id).await;
        let extras = WriteExtras { source: cmd.source, audit: cmd.audit, ..WriteExtras::default() };
        let outcome = self.write(None, &case, 0, &recorded, &cmd.request_id, fingerprint.clone(), extras).await;
        match outcome {
            Err(LedgerError::Store(StoreError::Conflict { .. })) => Err(LedgerError::AlreadyExists(case_id)),
            other => other,
        }
    }

    /// Appends events atomically, after checking them against the case.
    pub async fn append(&self, cmd: AppendEvents) -> Result<Committed, LedgerError> {
        if cmd.events.is_empty() {
            return Err(LedgerError::Invalid(Violations::one("events", "at least one event is required")));
        }
        if cmd.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(LedgerError::Invalid(Violations::one(
                "events",
                format!("{} events in one request; at most {MAX_EVENTS_PER_APPEND} are allowed", cmd.events.len()),
            )));
        }
        for (i, e) in cmd.events.iter().enumerate() {
            if matches!(e.kind, EventKind::CaseOpened { .. }) {
                return Err(LedgerError::Invalid(Violations::one(
                    format!("events[{i}].case_opened"),
                    "case_opened is recorded by CreateCase only",
                )));
            }
        }
        let fingerprint =
            cmd.fingerprint.clone().unwrap_or_else(|| fingerprint("append", Some(&cmd.case_id), &cmd.events));
        let _guard = self.lock(&cmd.case_id).await;
        for _ in 0..MAX_ATTEMPTS {
            if let Some(done) = self.replay_request(&cmd.request_id, &fingerprint).await? {
                return Ok(done);
            }
            if let Some(source) = &cmd.source
                && let Some(record) = self.store.find_source(source).await?
            {
                return self.committed_from(&record).await;
            }
            let case = self.state(&cmd.case_id).await?;
            if let Some(expected) = cmd.expected_version
                && expected != case.version
            {
                return Err(LedgerError::EtagMismatch { case_id: cmd.case_id, expected, actual: case.version });
            }
            let recorded = number(&case, &cmd);
            let validating = std::time::Instant::now();
            let next = self.validate(&case, &recorded).await;
            if let Some(observer) = &self.observer {
                observer.stage_finished(Stage::Validation, validating.elapsed());
            }
            let next = next?;
            let written = self
                .write(
                    Some(&case),
                    &next,
                    case.version,
                    &recorded,
                    &cmd.request_id,
                    fingerprint.clone(),
                    WriteExtras {
                        source: cmd.source.clone(),
                        resolves_inbox: cmd.resolves_inbox.clone(),
                        audit: cmd.audit.clone(),
                    },
                )
                .await;
            match written {
                Err(LedgerError::Store(StoreError::Conflict { actual, .. })) => {
                    // Another writer (another process) got there first.
                    self.forget(&cmd.case_id);
                    if let Some(expected) = cmd.expected_version {
                        return Err(LedgerError::EtagMismatch { case_id: cmd.case_id, expected, actual });
                    }
                }
                other => return other,
            }
        }
        Err(LedgerError::Store(StoreError::Backend(format!(
            "gave up after {MAX_ATTEMPTS} concurrent-write conflicts on case {}",
            cmd.case_id
        ))))
    }

    /// The case as stored.
    pub async fn get(&self, case_id: &CaseId) -> Result<pb::Case, LedgerError> {
        let stored = self.store.get_case(case_id).await?.ok_or_else(|| LedgerError::NotFound(case_id.clone()))?;
        decode_case(&stored)
    }

    /// Cases in creation order, and the ordinal to continue after (if more may follow).
    pub async fn list(&self, query: &CaseQuery) -> Result<(Vec<pb::Case>, Option<u64>), LedgerError> {
        let rows = self.store.list_cases(query).await?;
        let next = (rows.len() == query.limit).then(|| rows.last().map(|r| r.ordinal)).flatten();
        let cases = rows.iter().map(decode_case).collect::<Result<_, _>>()?;
        Ok((cases, next))
    }

    /// Events with sequence > `after`, at most `limit`; `NotFound` if no case.
    pub async fn events(&self, case_id: &CaseId, after: u64, limit: usize) -> Result<Vec<pb::CaseEvent>, LedgerError> {
        let rows = self.store.read_events(case_id, after, limit).await?;
        if rows.is_empty() && self.store.case_version(case_id).await?.is_none() {
            return Err(LedgerError::NotFound(case_id.clone()));
        }
        rows.iter().map(decode_event).collect()
    }

    /// The current domain state of a case (cached; checked against the
    /// stored version, read without the projection).
    pub async fn state(&self, case_id: &CaseId) -> Result<Arc<Case>, LedgerError> {
        let version = self.store.case_version(case_id).await?.ok_or_else(|| LedgerError::NotFound(case_id.clone()))?;
        self.state_at(case_id, version).await
    }

    /// The domain state and the stored projection of a case, from one read
    /// of its row: both at the same version.
    pub async fn state_and_projection(&self, case_id: &CaseId) -> Result<(Arc<Case>, pb::Case), LedgerError> {
        let stored = self.store.get_case(case_id).await?.ok_or_else(|| LedgerError::NotFound(case_id.clone()))?;
        let projection = decode_case(&stored)?;
        Ok((self.state_at(case_id, stored.version).await?, projection))
    }

    /// The state at `version` (the stored one): from the cache, or replayed
    /// from the events up to it.
    async fn state_at(&self, case_id: &CaseId, version: u64) -> Result<Arc<Case>, LedgerError> {
        let cached = self.states.lock().expect("state cache lock").get(case_id).cloned();
        if let Some(case) = cached.filter(|c| c.version == version) {
            return Ok(case);
        }
        let case = match self.state_from_snapshot(case_id, version).await? {
            Some(case) => case,
            None => {
                let mut history = self.history(case_id).await?;
                // Events appended since the row was read belong to a later version.
                history.truncate(version as usize);
                Case::replay(case_id.clone(), &history).map_err(|(i, v)| {
                    StoreError::Corrupt(format!(
                        "stored history of case {case_id} no longer replays at event {}: {v}",
                        i + 1
                    ))
                })?
            }
        };
        let case = Arc::new(case);
        self.remember(case.clone());
        Ok(case)
    }

    /// The state at `version` from the case's latest snapshot and the events
    /// after it; `None` when there is no usable snapshot or an event after
    /// it is backdated before what it holds (then only a replay in legal
    /// order gives the state).
    async fn state_from_snapshot(&self, case_id: &CaseId, version: u64) -> Result<Option<Case>, LedgerError> {
        let Some(stored) = self.store.get_snapshot(case_id).await? else { return Ok(None) };
        let Some(mut case) = snapshot::decode(&stored).filter(|c| c.version <= version) else {
            return Ok(None);
        };
        let mut after = case.version;
        while after < version {
            let limit = ((version - after) as usize).min(1000);
            let rows = self.store.read_events(case_id, after, limit).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let event = convert::recorded_event_from_pb(&decode_event(row)?)
                    .map_err(|v| StoreError::Corrupt(format!("event {} of case {case_id}: {v}", row.sequence)))?;
                if event.event.occurred_on < case.last_occurred_on || case.apply(&event).is_err() {
                    return Ok(None);
                }
                after = event.sequence;
            }
        }
        Ok((case.version == version).then_some(case))
    }

    /// The full recorded history of a case, decoded.
    pub async fn history(&self, case_id: &CaseId) -> Result<Vec<RecordedEvent>, LedgerError> {
        let mut out = Vec::new();
        loop {
            let rows = self.store.read_events(case_id, out.len() as u64, 1000).await?;
            if rows.is_empty() {
                return Ok(out);
            }
            for row in &rows {
                let pb = decode_event(row)?;
                let event = convert::recorded_event_from_pb(&pb)
                    .map_err(|v| StoreError::Corrupt(format!("event {} of case {case_id}: {v}", row.sequence)))?;
                out.push(event);
            }
        }
    }

    async fn lock(&self, case_id: &CaseId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        case_id.hash(&mut h);
        let shard = (h.finish() % self.case_locks.len() as u64) as usize;
        self.case_locks[shard].lock().await
    }

    async fn replay_request(&self, request_id: &str, fingerprint: &[u8]) -> Result<Option<Committed>, LedgerError> {
        let Some(record) = self.store.find_request(request_id).await? else {
            return Ok(None);
        };
        if !self.store.fingerprint_matches(&record, fingerprint) {
            return Err(LedgerError::RequestIdReused { request_id: request_id.to_owned() });
        }
        self.committed_from(&record).await.map(Some)
    }

    /// The stored result of a request id, if it wrote anything.
    pub async fn find_committed(&self, request_id: &str) -> Result<Option<Committed>, LedgerError> {
        match self.store.find_request(request_id).await? {
            Some(record) => self.committed_from(&record).await.map(Some),
            None => Ok(None),
        }
    }

    /// The stored result of a request id written with `fingerprint`;
    /// `RequestIdReused` if it was written with another.
    pub async fn replay(&self, request_id: &str, fingerprint: &[u8]) -> Result<Option<Committed>, LedgerError> {
        self.replay_request(request_id, fingerprint).await
    }

    /// The stored result of an earlier write.
    async fn committed_from(&self, record: &RequestRecord) -> Result<Committed, LedgerError> {
        let count = (record.last_sequence + 1 - record.first_sequence) as usize;
        let events = self.events(&record.case_id, record.first_sequence - 1, count).await?;
        let case = self.get(&record.case_id).await?;
        Ok(Committed { case, events, replayed: true })
    }

    /// Checks new events against the case; incremental when they come after
    /// everything recorded, a full replay when some are backdated.
    async fn validate(&self, case: &Arc<Case>, recorded: &[RecordedEvent]) -> Result<Case, LedgerError> {
        let in_order = recorded.iter().all(|e| e.event.occurred_on >= case.last_occurred_on)
            && recorded.windows(2).all(|w| w[0].event.occurred_on <= w[1].event.occurred_on);
        if in_order {
            let mut next = Case::clone(case);
            for (i, e) in recorded.iter().enumerate() {
                next.apply(e).map_err(|v| LedgerError::Invalid(v.within(&format!("events[{i}]"))))?;
            }
            return Ok(next);
        }
        let mut all = self.history(&case.id).await?;
        let existing = all.len();
        all.extend(recorded.iter().cloned());
        Case::replay(case.id.clone(), &all).map_err(|(i, v)| {
            if i >= existing {
                LedgerError::Invalid(v.within(&format!("events[{}]", i - existing)))
            } else {
                LedgerError::Invalid(Violations::one(
                    "events",
                    format!("the backdated events make the recorded event {} invalid: {v}", all[i].sequence),
                ))
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        before: Option<&Case>,
        case: &Case,
        expected_version: u64,
        recorded: &[RecordedEvent],
        request_id: &str,
        fingerprint: Vec<u8>,
        WriteExtras { source, resolves_inbox, audit }: WriteExtras,
    ) -> Result<Committed, LedgerError> {
        let events: Vec<pb::CaseEvent> = recorded.iter().map(convert::recorded_event_to_pb).collect();
        let now = recorded.last().map_or(case.update_time, |r| r.record_time);
        let deliveries =
            self.planner.as_ref().map(|p| p.plan(before, case, recorded, &events, now)).unwrap_or_default();
        let projection = convert::case_to_pb(case);
        let snapshot = snapshot::due(expected_version, case.version).then(|| snapshot::encode(case));
        let batch = AppendBatch {
            case_id: case.id.clone(),
            expected_version,
            events: recorded
                .iter()
                .zip(&events)
                .map(|(r, pb)| StoredEvent {
                    sequence: r.sequence,
                    occurred_on: r.event.occurred_on,
                    record_time: r.record_time,
                    request_id: r.request_id.clone(),
                    payload: pb.encode_to_vec(),
                })
                .collect(),
            projection: StoredCase {
                case_id: case.id.clone(),
                ordinal: 0,
                version: case.version,
                municipality_cvr: case.placing_municipality.cvr.clone(),
                create_time: case.create_time,
                update_time: case.update_time,
                projection: projection.encode_to_vec(),
            },
            request: RequestRecord {
                request_id: request_id.to_owned(),
                case_id: case.id.clone(),
                fingerprint: fingerprint.clone(),
                first_sequence: expected_version + 1,
                last_sequence: case.version,
            },
            source,
            deliveries,
            resolves_inbox,
            person_keys: Vec::new(),
            snapshot,
            audit,
        };
        let started = std::time::Instant::now();
        let outcome = self.store.append(batch).await;
        if let Some(observer) = &self.observer {
            let appended = if matches!(outcome, Ok(AppendOutcome::Appended)) { recorded.len() } else { 0 };
            observer.append_finished(started.elapsed(), appended);
        }
        match outcome? {
            AppendOutcome::Appended => {
                self.remember(Arc::new(case.clone()));
                let change = CaseChange {
                    case_id: case.id.clone(),
                    version: case.version,
                    events: events.clone(),
                    remote: false,
                };
                // No receivers is fine: nobody is watching.
                let _ = self.changes.send(Arc::new(change));
                Ok(Committed { case: projection, events, replayed: false })
            }
            // Stored by this request id earlier, or the same source message under another.
            AppendOutcome::AlreadyApplied(record) if record.request_id != request_id => {
                self.committed_from(&record).await
            }
            AppendOutcome::AlreadyApplied(_) => self
                .replay_request(request_id, &fingerprint)
                .await?
                .ok_or_else(|| StoreError::Backend("request record vanished".into()).into()),
        }
    }

    fn remember(&self, case: Arc<Case>) {
        let mut states = self.states.lock().expect("state cache lock");
        if states.len() >= CACHE_CAPACITY && !states.contains_key(&case.id) {
            // Evict an arbitrary entry; a miss only costs a replay.
            if let Some(k) = states.keys().next().cloned() {
                states.remove(&k);
            }
        }
        states.insert(case.id.clone(), case);
    }

    fn forget(&self, case_id: &CaseId) {
        self.states.lock().expect("state cache lock").remove(case_id);
    }
}

/// Numbers the new events after the case's version and fills in generated ids.
fn number(case: &Case, cmd: &AppendEvents) -> Vec<RecordedEvent> {
    cmd.events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let sequence = case.version + 1 + i as u64;
            let mut event = e.clone();
            match &mut event.kind {
                EventKind::PlanPrepared { plan_id, .. } if plan_id.is_empty() => *plan_id = format!("plan-{sequence}"),
                EventKind::SectorContactAdded { contact_id, .. } if contact_id.is_empty() => {
                    *contact_id = format!("contact-{sequence}");
                }
                _ => {}
            }
            RecordedEvent { sequence, record_time: cmd.now, request_id: cmd.request_id.clone(), event }
        })
        .collect()
}

fn fingerprint(op: &str, case_id: Option<&CaseId>, events: &[Event]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(op.as_bytes());
    h.update([0]);
    h.update(case_id.map(CaseId::as_str).unwrap_or("").as_bytes());
    h.update([0]);
    for e in events {
        let bytes = convert::event_to_pb(e).encode_to_vec();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    h.finalize().to_vec()
}

fn decode_case(stored: &StoredCase) -> Result<pb::Case, LedgerError> {
    pb::Case::decode(stored.projection.as_slice())
        .map_err(|e| StoreError::Corrupt(format!("projection of case {}: {e}", stored.case_id)).into())
}

fn decode_event(stored: &StoredEvent) -> Result<pb::CaseEvent, LedgerError> {
    pb::CaseEvent::decode(stored.payload.as_slice())
        .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", stored.sequence)).into())
}
