//! The hostile-input suite: the catalogue of docs/hardening.md (H1-H56, H60) against the real
//! binary on 127.0.0.1, raw bytes in, the "Expect" answer (or SAP's compatible one) out. The
//! main test drives one router through the whole catalogue and then checks that it still routes
//! and holds no more file descriptors than before. Inputs that need another configuration
//! (caps, `-Z`, `-P`, `-J`, a full disk) get routers of their own in `hostile_limits.rs`;
//! remote-peer admin runs in process, since every address of this machine is local to the
//! router.

mod common;
mod probe;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use probe::*;

const L: &str = "127.0.0.1";

/// Frame-level inputs, H1-H9.
fn framing(r: &TestRouter, echo: u16) {
    let me = r.port;
    // H1: a zero-length first frame is an empty message: "route expected".
    let e = rterr(&reply_to(r, &[0, 0, 0, 0]));
    assert_eq!(e.rc, -93, "H1");
    assert!(e.detail().contains("route expected"), "H1: {}", e.detail());
    // H2, H3, H4, H5: lengths over 10024 are refused from the header alone (SAP's -93).
    for (what, bytes) in [
        ("H2 ffffffff", &b"\xff\xff\xff\xff"[..]),
        ("H2 fffffffe", b"\xff\xff\xff\xfe"),
        ("H3 10025", b"\x00\x00\x27\x29"),
        ("H4 crlf", b"\r\n\r\n"),
        ("H4 http", b"GET / HTTP/1.0\r\n\r\n"),
        ("H5 tls", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ] {
        let e = rterr(&reply_to(r, bytes));
        assert_eq!(e.rc, -93, "{what}");
        assert_eq!(e.error(), "Network packet too big", "{what}");
    }
    // H6: a truncated frame meets the absolute route-phase deadline (-W 1000 here).
    let mut s = r.connect();
    let start = Instant::now();
    s.write_all(&[0, 0, 0, 100]).unwrap();
    s.write_all(&[b'x'; 99]).unwrap();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -5, "H6");
    assert!(start.elapsed() < Duration::from_millis(2500), "H6 deadline");
    // H7: byte by byte, the route is reassembled and the data behind it flows.
    let mut s = r.connect();
    let route_bytes = frame(&route(
        &[(L, &me.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    ));
    for b in &route_bytes {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(read_frame(&mut s), PONG, "H7");
    s.write_all(&frame(b"dripped")).unwrap();
    assert_eq!(read_frame(&mut s), b"dripped", "H7 data");
    // H8: route and data in one segment: the data is forwarded exactly once.
    let mut s = r.connect();
    let mut both = route_bytes.clone();
    both.extend(frame(b"piggyback"));
    s.write_all(&both).unwrap();
    assert_eq!(read_frame(&mut s), PONG, "H8");
    assert_eq!(read_frame(&mut s), b"piggyback", "H8 data");
    s.write_all(&frame(b"next")).unwrap();
    assert_eq!(read_frame(&mut s), b"next", "H8 no duplicate");
    // H9: keepalives before the route are ignored and do not extend the deadline.
    let mut s = r.connect();
    let start = Instant::now();
    for _ in 0..3 {
        s.write_all(&frame(b"NI_PING\0")).unwrap();
    }
    assert_eq!(rterr(&read_frame(&mut s)).rc, -5, "H9");
    assert!(start.elapsed() < Duration::from_millis(2500), "H9 deadline");
    let mut s = r.connect();
    s.write_all(&frame(b"NI_PING\0")).unwrap();
    s.write_all(&route_bytes).unwrap();
    assert_eq!(read_frame(&mut s), PONG, "H9 then route");
}

/// `NI_ROUTE` header inputs, H10-H23.
fn route_header(r: &TestRouter, echo: u16) {
    let me = r.port;
    let good = || RawRoute::to(me, echo);
    // H10 and H47: wrong eyecatchers are "route expected".
    for payload in [
        &b"NI_ROUTE"[..],
        b"ni_route\0\x02\x28\x02\x00\x00\x00\x01",
        b"NI_ROUTEX\0\x02\x28",
        b"EYECATCHER\0\0\0\0\0\0",
        b"\x8f\x00random",
    ] {
        let e = expect_rc(r, payload, -93, "H10/H47");
        assert!(e.detail().contains("route expected"), "{}", e.detail());
    }
    // H11: header only; H12: truncated header.
    let mut header_only = good();
    header_only.string.clear();
    header_only.length = Some(0);
    expect_rc(r, &header_only.bytes(), -93, "H11");
    expect_rc(r, b"NI_ROUTE\0\x02\x00\x05", -93, "H12");
    // H13-H19: entries, rest nodes, lengths and offsets that lie.
    let mut cases: Vec<(&str, RawRoute)> = Vec::new();
    let mut c = good();
    c.entries = 1;
    cases.push(("H13 entries 1", c));
    let mut c = good();
    c.entries = 255;
    cases.push(("H14 entries 255", c));
    let mut c = good();
    c.string.extend_from_slice(b"extra\x00\x00\x00");
    cases.push(("H14 3 present", c));
    let mut c = good();
    c.rest = 2;
    cases.push(("H15 rest = entries", c));
    let mut c = good();
    c.rest = 0;
    cases.push(("H15 rest 0", c));
    let mut c = good();
    c.length = Some(c.string.len() as u32 + 1);
    cases.push(("H16 length > present", c));
    let mut c = good();
    c.string.push(b'z');
    c.length = Some(c.string.len() as u32 - 1);
    cases.push(("H17 trailing bytes", c));
    let mut c = good();
    c.length = Some(u32::MAX);
    cases.push(("H18 length max", c));
    for offset in [0, 3, 0xFFFF_FFFF] {
        let mut c = good();
        c.offset = Some(offset);
        cases.push(("H19 offset", c));
    }
    let mut c = good();
    c.offset = Some(c.string.len() as u32);
    cases.push(("H19 offset = length", c));
    let mut c = good();
    c.info_version = 9;
    cases.push(("H21 info version", c));
    for (what, c) in &cases {
        expect_rc(r, &c.bytes(), -93, what);
    }
    // H20: NI version 0 is "too old"; any other version is served.
    let mut c = good();
    c.ni_version = 0;
    expect_rc(r, &c.bytes(), -96, "H20 version 0");
    let mut c = good();
    c.ni_version = 255;
    assert_eq!(reply_to(r, &frame(&c.bytes())), PONG, "H20 version 255");
    // H22: talk modes above 2 are -101.
    for mode in [3, 255] {
        let mut c = good();
        c.talk_mode = mode;
        expect_rc(r, &c.bytes(), -101, "H22");
    }
    // H23: the unused bytes are ignored.
    let mut c = good();
    c.unused = [0xAB, 0xCD];
    assert_eq!(reply_to(r, &frame(&c.bytes())), PONG, "H23");
}

/// Route string and hop fields, H24-H34.
fn hop_fields(r: &TestRouter, ni_only: u16, with_password: u16, raw_target: u16) {
    let me = r.port.to_string();
    // H24: the last field without its NUL.
    let mut c = RawRoute::to(r.port, 3200);
    c.string.pop();
    expect_rc(r, &c.bytes(), -93, "H24");
    // H25-H27: empty, short, long and hostile host names are refused before any lookup.
    let long = |n: usize| "a".repeat(n);
    let label = format!("{}.example", "b".repeat(64));
    for host in [
        String::new(),
        "a".into(),
        long(254),
        long(255),
        long(256),
        label,
        long(9000),
        "%s%n".into(),
        "x\r\nFAKE LOG LINE".into(),
        "h\u{f4}st".into(),
        "tab\there".into(),
    ] {
        let e = rterr(&ask_route(r, &[(L, &me, ""), (&host, "3200", "")], 0).1);
        assert_eq!(e.rc, -90, "H25-H27 host of {} bytes", host.len());
    }
    // H26: a host that makes the route exceed the first-message limit.
    let huge = long(10_100);
    let e = rterr(&ask_route(r, &[(L, &me, ""), (&huge, "3200", "")], 0).1);
    assert_eq!(e.rc, -93, "H26 10 KB");
    // H28, H36: the router itself under every spelling, whatever the table says.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for host in [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "localhost",
        "localhost.",
        "0.0.0.0",
        "0",
        "::",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "0:0:0:0:0:0:0:1",
        host_name.trim(),
    ] {
        if host.is_empty() {
            continue;
        }
        let reply = ask_route(r, &[(L, &me, ""), (host, &me, "")], 0).1;
        assert_ne!(reply, PONG, "H28 {host}: routed to the router itself");
        // Names that do not resolve here (`localhost.` without DNS) are -90: not routed
        // either. Every spelling that does resolve must meet the self check.
        let rc = rterr(&reply).rc;
        let name = host == host_name.trim() || host == "localhost.";
        assert!(rc == -94 || (name && rc == -90), "H28 {host}: {rc}");
    }
    // H30: services are numbers 1-65535 or known names.
    for service in [
        "65536",
        "99999999999999999999",
        "-1",
        "0",
        "+3200",
        " 3200",
        "3200abc",
        "0x0c80",
        "sapdp100",
        "sapdp99999",
        "someservice-xyz",
    ] {
        let e = rterr(&ask_route(r, &[(L, &me, ""), (L, service, "")], 0).1);
        assert_eq!(e.rc, -91, "H30 {service:?}");
    }
    // H31: passwords: only the exact one passes, long and odd ones are plain refusals.
    let target = with_password.to_string();
    for (password, ok) in [
        ("secret", true),
        ("secre", false),
        ("secret\u{e9}", false),
        ("", false),
        (&"p".repeat(1024)[..], false),
    ] {
        let reply = ask_route(r, &[(L, &me, ""), (L, &target, password)], 0).1;
        if ok {
            assert_eq!(reply, PONG, "H31 right password");
        } else {
            assert_eq!(rterr(&reply).rc, -94, "H31 {} bytes", password.len());
        }
    }
    // H32: 100 and 255 hops; a route that repeats the router.
    for n in [100usize, 255] {
        let mut list = vec![(L, me.clone())];
        list.extend((1..n).map(|_| ("xx", String::new())));
        let e = rterr(&ask_route(r, &hops(&list), 0).1);
        assert!(e.rc < 0, "H32 {n} hops");
    }
    let list: Vec<(&str, String)> = (0..50).map(|_| (L, me.clone())).collect();
    assert_eq!(
        rterr(&ask_route(r, &hops(&list), 0).1).rc,
        -94,
        "H32 self hops"
    );
    // H22: native mode on an S (NI only) entry.
    let e = rterr(&ask_route(r, &[(L, &me, ""), (L, &ni_only.to_string(), "")], 1).1);
    assert_eq!(e.rc, -94, "H22 raw on S");
    // H34: `P * * *` does not open a native route to a non-SAP port on the last router.
    let e = rterr(&ask_route(r, &[(L, &me, ""), (L, &raw_target.to_string(), "")], 1).1);
    assert_eq!(e.rc, -94, "H34");
}

/// Admin and control inputs from a local peer, H37-H47.
fn admin_and_control(r: &TestRouter, echo: u16) {
    // H37: unknown opcodes; H38, H39: counts that lie; H42: truncated requests.
    for (what, payload) in [
        ("H37 op 0", &b"ROUTER_ADM\0\x28\x00\0\0"[..]),
        ("H37 op 1", b"ROUTER_ADM\0\x28\x01\0\0"),
        ("H37 op 15", b"ROUTER_ADM\0\x28\x0f\0\0"),
        ("H37 op 7f", b"ROUTER_ADM\0\x28\x7f\0\0"),
        ("H37 op ff", b"ROUTER_ADM\0\x28\xff\0\0"),
        ("H38 cancel ffff", b"ROUTER_ADM\0\x28\x06\0\0\xff\xff"),
        (
            "H38 cancel 2 of 1",
            b"ROUTER_ADM\0\x28\x06\0\0\0\x02\0\0\0\x01",
        ),
        (
            "H39 trace ffffffff",
            b"ROUTER_ADM\0\x28\x0c\xff\xff\xff\xff",
        ),
        ("H42 no command", b"ROUTER_ADM\0\x28"),
        ("H42 no version", b"ROUTER_ADM\0"),
        ("H42 cancel only", b"ROUTER_ADM\0\x28\x06"),
    ] {
        expect_rc(r, payload, -93, what);
    }
    // H40: peer-trace masks without NUL or with garbage are bounded, then cleared.
    for mask in [[b'9'; 32], [0xFF; 32]] {
        for op in [10u8, 11] {
            let mut p = b"ROUTER_ADM\0\x28".to_vec();
            p.push(op);
            p.extend_from_slice(&mask);
            assert_eq!(reply_to(r, &frame(&p)), b"", "H40 op {op}");
        }
    }
    // H43: version requests are answered a few times, then the connection ends.
    let mut request = b"NI_RTERR\0\x28\x01\0".to_vec();
    request.extend_from_slice(&[0; 8]);
    request.extend_from_slice(b"*ERR");
    let mut s = r.connect();
    let mut answered = 0;
    let mut refused = None;
    for _ in 0..20 {
        if s.write_all(&frame(&request)).is_err() {
            break;
        }
        let e = rterr(&read_frame(&mut s));
        if e.opcode == 2 {
            answered += 1;
        } else {
            refused = Some(e.rc);
            break;
        }
    }
    assert!((1..=8).contains(&answered), "H43 answered {answered}");
    assert_eq!(refused, Some(-93), "H43");
    // H44: unknown control opcodes -13, SAP SNC frames -104.
    for (op, rc) in [
        (3u8, -13),
        (5, -13),
        (6, -13),
        (8, -13),
        (70, -104),
        (71, -104),
    ] {
        let mut p = b"NI_RTERR\0\x28".to_vec();
        p.push(op);
        p.extend_from_slice(&[0; 9]);
        p.extend_from_slice(b"*ERR");
        expect_rc(r, &p, rc, "H44");
    }
    // H45: error info whose text length lies.
    expect_rc(
        r,
        b"NI_RTERR\0\x28\x00\0\xff\xff\xff\xa3\xff\xff\xff\xff",
        -93,
        "H45",
    );
    // H46: control-looking frames from the far side after routing are data.
    let me = r.port.to_string();
    let (mut s, reply) = ask_route(r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG);
    let spoof = b"NI_RTERR\0\x28\x00\0\xff\xff\xff\xa2\0\0\0\0\0\0\0\0";
    for payload in [&spoof[..], PONG, b"NI_PING\0", b"ROUTER_ADM\0\x28\x05\0\0"] {
        s.write_all(&frame(payload)).unwrap();
        assert_eq!(read_frame(&mut s), payload, "H46 passes through");
    }
}

/// Life-cycle inputs on the main router, H48, H49, H51, H52.
fn life_cycle(r: &TestRouter, raw: u16) {
    // H48: an idle connection gets -5 within the deadline.
    let mut s = r.connect();
    let start = Instant::now();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -5, "H48");
    assert!(start.elapsed() < Duration::from_millis(2500));
    // H49: a slow drip does not extend it.
    let mut s = r.connect();
    let start = Instant::now();
    let mut reply = None;
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    for b in [0u8, 0, 0, 200, b'N', b'I'] {
        let _ = s.write_all(&[b]);
        let mut head = [0u8; 4];
        if s.read_exact(&mut head).is_ok() {
            reply = Some(head);
            break;
        }
    }
    s.set_read_timeout(Some(STEP)).unwrap();
    if reply.is_none() {
        let mut head = [0u8; 4];
        s.read_exact(&mut head).unwrap();
    }
    assert!(start.elapsed() < Duration::from_millis(2500), "H49");
    // H51: half-close in raw mode: everything comes back, then EOF.
    let me = r.port.to_string();
    let (s, reply) = ask_route(r, &[(L, &me, ""), (L, &raw.to_string(), "")], 1);
    assert_eq!(reply, PONG);
    let data = pattern(2 << 20, 5);
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let t = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut rd = s;
    rd.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == data, "H51 bytes lost or duplicated");
    // H52: a client reset tears the far side down promptly.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Arc::new(std::sync::Mutex::new(tx));
    let target = spawn_server(move |mut s| {
        let mut buf = [0u8; 1024];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.lock().unwrap().send(());
    });
    // The table permits this target through `P * * *`, NI mode.
    let (s, reply) = ask_route(r, &[(L, &me, ""), (L, &target.to_string(), "")], 0);
    assert_eq!(reply, PONG);
    let sock = socket2::Socket::from(s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(sock);
    rx.recv_timeout(Duration::from_secs(3))
        .expect("H52: the far side was not closed after the client's reset");
}

#[test]
fn the_catalogue_leaves_the_router_routing_and_leak_free() {
    let echo = ni_echo();
    let ni_only = ni_echo();
    let with_password = ni_echo();
    let raw = raw_echo();
    let table = format!(
        "S {L} {L} {ni_only}\nP {L} {L} {with_password} secret\nP {L} {L} {raw}\nP {L} {L} {echo}\nP * * *\n"
    );
    let r = TestRouter::start(&table, &["-W", "1000"]);
    let pid = r.child.id();
    let me = r.port.to_string();
    // Warm up (runtime threads, first route), then take the baseline.
    let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG);
    s.write_all(&frame(b"warm")).unwrap();
    read_frame(&mut s);
    drop(s);
    let baseline = settles(0, Duration::from_millis(500), || fd_count(pid) as u64);

    framing(&r, echo);
    route_header(&r, echo);
    hop_fields(&r, ni_only, with_password, free_port());
    admin_and_control(&r, echo);
    life_cycle(&r, raw);

    // Still routes.
    let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG, "the router no longer routes");
    s.write_all(&frame(b"still here")).unwrap();
    assert_eq!(read_frame(&mut s), b"still here");
    drop(s);
    admin_works(&r);
    // No leaked connections: the descriptor count returns to the baseline.
    let after = settles(baseline + 2, Duration::from_secs(15), || {
        fd_count(pid) as u64
    });
    assert!(
        after <= baseline + 2,
        "router holds {after} descriptors, {baseline} before the suite"
    );
}
