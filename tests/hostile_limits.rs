//! Hostile inputs that need a router of their own, each configured for the input: a port
//! scan against `-Z`, logs that are escaped, capped or cannot be written, the info
//! password's edge cases, a slowloris from one source, a full client table, destinations
//! that never answer, a reader that stops, a broken table on reload, and the caps' flags.
//! The catalogue that one router takes whole is in `hostile.rs`; the numbers (H33, H50...)
//! are those of docs/hardening.md.

mod common;
mod probe;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use probe::*;

const L: &str = "127.0.0.1";

/// H33, H56, V7/V8: a port scan against a -Z router gets one reply shape, and the trace
/// file stays small (refusal lines are rate-limited).
#[test]
fn scan_burst_gets_uniform_replies_and_bounded_logs() {
    let r = TestRouter::start("D * * *\n", &["-Z", "-T", "trace", "-G", "conn.log"]);
    let me = r.port.to_string();
    let mut shapes = std::collections::BTreeSet::new();
    for port in 1..=300u16 {
        let e = rterr(&ask_route(&r, &[(L, &me, ""), ("127.0.0.9", &port.to_string(), "")], 0).1);
        assert_eq!(e.rc, -92, "H33");
        // Everything but the time field is the same for every target.
        let mut fields = e.fields.clone();
        fields[10].clear();
        shapes.insert(fields);
    }
    assert_eq!(shapes.len(), 1, "H33: replies differ: {shapes:?}");
    let trace = read_text(&r.path("trace"));
    let refusals = trace.lines().filter(|l| l.contains("route")).count();
    assert!(
        refusals < 150,
        "H56: {refusals} refusal lines for 300 probes"
    );
}

