//! What crosses from an adapter or a client as protobuf: an `AdapterBatch`
//! or a `CaseEvent` decoded from any bytes and converted to the domain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(batch) = bro_proto::v1::AdapterBatch::decode(bytes) {
        bro_fuzz::check_batch(&batch);
    }
    if let Ok(event) = bro_proto::v1::CaseEvent::decode(bytes) {
        let _ = bro_proto::convert::event_from_pb(&event);
    }
});
