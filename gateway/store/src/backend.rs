//! The storage backend trait and the rows it stores.

use async_trait::async_trait;
use bro_domain::{CaseId, Date, Timestamp};

use crate::{
    ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery, DeliveryUpdate, InboxEntry, InboxPut, InboxQuery,
    InboxState, LeaseToken, NewDelivery, SourceKey, StoreChange,
};

/// One stored event: its position, dates, the request that wrote it, and the
/// encoded `bro.v1.CaseEvent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// 1-based, gap-free position in the case.
    pub sequence: u64,
    /// The legal date.
    pub occurred_on: Date,
    /// When recorded.
    pub record_time: Timestamp,
    /// The request that wrote it.
    pub request_id: String,
    /// Protobuf bytes of `bro.v1.CaseEvent`, sequence included.
    pub payload: Vec<u8>,
}

/// The stored projection of a case, with the columns it is looked up by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCase {
    /// The case.
    pub case_id: CaseId,
    /// Creation order, assigned by the backend (ignored on write).
    pub ordinal: u64,
    /// Sequence of the last event.
    pub version: u64,
    /// The placing municipality's CVR number.
    pub municipality_cvr: String,
    /// When the case was created.
    pub create_time: Timestamp,
    /// When it last changed.
    pub update_time: Timestamp,
    /// Protobuf bytes of `bro.v1.Case`.
    pub projection: Vec<u8>,
}

/// What an append's request id stands for: the events it wrote, and a
/// fingerprint of what was asked, so a retry can be told from a reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The idempotency key.
    pub request_id: String,
    /// The case written.
    pub case_id: CaseId,
    /// A hash of the request's content; stored keyed (by [`crate::SealedStore`]).
    pub fingerprint: Vec<u8>,
    /// First sequence written.
    pub first_sequence: u64,
    /// Last sequence written.
    pub last_sequence: u64,
}

/// One atomic append: events, the new projection, and the request record.
#[derive(Clone, Debug)]
pub struct AppendBatch {
    /// The case; created when `expected_version` is 0.
    pub case_id: CaseId,
    /// The version the case must be at: 0 means it must not exist yet.
    pub expected_version: u64,
    /// Events numbered `expected_version + 1 ..`, without gaps.
    pub events: Vec<StoredEvent>,
    /// The projection after the events.
    pub projection: StoredCase,
    /// The idempotency record.
    pub request: RequestRecord,
    /// The source message, for ingested events: a second batch with the same
    /// key is `AlreadyApplied` (with the first batch's record); an open
    /// unmatched inbox entry of the same message is resolved into this case.
    pub source: Option<SourceKey>,
    /// Deliveries of these events to other systems (the transactional outbox).
    pub deliveries: Vec<NewDelivery>,
    /// An open unmatched inbox entry these events resolve.
    pub resolves_inbox: Option<String>,
    /// Keyed hashes of the people in the case after this batch (custody
    /// holders, child): the backend's person index for the case becomes
    /// exactly these. Filled by [`crate::SealedStore`]; never clear identifiers.
    pub person_keys: Vec<Vec<u8>>,
    /// A snapshot of the case's state after the batch, replacing the one
    /// stored (see [`crate::snapshot`]); written with the batch or not at all.
    pub snapshot: Option<crate::StoredSnapshot>,
    /// Audit records committed with the batch, for a backend that keeps the
    /// audit log in its own database (its [`crate::AuditLog`] says so with
    /// [`crate::AuditLog::commits_with_appends`], and chains them); a backend
    /// that cannot refuses a batch that carries any.
    pub audit: Vec<bro_proto::v1::AuditRecord>,
}

/// The result of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written and durable.
    Appended,
    /// The request id was already recorded; nothing was written.
    AlreadyApplied(RequestRecord),
}

