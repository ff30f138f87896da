//! The jobcenter adapter's reading of the jobcentre's JSON messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(batch) = jobcenter::translate(body) {
        bro_fuzz::check_batch(&batch);
    }
});
