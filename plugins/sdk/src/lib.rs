//! The bro adapter SDK: write an adapter for bro as one trait implementation
//! and one macro call.
//!
//! ```ignore
//! use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, proto};
//!
//! struct MyAdapter;
//!
//! impl Adapter for MyAdapter {
//!     fn describe() -> AdapterInfo { /* name, version, what it reads and writes */ }
//!     fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> { /* parse */ }
//!     fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> { /* render */ }
//! }
//!
//! bro_adapter_sdk::export_adapter!(MyAdapter);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`. The canonical
//! types in [`proto`] are generated from bro's `proto/bro/v1/`, the same
//! source the gateway uses; the protobuf encoding on the way in and out is
//! done here. An adapter gets no filesystem, network, clock or randomness:
//! only [`log`].
//!
//! Beside the trait, what bro's reference adapters share, for any adapter:
//!
//! - [`time`]: the calendar, Danish local time (Europe/Copenhagen) and ISO
//!   8601 dates and date-times, without a clock or a time-zone database;
//! - [`ids`]: ids other systems assign, checked, and name-based UUIDs;
//! - [`cpr`]: CPR numbers as bro keeps them (ten digits);
//! - [`echo`]: input echoed in an error without personal data;
//! - [`json`]: a JSON message read field by field, refusals by JSON pointer,
//!   after a scan that applies the caps (size, depth, values) before any
//!   tree is built;
//! - `xml` (cargo feature `xml`): XML decoded, streamed into a tree under
//!   caps (no DTD), written and escaped, on `quick-xml`;
//! - [`subjects`]: the person a batch's reference (`subjects/N`, a party id) names;
//! - [`holistic`]: the checks, caps and words of a holistic plan's view;
//! - `testing` (cargo feature `testing`, for `[dev-dependencies]`): the
//!   golden fixtures run natively, as `bro adapter test` runs them.

/// The generated guest bindings of `bro:adapter@0.1.0`.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// bro's canonical model (`bro.v1`), generated from `proto/bro/v1/`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/bro.v1.rs"));
}

pub mod cpr;
pub mod echo;
pub mod holistic;
pub mod ids;
pub mod json;
pub mod subjects;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
#[cfg(feature = "xml")]
pub mod xml;

pub use bindings::bro::adapter::log::Level;
pub use bindings::bro::adapter::types::{
    AdapterError, AdapterInfo, FieldViolation, MalformedInput, Message, MessageType, SystemKind,
};
pub use prost;

/// Writes a log line; the host tags it with the adapter's name and caps the
/// bytes per call.
///
/// Outside WebAssembly (an adapter's native unit tests and benchmarks) there
/// is no host, and the line is dropped.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::bro::adapter::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// A bro adapter. Implement it on a unit struct and pass the struct to
/// [`export_adapter!`].
pub trait Adapter {
    /// Name, version, system kind, and the message types read and written.
    fn describe() -> AdapterInfo;

    /// An external message to canonical events.
    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError>;

    /// Canonical events to a message for the system `target`.
    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError>;
}

/// A malformed-input error at `location`.
pub fn malformed(location: impl Into<String>, description: impl Into<String>) -> AdapterError {
    AdapterError::Malformed(MalformedInput { location: location.into(), description: description.into() })
}

/// An invalid-content error with one field violation.
pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> AdapterError {
    AdapterError::Invalid(vec![FieldViolation { field: field.into(), description: description.into() }])
}

/// The value of the transport metadata `key` (e.g. `message-id`), if set and not empty.
pub fn metadata<'a>(metadata: &'a [(String, String)], key: &str) -> Option<&'a str> {
    metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// The glue [`export_adapter!`] expands to; not for direct use.
#[doc(hidden)]
pub mod __private {
    use prost::Message as _;

    use crate::{Adapter, AdapterError, Message, proto};

    /// Encodes the adapter's batch.
    pub fn to_canonical<A: Adapter>(message: Message) -> Result<Vec<u8>, AdapterError> {
        A::to_canonical(message).map(|batch| batch.encode_to_vec())
    }

    /// Decodes the host's batch, then calls the adapter.
    pub fn from_canonical<A: Adapter>(batch: Vec<u8>, target: String) -> Result<Message, AdapterError> {
        let batch = proto::AdapterBatch::decode(batch.as_slice())
            .map_err(|e| crate::malformed("batch", format!("not a bro.v1.AdapterBatch: {e}")))?;
        A::from_canonical(batch, &target)
    }
}

/// Exports a type implementing [`Adapter`] as the component's `adapter` world.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        struct __BroAdapterExport;

        impl $crate::bindings::Guest for __BroAdapterExport {
            fn describe() -> $crate::AdapterInfo {
                <$adapter as $crate::Adapter>::describe()
            }

            fn to_canonical(message: $crate::Message) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::AdapterError> {
                $crate::__private::to_canonical::<$adapter>(message)
            }

            fn from_canonical(
                batch: ::std::vec::Vec<u8>,
                target: ::std::string::String,
            ) -> ::core::result::Result<$crate::Message, $crate::AdapterError> {
                $crate::__private::from_canonical::<$adapter>(batch, target)
            }
        }

        $crate::bindings::__export_adapter_world!(__BroAdapterExport with_types_in $crate::bindings);
    };
}