/// Which cases to list, in creation order.
#[derive(Clone, Debug, Default)]
pub struct CaseQuery {
    /// Only cases of this municipality.
    pub municipality_cvr: Option<String>,
    /// Only cases whose worklist entry holds such an obligation (the
    /// caller refreshes stale entries first: see [`EventStore::stale_worklist`]).
    pub due: Option<crate::DueStatus>,
    /// Only cases created after this ordinal (for paging).
    pub after_ordinal: u64,
    /// At most this many.
    pub limit: usize,
}

/// How a backend's connection pool is used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// Most connections it opens.
    pub max: usize,
    /// Connections open.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// A backend failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The case is not at the expected version.
    #[error("case {case_id} is at version {actual}, not the expected {expected}")]
    Conflict {
        /// The case.
        case_id: CaseId,
        /// What the append expected.
        expected: u64,
        /// What the store holds (0: no such case).
        actual: u64,
    },
    /// The batch itself is malformed (sequences not contiguous, no events).
    #[error("malformed append batch: {0}")]
    InvalidBatch(String),
    /// Stored data could not be read back.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

impl AppendBatch {
    /// Checks the batch's own shape; backends call this before writing.
    pub fn check_shape(&self) -> Result<(), StoreError> {
        if self.events.is_empty() {
            return Err(StoreError::InvalidBatch("no events".into()));
        }
        for (i, e) in self.events.iter().enumerate() {
            let want = self.expected_version + 1 + i as u64;
            if e.sequence != want {
                return Err(StoreError::InvalidBatch(format!(
                    "event {i} has sequence {}, expected {want}",
                    e.sequence
                )));
            }
        }
        let last = self.expected_version + self.events.len() as u64;
        if self.projection.version != last || self.request.last_sequence != last {
            return Err(StoreError::InvalidBatch(format!(
                "projection/request version does not match last sequence {last}"
            )));
        }
        if self.projection.case_id != self.case_id || self.request.case_id != self.case_id {
            return Err(StoreError::InvalidBatch("case ids differ within the batch".into()));
        }
        Ok(())
    }
}

