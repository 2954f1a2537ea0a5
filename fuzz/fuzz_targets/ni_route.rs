//! `NI_ROUTE` decode, with the round-trip property: whatever decodes re-encodes to a
//! request that decodes to the same value (byte-exact when the input's strings are UTF-8
//! and its unused bytes are zero), and the request handed to the next router decodes too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::ni::route::{RouteRequest, ROUTE_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(route) = RouteRequest::decode(data) else {
        return;
    };
    let encoded = route.encode();
    let again = RouteRequest::decode(&encoded).expect("an accepted route re-encodes validly");
    assert_eq!(again, route);
    let utf8 = std::str::from_utf8(&data[ROUTE_HEADER_LEN..]).is_ok();
    if utf8 && data[0x0D..0x0F] == [0, 0] {
        assert_eq!(encoded, data, "encode(decode(x)) != x");
    }
    // The accessors the router uses hold for every accepted route.
    let _ = (route.next_hop(), route.own_hop());
    assert_eq!(
        route.routers_before() + route.routers_after() + 2,
        route.hops.len()
    );
    if let Some(onward) = route.advanced() {
        let decoded = RouteRequest::decode(&onward.encode()).expect("advanced route decodes");
        assert_eq!(decoded, onward);
        assert_eq!(onward.rest + 1, route.rest);
    } else {
        assert_eq!(route.rest, 1);
    }
});