/// H27, H56: network strings are escaped in the trace, -J caps both logs, and a log on
/// a full device does not stop routing (V10).
#[test]
fn logs_are_escaped_capped_and_cannot_stop_routing() {
    let echo = ni_echo();
    let table = format!("P {L} {L} {echo}\nD * * *\n");
    let r = TestRouter::start(&table, &["-T", "trace", "-G", "conn.log", "-J", "4000"]);
    let me = r.port.to_string();
    for i in 0..200 {
        let host = format!("x{i}\r\nFAKE LOG LINE");
        ask_route(&r, &[(L, &me, ""), (&host, "3200", "")], 0);
    }
    let trace = read_text(&r.path("trace"));
    assert!(
        !trace.lines().any(|l| l.starts_with("FAKE")),
        "H27: a network string broke a trace line"
    );
    let size = |name: &str| {
        std::fs::metadata(r.path(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert!(size("trace") <= 4000 && size("conn.log") <= 4000, "H56: -J");
    assert!(
        r.path("conn.log.old").exists(),
        "the connection log rotated"
    );

    let full = TestRouter::start(&table, &["-T", "/dev/full", "-G", "/dev/full", "-J", "100"]);
    let me = full.port.to_string();
    for _ in 0..20 {
        let (mut s, reply) = ask_route(&full, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
        assert_eq!(reply, PONG, "V10: a full log disk stopped routing");
        s.write_all(&frame(b"x")).unwrap();
        assert_eq!(read_frame(&mut s), b"x");
    }
    assert!(std::path::Path::new("/dev/full").exists());
}

/// H41: info passwords: wrong, unterminated 19 bytes, too long, a prefix, then right.
#[test]
fn info_password_edge_cases() {
    let r = TestRouter::start("P * * *\n", &["-P", "geheim"]);
    let info = |password: &[u8]| {
        let mut p = b"ROUTER_ADM\0\x28\x02\0\0".to_vec();
        p.extend_from_slice(password);
        reply_to(&r, &frame(&p))
    };
    for password in [
        &b"wrong\0\0\0\0\0\0\0\0\0\0\0\0\0\0"[..],
        &[b'g'; 19],
        b"geheimgeheimgeheimgeheim\0",
        b"gehei\0",
        b"geheim-\0",
        b"",
    ] {
        assert_eq!(rterr(&info(password)).rc, -99, "H41 {password:?}");
    }
    let reply = info(b"geheim\0\0\0\0\0\0\0\0\0\0\0\0\0");
    assert!(
        !reply.starts_with(b"NI_RTERR"),
        "the right password is refused"
    );
}

/// H50: a slowloris from one source leaves room for others and for local admin.
#[test]
fn slowloris_from_one_source_leaves_room() {
    let echo = ni_echo();
    let table = format!("P * {L} {echo}\nD * * *\n");
    let r = TestRouter::start(
        &table,
        &[
            "-W",
            "20000",
            "--max-pending",
            "16",
            "--max-pending-per-source",
            "8",
        ],
    );
    let me = r.port.to_string();
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = connect_from([127, 0, 0, 2], r.port);
        s.write_all(&[0, 0]).unwrap(); // half a header, then silence
        held.push(s);
    }
    // The ninth from the same source is refused at once with -100.
    let start = Instant::now();
    let mut s = connect_from([127, 0, 0, 2], r.port);
    let e = rterr(&read_frame(&mut s));
    assert_eq!(e.rc, -100, "H50 per source");
    assert!(start.elapsed() < Duration::from_secs(2));
    // Another source routes.
    let mut s = connect_from([127, 0, 0, 3], r.port);
    s.write_all(&frame(&route(
        &[(L, &me, ""), (L, &echo.to_string(), "")],
        0,
    )))
    .unwrap();
    assert_eq!(read_frame(&mut s), PONG, "H50 other source");
    // Fill the global cap from a second source: local admin still gets in.
    for _ in 0..8 {
        held.push(connect_from([127, 0, 0, 4], r.port));
    }
    let listing = admin_works(&r);
    assert!(
        listing.contains("--max-pending"),
        "caps shown by -l:\n{listing}"
    );
    drop(held);
}

/// H54: a full client table answers -100 fast, and local admin still works.
#[test]
fn full_table_refuses_fast_and_admin_still_works() {
    let r = TestRouter::start(
        "P * * *\n",
        &["-C", "4", "-W", "20000", "--max-pending", "50"],
    );
    let held: Vec<TcpStream> = (0..4).map(|_| r.connect()).collect();
    // The held connections may be accepted after a first try: retry until -100 shows.
    let start = Instant::now();
    loop {
        let e = rterr(&reply_to(
            &r,
            &frame(&route(&[(L, "1", ""), (L, "2", "")], 0)),
        ));
        if e.rc == -100 {
            break;
        }
        assert!(start.elapsed() < STEP, "H54: got {}", e.rc);
    }
    admin_works(&r);
    drop(held);
}

/// H55: black-hole destinations time out at -W, and the connect cap bounds them.
#[test]
fn black_hole_destinations_time_out() {
    // A listener that never accepts, with its queue full: further SYNs are dropped.
    let hole = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    hole.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    hole.listen(0).unwrap();
    let port = hole.local_addr().unwrap().as_socket().unwrap().port();
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&local(port), Duration::from_millis(300)).ok())
        .collect();
    let echo = ni_echo();
    let table = format!("P {L} {L} {port}\nP {L} {L} {echo}\n");
    let r = Arc::new(TestRouter::start(
        &table,
        &["-W", "1000", "--max-connecting", "2"],
    ));
    let me = r.port.to_string();
    let start = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let r = Arc::clone(&r);
            let me = me.clone();
            thread::spawn(move || {
                rterr(&ask_route(&r, &[(L, &me, ""), (L, &port.to_string(), "")], 0).1).rc
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), -5, "H55");
    }
    assert!(start.elapsed() < Duration::from_secs(5), "H55 bounded");
    let (_s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG);
    drop(fillers);
}

/// H53: a destination that never reads: the router buffers a bounded amount.
#[test]
fn slow_reader_is_back_pressured() {
    let (tx, rx) = std::sync::mpsc::channel::<TcpStream>();
    let tx = Arc::new(std::sync::Mutex::new(tx));
    let sink = spawn_server(move |s| {
        let _ = tx.lock().unwrap().send(s); // keep it open, never read
    });
    let r = TestRouter::start(&format!("P {L} {L} {sink}\n"), &[]);
    let pid = r.child.id();
    let me = r.port.to_string();
    let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &sink.to_string(), "")], 1);
    assert_eq!(reply, PONG);
    let _held = rx.recv_timeout(STEP).unwrap();
    let rss_before = rss_kib(pid);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut accepted = 0usize;
    while accepted < 256 << 20 {
        match s.write(&chunk) {
            Ok(n) => accepted += n,
            Err(_) => break,
        }
    }
    assert!(accepted < 64 << 20, "H53: {accepted} bytes taken in");
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "H53: router grew by {grown} KiB");
}

