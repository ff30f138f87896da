//! The sdi adapter's reading of KOMBIT Haendelsesbesked envelopes and
//! their SF1470 Sag registrations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(batch) = sdi::translate(body) {
        bro_fuzz::check_batch(&batch);
    }
});
