//! The medcom adapter's reading of XML: XDIS91 letters (OIOXML) and
//! CareCommunication as FHIR XML, whatever bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let meta = [("sector".to_owned(), "psychiatry".to_owned()), ("message-id".to_owned(), "fuzz".to_owned())];
    if let Ok(batch) = medcom::translate(body, &meta) {
        bro_fuzz::check_batch(&batch);
    }
});
