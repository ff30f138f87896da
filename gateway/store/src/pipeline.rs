//! The rows of the ingest → deliver pipeline: the source-message key that
//! makes ingest idempotent, the outbox of deliveries, and the inbox of
//! unmatched and rejected messages.

use bro_domain::{CaseId, Timestamp};

/// A message's identity at its source: ingesting it twice stores it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceKey {
    /// The configured system it came from.
    pub system: String,
    /// The message's own id (from the adapter).
    pub message_id: String,
}

/// Where a delivery is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for (another) attempt.
    Pending,
    /// Translated and waiting for the receiving system to pull it.
    AwaitingPull,
    /// Handed over and acknowledged.
    Delivered,
    /// Given up after the configured attempts, or refused by the adapter.
    Dead,
}

impl DeliveryState {
    /// The state's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::AwaitingPull => "awaiting_pull",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        [DeliveryState::Pending, DeliveryState::AwaitingPull, DeliveryState::Delivered, DeliveryState::Dead]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// A delivery to enqueue (in the same transaction as the events it carries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// Unique id; also the idempotency key the receiver sees.
    pub delivery_id: String,
    /// The receiving system.
    pub system: String,
    /// The case.
    pub case_id: CaseId,
    /// First event sequence carried.
    pub first_sequence: u64,
    /// Last event sequence carried.
    pub last_sequence: u64,
    /// Protobuf bytes of the `bro.v1.AdapterBatch` to translate.
    pub payload: Vec<u8>,
    /// When enqueued.
    pub create_time: Timestamp,
    /// The delivery this one replays, if any.
    pub replay_of: String,
}

/// A stored delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Enqueue order.
    pub ordinal: u64,
    /// What was enqueued.
    pub new: NewDelivery,
    /// Its state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_time: Timestamp,
    /// The last failure, if any.
    pub last_error: String,
    /// When it last changed.
    pub update_time: Timestamp,
    /// The translated message, once translated: content type and bytes.
    pub rendered: Option<(String, Vec<u8>)>,
}

/// A state change of one delivery, applied only if it is still in `from`.
#[derive(Clone, Debug)]
pub struct DeliveryUpdate {
    /// Which.
    pub delivery_id: String,
    /// Its system and case, as enqueued: the update applies only if they
    /// match the row (and a sealed store binds the rendered body to them
    /// without reading the row back).
    pub system: String,
    /// Its case.
    pub case_id: CaseId,
    /// The state it must be in.
    pub from: DeliveryState,
    /// The state it moves to.
    pub to: DeliveryState,
    /// Attempts after this change.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_time: Timestamp,
    /// Failure text (empty: none).
    pub last_error: String,
    /// The translated message, if this change translated it.
    pub rendered: Option<(String, Vec<u8>)>,
    /// When.
    pub update_time: Timestamp,
    /// The lease the change is made under, if a delivery worker makes it:
    /// then it applies only while that lease (holder and epoch) is still
    /// the queue's latest, and it ends the lease. `None`: an operator's or
    /// a pulling system's change, which needs no lease.
    pub lease: Option<LeaseToken>,
}

/// A delivery worker's hold on one (system, case) queue: while it holds
/// the latest lease of a queue, no other worker attempts the queue's
/// deliveries. Each claim of a queue raises its epoch, so a worker whose
/// lease expired and was claimed again cannot record a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryLease {
    /// The receiving system.
    pub system: String,
    /// The case.
    pub case_id: CaseId,
    /// Which lease.
    pub token: LeaseToken,
    /// When it lapses unless renewed.
    pub expire_time: Timestamp,
}

/// Who holds a lease, and which claim of the queue it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    /// The worker (unique per process run).
    pub holder: String,
    /// Raised by every claim of the queue.
    pub epoch: u64,
}

/// A claimed queue head: the delivery to attempt and the lease it is attempted under.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    /// The head of its (system, case) queue, as stored when claimed.
    pub delivery: Delivery,
    /// The lease on its queue.
    pub lease: DeliveryLease,
}

/// Something another process committed to the same store, told to this
/// one so it can wake what waits for it (see [`crate::EventStore::changes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// Events were appended to a case; it is now at `version`.
    Case {
        /// The case.
        case_id: CaseId,
        /// Its version after the append.
        version: u64,
    },
    /// Deliveries were enqueued, became due again or ready to be pulled.
    Deliveries,
    /// Changes may have been missed (the feed reconnected, or a periodic
    /// check): whatever follows the store re-reads what it watches.
    Resync,
}

/// Which deliveries to list, in enqueue order.
#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    /// Only to this system.
    pub system: Option<String>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only of this case.
    pub case_id: Option<CaseId>,
    /// Only after this ordinal (paging).
    pub after_ordinal: u64,
    /// At most this many.
    pub limit: usize,
}

/// Why a message sits in the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboxKind {
    /// Translated, but no case has a custody holder it names.
    Unmatched,
    /// The adapter refused it, or its events broke the case's rules.
    Rejected,
}

impl InboxKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxKind::Unmatched => "unmatched",
            InboxKind::Rejected => "rejected",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<InboxKind> {
        [InboxKind::Unmatched, InboxKind::Rejected].into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether an inbox entry still needs somebody.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboxState {
    /// Waiting.
    Open,
    /// Appended to a case by a caseworker.
    Resolved,
    /// Set aside by a caseworker.
    Discarded,
}

impl InboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Open => "open",
            InboxState::Resolved => "resolved",
            InboxState::Discarded => "discarded",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<InboxState> {
        [InboxState::Open, InboxState::Resolved, InboxState::Discarded].into_iter().find(|k| k.as_str() == s)
    }
}

/// A message that could not go straight into a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// Arrival order, assigned by the backend (ignored on write).
    pub ordinal: u64,
    /// Unique id.
    pub entry_id: String,
    /// Unmatched or rejected.
    pub kind: InboxKind,
    /// The system it came from.
    pub system: String,
    /// The ingest request's idempotency key.
    pub request_id: String,
    /// The source message id, when the adapter gave one.
    pub source_message_id: String,
    /// The message's content type.
    pub content_type: String,
    /// The message as received.
    pub body: Vec<u8>,
    /// For an unmatched message, the `bro.v1.AdapterBatch` bytes.
    pub batch: Vec<u8>,
    /// Why it is here (no personal data).
    pub reason: String,
    /// Open, resolved or discarded.
    pub state: InboxState,
    /// The case it was resolved into.
    pub resolved_case: Option<CaseId>,
    /// When received.
    pub create_time: Timestamp,
    /// When it last changed.
    pub update_time: Timestamp,
}

/// What storing an inbox entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboxPut {
    /// Stored.
    Inserted,
    /// Its request id, or its source message, was already stored: that entry.
    Existing(Box<InboxEntry>),
}

/// Which inbox entries to list, in arrival order.
#[derive(Clone, Debug)]
pub struct InboxQuery {
    /// Unmatched or rejected.
    pub kind: InboxKind,
    /// Only in this state.
    pub state: Option<InboxState>,
    /// Only from this system.
    pub system: Option<String>,
    /// Only after this entry's position (paging).
    pub after_ordinal: u64,
    /// At most this many.
    pub limit: usize,
}
