//! The host side of `bro:adapter@0.1.0`, generated from `plugins/wit/`.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "adapter",
    });
}

pub use generated::*;

/// The WIT types an adapter exchanges with the host, under short names.
pub mod exports {
    pub use super::bro::adapter::types::{
        AdapterError, AdapterInfo, FieldViolation, MalformedInput, Message, MessageType, SystemKind,
    };
}

pub use bro::adapter::log::Level;
