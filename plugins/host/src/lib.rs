//! bro's WebAssembly adapter host.
//!
//! Vendors' adapters are wasmtime components of the world `bro:adapter/adapter`
//! (`plugins/wit/adapter.wit`). This crate loads them and runs them with
//! everything a hostile or broken adapter could abuse taken away or bounded,
//! and keeps one party's trouble its own:
//!
//! - one [`AdapterEngine`]: one wasmtime `Engine` with fuel metering, epoch
//!   interruption driven by a ticker thread, and the pooling allocator with
//!   copy-on-write memory images, whose slots stay resident and are reset
//!   page by page (what a call dirtied) between calls;
//! - an `InstancePre` per adapter, built at load, after the component's
//!   imports are checked against an allow-list ([`ALLOWED_IMPORTS`]): the
//!   only capability is `log`; the inert standard-library interfaces of
//!   `wasm32-wasip2` (an empty environment, no arguments, an empty stdin,
//!   stdout/stderr captured into the capped log) are satisfied with nothing in
//!   them. Filesystem, sockets, clocks and randomness are refused at load,
//!   naming the import;
//! - admission: each adapter's own call slots, then the engine's shared
//!   ones, below the pool's capacity; a call that finds no slot within its
//!   queue timeout is answered [`HostError::Busy`] with a retry delay;
//! - a fresh `Store` per call under [`AdapterLimits`]: fuel as the CPU limit
//!   (the same message, the same verdict, however loaded the machine), a
//!   wall-clock backstop well above it, a memory cap, input/output caps and
//!   a log cap; failures come back as [`HostError`]s naming the adapter and
//!   the limit, each blamed ([`Blame`]) on the message, the adapter or the
//!   moment;
//! - health: the message's failures throttle only its party; the adapter is
//!   quarantined, with exponential backoff, only for failures of its own
//!   (crashes that its known-good checks repeat, or crashes across parties);
//!   per-adapter figures in [`AdapterStats`];
//! - masking: what an adapter logs or traps with has CPR-like
//!   digit runs and the input's names masked before anyone sees it;
//! - packages ([`package`]): a component, an `adapter.toml` manifest (with an
//!   optional known-good probe message) and an ed25519 signature by a vendor
//!   key trusted for that adapter's name;
//! - a compiled-code cache ([`cache`]) that deserializes only artifacts this
//!   host compiled and authenticated itself;
//! - an [`AdapterRegistry`] that swaps in a new version atomically while calls
//!   in flight finish on the old one, and refuses a silent rollback.
//!
//! Invariant: this is the only crate that runs `bindgen!` for the host side.

mod adapter;
mod admission;
mod bindings;
pub mod cache;
mod call;
mod engine;
mod error;
mod health;
mod limits;
mod mask;
pub mod package;
mod registry;
mod state;

pub use adapter::{LoadedAdapter, Translation};
pub use bindings::exports::{
    AdapterError, AdapterInfo, FieldViolation, MalformedInput, Message, MessageType, SystemKind,
};
pub use engine::{ALLOWED_IMPORTS, AdapterEngine};
pub use error::{Blame, BusyScope, HostError};
pub use health::{AdapterState, AdapterStats, ThrottledParty};
pub use limits::{AdapterLimits, EngineOptions};
pub use registry::AdapterRegistry;
pub use state::{CallReport, LogLine};

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
