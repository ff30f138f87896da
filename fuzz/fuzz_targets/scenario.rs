//! The scenario reader of `bro rules check` and `bro rules eval`: JSON
//! scenarios, evaluated when they parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = bro_rules::scenario::parse(text);
    }
});