/// A durable, append-only event store. All methods are safe to call
/// concurrently. `append` is atomic: either all of the batch (events,
/// projection, request record) is durable when it returns `Appended`, or none
/// of it is.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends a batch if the case is at `expected_version` and the request id
    /// is new. A known request id returns `AlreadyApplied` with its record and
    /// writes nothing (checked before the version).
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError>;

    /// The record of a request id, if one was stored.
    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError>;

    /// Whether `record` was written for a request whose fingerprint is
    /// `fingerprint` (a store that keys fingerprints compares keyed forms).
    fn fingerprint_matches(&self, record: &RequestRecord, fingerprint: &[u8]) -> bool {
        record.fingerprint == fingerprint
    }

    /// Events of a case with sequence > `after_sequence`, in order, at most `limit`.
    async fn read_events(
        &self,
        case_id: &CaseId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The version of a case (the sequence of its last event), without
    /// reading its projection; `None` if there is no such case.
    async fn case_version(&self, case_id: &CaseId) -> Result<Option<u64>, StoreError>;

    /// The case's latest snapshot, if one was stored.
    async fn get_snapshot(&self, case_id: &CaseId) -> Result<Option<crate::StoredSnapshot>, StoreError>;

    /// The stored projection of a case.
    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError>;

    /// Cases in creation order.
    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError>;

    /// The cases whose people include the one with this keyed hash, in creation order.
    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError>;

    /// The record of the batch that stored a source message, if one did.
    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError>;

    /// Enqueues one delivery on its own (a replay); ingest enqueues with its append.
    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError>;

    /// Pending deliveries whose next attempt is due at `now`, oldest first —
    /// only the head of each (system, case) queue: a pending delivery with an
    /// earlier one of the same system and case still pending is not due.
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Claims up to `limit` queues for `holder`: the due heads (as
    /// [`EventStore::due_deliveries`]) of (system, case) queues nobody holds
    /// a live lease on, each with a new lease until `expire_time` and an
    /// epoch above every earlier lease of its queue. Workers claiming at
    /// once never get the same queue.
    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        expire_time: Timestamp,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// Extends a lease to `expire_time` if it is still its queue's latest;
    /// false (and nothing written) if another claim replaced it.
    async fn renew_lease(&self, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError>;

    /// Ends a lease if it is still its queue's latest (the queue may be
    /// claimed again at once).
    async fn release_lease(&self, system: &str, case_id: &CaseId, token: &LeaseToken) -> Result<(), StoreError>;

    /// The leases live at `now` (not expired, not released), by queue.
    async fn live_leases(&self, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError>;

    /// Applies a state change if the delivery is still in `update.from`
    /// (and, under a lease, the lease is still its queue's latest; the
    /// change then ends the lease); false (and nothing written) if not.
    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError>;

    /// One delivery.
    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError>;

    /// Deliveries in enqueue order.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;

    /// Stores an inbox entry unless its request id, or (for an unmatched
    /// message) its system and source message id, is already stored.
    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError>;

    /// The inbox entry an ingest request stored, if any.
    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError>;

    /// One inbox entry.
    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError>;

    /// Inbox entries in arrival order.
    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError>;

    /// Moves an open entry to `state` (discarding it); false if it is not open.
    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError>;

    /// Cases of a municipality whose worklist entry is stale on `today`:
    /// never evaluated, changed since (every append makes its case's entry
    /// stale in the append's transaction), past its `valid_until`, evaluated
    /// for a later day than `today`, or reset. At most `limit`, in no order.
    async fn stale_worklist(
        &self,
        municipality_cvr: &str,
        today: Date,
        limit: usize,
    ) -> Result<Vec<CaseId>, StoreError>;

    /// Stores entries, each only if its case is still at the entry's
    /// version (an append since makes it stale again), in one transaction;
    /// the number stored.
    async fn put_worklist(&self, entries: Vec<crate::WorklistEntry>) -> Result<usize, StoreError>;

    /// Makes every entry not evaluated by `revision` stale; the number made stale.
    async fn reset_worklist(&self, revision: &str) -> Result<u64, StoreError>;

    /// A page of a municipality's worklist from the index, in sort-key order.
    async fn due_items(&self, query: &crate::DueQuery) -> Result<Vec<crate::StoredDueItem>, StoreError>;

    /// Flushes and closes; later calls fail with [`StoreError::Closed`].
    async fn close(&self) -> Result<(), StoreError>;

    /// Whether this caller is to run `job` now: true, and the run recorded
    /// as at `now`, if its last run (by any process on the store) is at
    /// least `every` before `now` — so a job that must run once per period
    /// runs on one replica only, whichever asks first.
    async fn claim_job(&self, job: &str, now: Timestamp, every: chrono::Duration) -> Result<bool, StoreError>;

    /// Revokes, as at `at`, every parents' page link of `link_key` (a keyed
    /// hash naming a case, a plan and a parent) made at or before `at`; a
    /// later revocation moves the time on, an earlier one changes nothing.
    async fn revoke_plan_links(&self, link_key: &[u8], at: Timestamp) -> Result<(), StoreError>;

    /// When the links of `link_key` were last revoked, if ever.
    async fn plan_links_revoked_at(&self, link_key: &[u8]) -> Result<Option<Timestamp>, StoreError>;

    /// How the backend's connection pool is used, for one that pools.
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }

    /// Changes committed to the store by other processes (other gateway
    /// replicas on the same database), for a store that several processes
    /// share; `None` for one only this process writes (every change is then
    /// seen where it is made).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        None
    }

    /// Tells `observer` how long appends wait for the writer and how long
    /// their commits take ([`crate::Stage::CommitWait`], [`crate::Stage::Commit`]).
    /// A backend that cannot tell ignores it.
    fn observe_commits(&self, observer: std::sync::Arc<dyn crate::AppendObserver>) {
        let _ = observer;
    }
}
