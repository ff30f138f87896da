//! The smallest adapter: an empty batch in, the target's name out. Measures
//! the host's per-call overhead and checks the happy path.

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Level, Message, MessageType, SystemKind, proto};

struct Trivial;

impl Adapter for Trivial {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "trivial".into(),
            version: "0.1.0".into(),
            system_kind: SystemKind::Other,
            reads: vec![MessageType { name: "echo".into(), content_types: vec!["text/plain".into()] }],
            writes: vec![MessageType { name: "echo".into(), content_types: vec!["text/plain".into()] }],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        if message.content_type == "text/x-log" {
            bro_adapter_sdk::log(Level::Info, &String::from_utf8_lossy(&message.body));
        }
        if message.content_type == "text/x-unsupported" {
            return Err(AdapterError::Unsupported("x-unsupported".into()));
        }
        let id = message.metadata.iter().find(|(k, _)| k == "message-id").map(|(_, v)| v.clone()).unwrap_or_default();
        Ok(proto::AdapterBatch { source_message_id: id, ..Default::default() })
    }

    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {
        Ok(Message {
            content_type: "text/plain".into(),
            body: format!("{target}:{}", batch.events.len()).into_bytes(),
            metadata: vec![],
        })
    }
}

bro_adapter_sdk::export_adapter!(Trivial);
