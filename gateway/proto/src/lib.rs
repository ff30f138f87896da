//! The canonical model of bro (`bro.v1`) as prost messages, and the
//! conversions between those messages and the pure types of `bro-domain`.
//!
//! Invariant: every message is generated from `proto/`; this crate holds no
//! schema of its own and no RPC code (the store depends on it, and must not
//! reach tonic: `cargo xtask deps` checks it).

pub mod convert;
mod masked_debug;

/// The `bro.v1` messages.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/bro.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bro_descriptor.bin"));
