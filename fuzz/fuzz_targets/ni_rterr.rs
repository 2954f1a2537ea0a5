//! `NI_RTERR` error/control messages and the 21-field `*ERR*` record: decode never panics
//! or over-reads, and what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::ni::rterr::{rc_text, ErrorRecord, RtErr};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = ErrorRecord::decode(data) {
        assert_eq!(ErrorRecord::decode(&record.encode()), Ok(record));
    }
    let Ok(message) = RtErr::decode(data) else {
        return;
    };
    assert!(message.text.len() <= data.len());
    assert_eq!(RtErr::decode(&message.encode()), Ok(message.clone()));
    let _ = rc_text(message.return_code);
    if let Ok(record) = message.record() {
        let rebuilt = RtErr::error(message.ni_version, message.return_code, &record);
        assert_eq!(rebuilt.record(), Ok(record));
    }
});