/// H60: a broken table on reload keeps the old one; SAP's bad masks are refused.
#[test]
fn broken_table_on_reload_keeps_the_old_one() {
    let echo = ni_echo();
    let good = format!("P {L} {L} {echo}\r\nD * * *\r\n");
    let r = TestRouter::start(&good, &[]);
    let me = r.port.to_string();
    for bad in [
        "P 10.0.0.0/33 * *\n",
        "P 156.56.101101011.* * *\n",
        "P * * * pw extra field\n",
        "P h\u{f6}st * *\n",
        "X * * *\n",
    ] {
        std::fs::write(r.path("saprouttab"), format!("{good}{bad}")).unwrap();
        let out = r.admin(&["-n"]);
        assert!(!out.status.success(), "H60: {bad:?} was accepted");
        let (_s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
        assert_eq!(reply, PONG, "H60: the old table is gone after {bad:?}");
    }
}

/// H35-H41 from a remote peer (in process: every address of this machine is local to
/// the router): each admin opcode is refused and changes nothing; the per-source and
/// global route-phase caps apply to remote peers with no reserve.
#[tokio::test]
async fn remote_peers_get_no_admin_and_no_reserve() {
    use saprouter::router::{Lifecycle, RouterConfig, Shared};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let table = saprouter::routtab::parse_table(
        "D * * *\n",
        std::path::Path::new("t"),
        &saprouter::routtab::SystemResolver::new(),
    )
    .unwrap();
    let config = RouterConfig {
        max_pending: Some(2),
        max_pending_per_source: 1,
        ..RouterConfig::default()
    };
    let shared = Arc::new(Shared::new(
        config,
        table,
        saprouter::services::Services::builtin_only(),
        None,
        3299,
        None,
    ));
    let remote: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let own: SocketAddr = "192.0.2.1:3299".parse().unwrap();
    for op in 2u8..=14 {
        let mut p = b"ROUTER_ADM\0\x28".to_vec();
        p.push(op);
        p.extend_from_slice(&[0; 40]);
        let (mut ours, theirs) = tokio::io::duplex(1 << 16);
        let slot = shared.admission().take_client_slot().unwrap();
        let pending = shared.admission().enter_route_phase(remote.ip()).unwrap();
        let pre = saprouter::router::session::PreRoute {
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(5),
            snc_name: None,
            pending: Some(pending),
        };
        let session = tokio::spawn(saprouter::router::session::run_with(
            Arc::clone(&shared),
            saprouter::router::conn::Side::stream(theirs),
            remote,
            Some(own),
            slot,
            pre,
        ));
        ours.write_all(&frame(&p)).await.unwrap();
        let mut head = [0u8; 4];
        ours.read_exact(&mut head).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
        ours.read_exact(&mut body).await.unwrap();
        let e = rterr(&body);
        let expected = if op == 2 { -99 } else { -94 };
        assert_eq!(e.rc, expected, "H35 opcode {op}");
        drop(ours);
        session.await.unwrap();
    }
    assert_eq!(shared.lifecycle(), Lifecycle::Running);
    assert!(!shared.hide_errors());
    assert_eq!(
        shared.admission().in_route_phase(),
        0,
        "every place was given back"
    );
    // Caps for remote peers: one per source, two in all, no local reserve.
    let a = shared.admission().enter_route_phase(remote.ip()).unwrap();
    assert!(shared.admission().enter_route_phase(remote.ip()).is_err());
    let _b = shared
        .admission()
        .enter_route_phase("192.0.2.8".parse().unwrap())
        .unwrap();
    assert!(shared
        .admission()
        .enter_route_phase("192.0.2.9".parse().unwrap())
        .is_err());
    drop(a);
    assert!(shared
        .admission()
        .enter_route_phase("192.0.2.9".parse().unwrap())
        .is_ok());
}

/// Every cap is a flag and `-l` lists the values in force.
#[test]
fn caps_are_configurable_and_listed() {
    let r = TestRouter::start(
        "P * * *\n",
        &[
            "-C",
            "10",
            "-B",
            "2",
            "-Q",
            "1000000",
            "-W",
            "1500",
            "-J",
            "99999",
            "--max-pending",
            "7",
            "--max-pending-per-source",
            "3",
            "--max-connecting",
            "5",
        ],
    );
    let listing = admin_works(&r);
    for want in [
        "Max. clients        : 10 (-C)",
        "1500 ms (-W); 7 connections (--max-pending), 3 per source",
        "Outbound connects   : 5 at once",
        "Relay queues        : 65536 bytes per client (-B 2, -Q 1000000)",
        "Log size            : 99999 bytes per file (-J)",
    ] {
        assert!(listing.contains(want), "{want:?} missing:\n{listing}");
    }
    for bad in [
        &["--max-pending", "0"][..],
        &["--max-connecting", "x"],
        &["-Q", "-1"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .args(["-r", "-S", &free_port().to_string()])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}
