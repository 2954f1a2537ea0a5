//! Reverse-invoke link handshake messages (`RI_REGISTER`, `RI_ACCEPT`, the `NI_RTERR`
//! refusal): decoders never panic or over-read, and what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::ri::link::{Accept, Register, Reply};

fuzz_target!(|data: &[u8]| {
    if let Ok(reg) = Register::decode(data) {
        assert_eq!(Register::decode(&reg.encode()), Ok(reg.clone()));
        assert!(reg.addrs.len() <= saprouter::ri::link::MAX_REG_ADDRS);
    }
    if let Ok(accept) = Accept::decode(data) {
        assert_eq!(Accept::decode(&accept.encode()), Ok(accept));
    }
    if let Ok(Reply::Accept(accept)) = Reply::decode(data) {
        assert_eq!(Reply::decode(&accept.encode()), Ok(Reply::Accept(accept)));
    }
});
