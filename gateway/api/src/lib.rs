//! bro's gRPC API (`bro.v1`): the tonic clients and servers generated from
//! `proto/`, over the messages of `bro-proto` (re-exported here, so callers
//! name one `v1`), and the wire form of what the rules engine computes on
//! read — obligations ([`evaluation`]), holistic plans ([`plan`]) and a
//! sector's view of a case ([`views`]).
//!
//! Invariant: no hand-written schema; generated code is never committed, so
//! it cannot drift from `proto/`.

pub mod evaluation;
pub mod plan;
pub mod views;

pub use bro_proto::{FILE_DESCRIPTOR_SET, convert};

/// The `bro.v1` package: the messages (from `bro-proto`) and the tonic
/// client and server code.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod v1 {
    pub use bro_proto::v1::*;
    include!(concat!(env!("OUT_DIR"), "/bro.v1.rs"));
}
