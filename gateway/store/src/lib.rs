//! bro's event store.
//!
//! - [`EventStore`] is what a storage backend implements: an append-only log
//!   per case with gap-free sequences, conditional appends, idempotency
//!   records and the case projection, all written in one transaction.
//!   Backends live in their own crates (`bro-store-sqlite`, …) and must pass
//!   [`conformance`].
//! - [`CaseLedger`] sits on top of any backend: it checks events against the
//!   case's invariants (`bro-domain`), assigns sequences, encodes the canonical
//!   protobuf, and tells watchers about new events.
//! - Snapshots ([`snapshot`]): a case's state every few hundred events, so
//!   a cold read replays only the events after the latest one.
//! - The worklist index ([`WorklistEntry`]): each case's due obligations as
//!   last evaluated, stored beside the case and made stale by every append.

pub mod audit;
pub mod audit_head;
mod backend;
pub mod conformance;
mod keys;
mod ledger;
mod pipeline;
mod sealed;
pub mod snapshot;
mod worklist;

pub use audit::{AuditHead, AuditLog, StoredAuditRecord};
pub use audit_head::{AuditSigner, AuditVerifier, SignedHead};
pub use backend::*;
pub use keys::{KeyError, Keyring, sync_dir, write_private};
pub use ledger::*;
pub use pipeline::*;
pub use sealed::SealedStore;
pub use snapshot::StoredSnapshot;
pub use worklist::*;
