//! The probes of a well-known router fingerprinting tool, sent byte for byte: each answer
//! carries the return code, text, module and line SAP's routers of NI version 40 send, so
//! scanners recognise a SAProuter (and the order of the checks is SAP's).

mod common;

use std::io::Write;

use common::*;

/// A route request with every header field given (what a fingerprinting tool sends).
fn raw_route(
    ni_version: u8,
    entries: u8,
    rest: u8,
    length: u32,
    offset: u32,
    string: &[u8],
) -> Vec<u8> {
    let mut out = b"NI_ROUTE\0".to_vec();
    out.extend_from_slice(&[2, ni_version, entries, 0, 0, 0, rest]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(string);
    out
}

fn probe(r: &TestRouter, payload: &[u8]) -> RtErr {
    let mut s = r.connect();
    s.write_all(&frame(payload)).expect("send probe");
    rterr(&read_frame(&mut s))
}

/// (rc, error, module, line) of a reply.
fn shape(e: &RtErr) -> (i32, &str, &str, &str) {
    (e.rc, e.error(), e.fields[7].as_str(), e.fields[8].as_str())
}

#[test]
fn host_is_resolved_before_the_service() {
    let r = TestRouter::start("P * * *\n", &[]);
    // Two hops to non.existent.dom with empty services: every SAP release answers -90 for
    // the host, not -91 for the empty service.
    let hop = b"non.existent.dom\0\0\0";
    let string = [&hop[..], &hop[..]].concat();
    let e = probe(&r, &raw_route(40, 2, 1, 38, 19, &string));
    assert_eq!(
        shape(&e),
        (
            -90,
            "hostname 'non.existent.dom' unknown",
            "niuxi.c",
            "1773"
        )
    );
    assert_eq!(e.fields[11], "getaddrinfo");

    // Two all-empty hops: NI version 40 routers name the lookup function as the host.
    let e = probe(&r, &raw_route(40, 2, 1, 6, 3, &[0; 6]));
    assert_eq!(
        shape(&e),
        (
            -90,
            "hostname 'NiHLGetNodeAddr' unknown",
            "nixxhl.cpp",
            "138"
        )
    );

    // A host that resolves with an unknown service is still -91.
    let e = refused(
        &r,
        &[
            ("127.0.0.1", "", ""),
            ("127.0.0.1", "no-such-service-xyz", ""),
        ],
        0,
    );
    assert_eq!(e.rc, -91);
    assert_eq!(e.error(), "service 'no-such-service-xyz' unknown");
}

#[test]
fn fingerprint_probes_get_sap_answers() {
    let r = TestRouter::start("P * * *\n", &[]);
    // Control message opcode 3 with NI version 38.
    let mut control = b"NI_RTERR\0".to_vec();
    control.extend_from_slice(&[38, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let e = probe(&r, &control);
    assert_eq!(
        shape(&e),
        (-13, "invalid client version", "nibuf.cpp", "2300")
    );

    // No route at all, and entries without a string.
    let e = probe(&r, &raw_route(40, 0, 0, 0, 0, &[]));
    assert_eq!(shape(&e), (-93, "internal error", "nirout.cpp", "3714"));
    let e = probe(&r, &raw_route(40, 1, 0, 0, 0, &[]));
    assert_eq!(shape(&e), (-93, "internal error", "nirout.cpp", "3714"));

    // Empty hops with the offset at 0 or at the end.
    for offset in [0, 6] {
        let e = probe(&r, &raw_route(40, 2, 1, 6, offset, &[0; 6]));
        assert_eq!(
            shape(&e),
            (-93, "internal error", "nirout.cpp", "3757"),
            "offset {offset}"
        );
    }

    // NI version 0.
    let hop = b"non.existent.dom\0\0\0";
    let string = [&hop[..], &hop[..]].concat();
    let e = probe(&r, &raw_route(0, 2, 1, 38, 19, &string));
    assert_eq!(
        shape(&e),
        (-96, "invalid client version", "nirout.cpp", "3898")
    );

    // A first message over the limit: the length is read from the text.
    let mut s = r.connect();
    s.write_all(b"\r\n\r\n").expect("send");
    let e = rterr(&read_frame(&mut s));
    assert_eq!(
        shape(&e),
        (-93, "Network packet too big", "nibuf.cpp", "2961")
    );
    assert_eq!(
        e.detail(),
        "NiBufIIn: message length 218762506 exceeds max (10024)"
    );
}

#[test]
fn pre_route_timeout_is_sap_record() {
    let r = TestRouter::start("P * * *\n", &["-W", "1000", "-V", "2"]);
    let mut s = r.connect();
    let e = rterr(&read_frame(&mut s));
    // This router's own source location is in the trace, never on the wire.
    let trace = wait_trace(&r, "error record sent");
    assert!(trace.contains("source=router/session.rs:"), "{trace}");
    assert!(!e.fields.iter().any(|f| f.contains(".rs")), "{e:?}");
    assert_eq!(
        shape(&e),
        (-5, "connection timed out", "nirout.cpp", "8139")
    );
    assert_eq!(
        e.detail(),
        "RTPENDLIST::timeoutPend: no route received within 1s (CONNECTED)"
    );
    assert_eq!(e.fields[4], "NI (network interface)");
}
