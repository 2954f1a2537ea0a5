//! Route strings (`/H/host/S/service/W/password`): parse never panics, what parses
//! formats back to a string that parses to the same hops, and each hop's service goes
//! through the service resolver (numbers, SAP's built-in names, a services file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::ni::routestr::{format, format_redacted, is_route_string, parse};
use saprouter::services::Services;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let services = Services::parse(text);
    let _ = services.resolve(text);
    let _ = is_route_string(text);
    let Ok(hops) = parse(text, "3299") else {
        return;
    };
    assert!(!hops.is_empty());
    let again = parse(&format(&hops), "3299").expect("a formatted route string parses");
    assert_eq!(again, hops);
    let redacted = parse(&format_redacted(&hops), "3299").expect("redacted form parses");
    assert_eq!(redacted.len(), hops.len());
    for hop in &hops {
        assert!(!hop.host.is_empty() && !hop.service.is_empty());
        let _ = Services::builtin_only().resolve(&hop.service);
    }
});
