//! An adapter that reads the clock and a file: it imports `wasi:clocks` and
//! `wasi:filesystem`, which bro does not grant, so it must be refused at load.

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Message, SystemKind, proto};

struct Forbidden;

impl Adapter for Forbidden {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "forbidden".into(),
            version: "0.1.0".into(),
            system_kind: SystemKind::Other,
            reads: vec![],
            writes: vec![],
        }
    }

    fn to_canonical(_message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let secret = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Ok(proto::AdapterBatch { source_message_id: format!("{now}{}", secret.len()), ..Default::default() })
    }

    fn from_canonical(_batch: proto::AdapterBatch, _target: &str) -> Result<Message, AdapterError> {
        Err(AdapterError::Unsupported("nothing".into()))
    }
}

bro_adapter_sdk::export_adapter!(Forbidden);
