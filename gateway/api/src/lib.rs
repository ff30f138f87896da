//! The generated gRPC API of bro (`bro.v1`), and conversions between its
//! messages and the pure types of `bro-domain`.
//!
//! Invariant: every message that crosses the wire is defined in `proto/`;
//! this crate holds no schema of its own.

pub mod convert;
mod masked_debug;

/// The `bro.v1` package: messages and the tonic client and server code.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("bro.v1");
}

/// The encoded `FileDescriptorSet` of `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bro_descriptor.bin"));
