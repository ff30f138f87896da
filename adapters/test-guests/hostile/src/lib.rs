//! A hostile adapter: the message's content type picks the misbehaviour —
//! loop forever, spin for a while (holding its slot) and then answer,
//! allocate without bound, recurse until the stack overflows, trap, panic
//! (optionally echoing the message), return an oversized output, or flood
//! the log.

use std::hint::black_box;

use bro_adapter_sdk::{Adapter, AdapterError, AdapterInfo, Level, Message, SystemKind, proto};

struct Hostile;

/// Recursion with no end the optimiser can see, on the wasm call stack.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX { 0 } else { recurse(depth + 1).wrapping_add(depth) }
}

impl Adapter for Hostile {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "hostile".into(),
            version: "0.1.0".into(),
            system_kind: SystemKind::Other,
            reads: vec![],
            writes: vec![],
        }
    }

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {
        match message.content_type.as_str() {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "spin" => {
                // The body is the number of iterations: a slow but finite call.
                let n: u64 = String::from_utf8_lossy(&message.body).trim().parse().unwrap_or(1_000_000);
                let mut x = 0u64;
                for i in 0..n {
                    x = black_box(x.wrapping_add(i));
                }
                Ok(proto::AdapterBatch { source_message_id: format!("spun {}", x % 2), ..Default::default() })
            }
            "panic-echo" => panic!("cannot read {}", String::from_utf8_lossy(&message.body)),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => {
                black_box(recurse(0));
                Ok(proto::AdapterBatch::default())
            }
            "trap" => core::arch::wasm32::unreachable(),
            "panic" => panic!("adapter bug: the hostile adapter panics on purpose"),
            "big-output" => Ok(proto::AdapterBatch { source_message_id: "x".repeat(8 << 20), ..Default::default() }),
            "log-flood" => {
                for i in 0..100_000 {
                    bro_adapter_sdk::log(Level::Info, &format!("line {i} of a flood of log lines"));
                }
                Ok(proto::AdapterBatch::default())
            }
            _ => Ok(proto::AdapterBatch::default()),
        }
    }

    fn from_canonical(_batch: proto::AdapterBatch, _target: &str) -> Result<Message, AdapterError> {
        Err(AdapterError::Unsupported("hostile writes nothing".into()))
    }
}

bro_adapter_sdk::export_adapter!(Hostile);
