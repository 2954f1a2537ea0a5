//! The reverse-invoke parameter file (`-i`): parse never panics, and whatever parses is a
//! client or server configuration whose `Debug` form can be printed.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use saprouter::ri::params::parse;
use saprouter::services::Services;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text, Path::new("fuzz.pfl"), &Services::builtin_only()) {
        Ok(params) => {
            let _ = format!("{params:?}");
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
