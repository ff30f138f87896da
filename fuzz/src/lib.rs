//! What every fuzz target checks of a batch an adapter read: its encoding
//! is a `bro.v1.AdapterBatch` the gateway decodes and encodes back to the
//! same bytes, and each of its events converts to the domain or is refused
//! with a violation — never a panic.

use prost::Message;

/// Checks a batch read from untrusted bytes (the adapter SDK's type, or the gateway's).
pub fn check_batch(batch: &impl Message) {
    let bytes = batch.encode_to_vec();
    let read = bro_proto::v1::AdapterBatch::decode(bytes.as_slice()).expect("the gateway decodes the batch");
    assert_eq!(read.encode_to_vec(), bytes, "the batch survives the gateway's encoding");
    for event in &read.events {
        let _ = bro_proto::convert::event_from_pb(event);
    }
    for subject in &read.subjects {
        let _ = bro_proto::convert::person_id_from_pb("subject", Some(subject));
    }
}
