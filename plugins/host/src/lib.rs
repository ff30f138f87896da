//! bro's WebAssembly adapter host.
//!
//! Vendors' adapters are wasmtime components of the world `bro:adapter/adapter`
//! (`plugins/wit/adapter.wit`). This crate loads them and runs them with
//! everything a hostile or broken adapter could abuse taken away or bounded:
//!
//! - one [`AdapterEngine`] (one wasmtime `Engine`, the pooling allocator,
//!   epoch interruption driven by a ticker thread, optional fuel);
//! - an `InstancePre` per adapter, built at load, after the component's
//!   imports are checked against an allow-list ([`ALLOWED_IMPORTS`]): the
//!   only capability is `log`; the inert standard-library interfaces of
//!   `wasm32-wasip2` (an empty environment, no arguments, an empty stdin,
//!   stdout/stderr captured into the capped log) are satisfied with nothing in
//!   them. Filesystem, sockets, clocks and randomness are refused at load,
//!   naming the import;
//! - a fresh `Store` per call with a deadline, a memory cap, input/output
//!   caps and a log cap ([`AdapterLimits`]); traps, timeouts and breaches come
//!   back as [`HostError`]s naming the adapter and the limit;
//! - quarantine with exponential backoff after consecutive failures, and
//!   per-adapter metrics ([`AdapterStats`]);
//! - packages ([`package`]): a component, an `adapter.toml` manifest and an
//!   ed25519 signature checked against trusted vendor keys;
//! - a compiled-code cache ([`cache`]) that deserializes only artifacts this
//!   host compiled and authenticated itself;
//! - a [`AdapterRegistry`] that swaps in a new version atomically while calls
//!   in flight finish on the old one.
//!
//! Invariant: this is the only crate that runs `bindgen!` for the host side.

mod adapter;
mod bindings;
pub mod cache;
mod engine;
pub mod package;
mod registry;

pub use adapter::{AdapterStats, CallReport, LoadedAdapter, Translation};
pub use bindings::exports::{
    AdapterError, AdapterInfo, FieldViolation, MalformedInput, Message, MessageType, SystemKind,
};
pub use engine::{ALLOWED_IMPORTS, AdapterEngine, AdapterLimits, EngineOptions, HostError, LogLine};
pub use registry::AdapterRegistry;

/// An adapter's refusal in one line: `malformed input at …`, `unsupported
/// message type: …`, `invalid content: field: why; …`, `internal adapter error: …`.
pub fn describe_error(e: &AdapterError) -> String {
    match e {
        AdapterError::Malformed(m) => format!("malformed input at {}: {}", m.location, m.description),
        AdapterError::Unsupported(t) => format!("unsupported message type: {t}"),
        AdapterError::Invalid(v) => {
            let list: Vec<String> = v.iter().map(|f| format!("{}: {}", f.field, f.description)).collect();
            format!("invalid content: {}", list.join("; "))
        }
        AdapterError::Internal(m) => format!("internal adapter error: {m}"),
    }
}

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.0";

/// The WIT source, for tools that vendor it into adapter projects.
pub const WIT_SOURCE: &str = include_str!("../../wit/adapter.wit");
