//! The canonical parent-support case as pure Rust types, and the invariants
//! every change must keep.
//!
//! A case is the fold of its events ([`Case::apply`]). This crate does no IO,
//! knows no clock and no wire format: callers convert from protobuf (in
//! `bro-api`) and pass dates in.

mod case;
mod event;
mod ids;
mod sector;
mod violation;

pub use case::*;
pub use event::*;
pub use ids::*;
pub use sector::*;
pub use violation::{Violation, Violations};

/// A calendar date (no time zone). Re-exported so callers need not name chrono.
pub type Date = chrono::NaiveDate;

/// A point in time, UTC, used only for record-keeping (never for legal dates).
pub type Timestamp = chrono::DateTime<chrono::Utc>;
