//! The medcom adapter's reading of CareCommunication as FHIR JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = medcom::fhir_read::read_json(body);
    let meta = [("sector".to_owned(), "health".to_owned()), ("message-id".to_owned(), "fuzz".to_owned())];
    if let Ok(batch) = medcom::translate(body, &meta) {
        bro_fuzz::check_batch(&batch);
    }
});
