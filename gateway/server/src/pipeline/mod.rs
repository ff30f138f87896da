//! The ingest → deliver pipeline, the machinery under `IngestService` and
//! `DeliveryService`:
//!
//! - [`ingest`]: a message through its adapter, screened, matched to a case
//!   and appended — or kept as unmatched, or stored as a rejection;
//! - [`outbox`]: what each system is sent of every write, planned in the
//!   write's own transaction and judged again when it leaves, with
//!   [`distribution`] for the views of § 78 holistic plans;
//! - [`worker`]: due deliveries translated by the receiving system's adapter
//!   and handed over by a [`transport`];
//! - [`subjects`]: people as an adapter names them (`subjects/N`), the one
//!   codec on both ways across the adapter boundary.
//!
//! What may leave for another sector, and what it may record, is decided by
//! the sharing law (`bro_rules::sharing`), never here.

pub mod distribution;
pub mod ingest;
pub mod outbox;
pub mod subjects;
pub mod transport;
pub mod worker;
