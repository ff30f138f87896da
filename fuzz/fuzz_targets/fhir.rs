//! The fhir adapter's reading of FHIR bundles and resources (JSON or XML).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let meta = [("sector".to_owned(), "health".to_owned()), ("message-id".to_owned(), "fuzz".to_owned())];
    if let Ok(batch) = fhir::translate(body, &meta) {
        bro_fuzz::check_batch(&batch);
    }
});
