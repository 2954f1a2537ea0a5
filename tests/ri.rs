//! Reverse invoke end to end on loopback: real `saprouter -i` processes for the DMZ and the
//! LAN side, routes through the registered pseudo address, links lost and re-made,
//! registrations refused. Every wait polls with a bound; nothing sleeps a fixed time.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";

/// A router with its reverse-invoke parameter file (kept in a directory of its own, so a
/// restart can reuse it).
struct Node {
    router: TestRouter,
    _cf: tempfile::TempDir,
}

impl Node {
    fn port(&self) -> u16 {
        self.router.port
    }
    fn trace(&self) -> String {
        read_text(&self.router.path("dev_rout"))
    }
}

fn start(cf_text: &str, table: &str) -> Node {
    let (cf, path) = write_cf(cf_text);
    let router = TestRouter::start(table, &["-i", &path, "-V", "2"]);
    Node { router, _cf: cf }
}

/// A DMZ router registering on `reg` with `extra` parameter lines; its table permits
/// routes to the pseudo ports `services` on 127.0.0.1.
fn dmz(reg: u16, extra: &str, services: &[u16]) -> Node {
    let mut table: String = services.iter().map(|s| format!("P * {L} {s}\n")).collect();
    table.push_str("D * * *\n");
    start(
        &format!("client = true\nclient_service = {reg}\n{extra}"),
        &table,
    )
}

/// A LAN router registering `reg_service` with the DMZ router's port `dmz_reg`; its table
/// lets the DMZ router reach anything in NI mode.
fn lan(dmz_reg: u16, reg_service: u16, extra: &str) -> Node {
    lan_raw(dmz_reg, reg_service, extra, &[])
}

/// Like [`lan`], also permitting raw routes to `raw_ports` (SAP's tables need the explicit
/// port for native routes).
fn lan_raw(dmz_reg: u16, reg_service: u16, extra: &str, raw_ports: &[u16]) -> Node {
    let mut table: String = raw_ports.iter().map(|p| format!("P {L} * {p}\n")).collect();
    table.push_str(&format!("P {L} * *\n"));
    start(
        &format!(
            "server = true\nclient_hostname = {L}\nclient_service = {dmz_reg}\nreg_service = {reg_service}\n{extra}"
        ),
        &table,
    )
}

/// Waits until the DMZ router lists `servers` servers, all with `links` links.
fn wait_registered(dmz: &Node, servers: usize, links: usize) -> String {
    wait_listing(
        &dmz.router,
        &format!("{servers} servers x {links} links"),
        |t| {
            t.contains(&format!("srv no {servers} "))
                && t.matches(&format!("  conns {links} ")).count() == servers
        },
    )
}

/// Open streams per link, as the DMZ's `-l` shows them.
fn streams_per_link(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 6 && f[2].contains(':')).then(|| f[3].parse().ok())?
        })
        .collect()
}

fn hops<'a>(dmz: &'a str, reg: &'a str, target: &'a str) -> [(&'a str, &'a str, &'a str); 3] {
    [(L, dmz, ""), (L, reg, ""), (L, target, "")]
}

/// A route DMZ → pseudo address → target; the reply frame and the stream.
fn via(dmz: &Node, reg: u16, target: u16, mode: u8) -> (TcpStream, Vec<u8>) {
    let (d, r, t) = (dmz.port().to_string(), reg.to_string(), target.to_string());
    ask_route(&dmz.router, &hops(&d, &r, &t), mode)
}

fn echo_ok(s: &mut TcpStream, n: usize) {
    let data = pattern(n, n);
    s.write_all(&frame(&data)).expect("send frame");
    assert_eq!(read_frame(s), data, "frame of {n} bytes");
}

#[test]
fn ni_and_raw_routes_reach_the_lan_through_the_link() {
    let reg = free_port();
    let pseudo = free_port();
    let raw = raw_echo();
    let d = dmz(reg, "ACE = P 127.0.0.0/8\n", &[pseudo]);
    let l = lan_raw(reg, pseudo, "", &[raw]);
    let text = wait_registered(&d, 1, 1);
    assert!(text.contains(&format!("reg port {pseudo}")), "{text}");
    assert!(text.contains("reg addrs 1 [127.0.0.1]"), "{text}");

    let echo = ni_echo();
    let (mut s, reply) = via(&d, pseudo, echo, 0);
    assert_eq!(reply, PONG);
    for n in [0, 1, 10024, 1 << 20] {
        echo_ok(&mut s, n);
    }
    s.write_all(&frame(b"NI_PING\0")).unwrap();
    assert_eq!(
        read_frame(&mut s),
        b"NI_PING\0",
        "keepalives pass end to end"
    );

    let (s, reply) = via(&d, pseudo, raw, 1);
    assert_eq!(reply, PONG);
    let data = pattern(2 << 20, 5);
    let mut writer = s.try_clone().unwrap();
    let sent = data.clone();
    let t = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut reader = s;
    reader.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == data, "raw bytes lost or reordered over the link");

    // The LAN side lists its link; the session came from the DMZ router's address.
    let lan_text = listing(&l.router);
    assert!(
        lan_text.contains("RI server: client 127.0.0.1"),
        "{lan_text}"
    );
    assert!(lan_text.contains("[0] up, link"), "{lan_text}");
}

#[test]
fn the_lan_table_sees_the_dmz_router_as_source() {
    let reg = free_port();
    let pseudo = free_port();
    let d = dmz(reg, "", &[pseudo]);
    // The LAN table permits only another source: the route must be refused there.
    let (cf, path) = write_cf(&format!(
        "server = 1\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\n"
    ));
    let _l = Node {
        router: TestRouter::start("P 127.0.0.2 * *\nD * * *\n", &["-i", &path]),
        _cf: cf,
    };
    wait_registered(&d, 1, 1);
    let echo = ni_echo();
    let (_s, reply) = via(&d, pseudo, echo, 0);
    let err = rterr(&reply);
    assert_eq!(err.rc, -94, "{err:?}");
    assert!(err.error().contains("127.0.0.1 to 127.0.0.1"), "{err:?}");
}

#[test]
fn streams_spread_over_the_links() {
    let reg = free_port();
    let pseudo = free_port();
    let d = dmz(reg, "conn_pool_size = 3\n", &[pseudo]);
    let _l = lan(reg, pseudo, "conn_on_demand = no\n");
    wait_registered(&d, 1, 3);
    let echo = ni_echo();
    let mut sessions = Vec::new();
    for _ in 0..6 {
        let (mut s, reply) = via(&d, pseudo, echo, 0);
        assert_eq!(reply, PONG);
        echo_ok(&mut s, 100);
        sessions.push(s);
    }
    let text = listing(&d.router);
    assert_eq!(streams_per_link(&text), vec![2, 2, 2], "{text}");
    drop(sessions);
    wait_listing(&d.router, "streams to close", |t| {
        streams_per_link(t) == vec![0, 0, 0]
    });
}

#[test]
fn on_demand_starts_with_one_link() {
    let reg = free_port();
    let pseudo = free_port();
    let d = dmz(reg, "conn_pool_size = 3\n", &[pseudo]);
    let l = lan(reg, pseudo, "");
    wait_registered(&d, 1, 1);
    let text = listing(&l.router);
    assert!(
        text.contains("onDemand YES") && text.contains("links 1"),
        "{text}"
    );
}

#[test]
fn two_lan_servers_each_reached_by_its_pseudo_port() {
    let reg = free_port();
    let (p1, p2) = (free_port(), free_port());
    let d = dmz(reg, "max_servers = 2\n", &[p1, p2]);
    let _l1 = lan(reg, p1, "");
    let _l2 = lan(reg, p2, "");
    let text = wait_registered(&d, 2, 1);
    assert!(text.contains(&format!("reg port {p1}")) && text.contains(&format!("reg port {p2}")));
    let echo = ni_echo();
    for p in [p1, p2] {
        let (mut s, reply) = via(&d, p, echo, 0);
        assert_eq!(reply, PONG, "via pseudo port {p}");
        echo_ok(&mut s, 5000);
    }
}

#[test]
fn a_lost_lan_router_costs_only_its_own_sessions() {
    let reg = free_port();
    let (p1, p2) = (free_port(), free_port());
    let d = dmz(reg, "max_servers = 2\n", &[p1, p2]);
    let mut l1 = lan(reg, p1, "");
    let _l2 = lan(reg, p2, "");
    wait_registered(&d, 2, 1);
    let echo = ni_echo();
    let (mut s1, reply) = via(&d, p1, echo, 0);
    assert_eq!(reply, PONG);
    let (mut s2, reply) = via(&d, p2, echo, 0);
    assert_eq!(reply, PONG);
    echo_ok(&mut s1, 10);
    echo_ok(&mut s2, 10);

    let _ = l1.router.child.kill();
    l1.router.wait_exit();
    // Its session ends (EOF or an NI_RTERR, never a hang)...
    s1.set_read_timeout(Some(STEP)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s1.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(
                started.elapsed() < STEP,
                "session of the lost link still open"
            ),
        }
    }
    assert!(started.elapsed() < STEP);
    // ...the other server's session and new routes to it go on.
    echo_ok(&mut s2, 100_000);
    wait_registered(&d, 1, 1);
    let (mut s3, reply) = via(&d, p2, echo, 0);
    assert_eq!(reply, PONG);
    echo_ok(&mut s3, 10);
    // A route to the lost pseudo address gets an error, within -W.
    let started = Instant::now();
    let (_s, reply) = via(&d, p1, echo, 0);
    assert_ne!(reply, PONG);
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn the_lan_router_registers_again_after_a_dmz_restart() {
    let reg = free_port();
    let pseudo = free_port();
    let mut d = dmz(reg, "", &[pseudo]);
    let _l = lan(reg, pseudo, "");
    wait_registered(&d, 1, 1);
    let echo = ni_echo();
    let (mut s, reply) = via(&d, pseudo, echo, 0);
    assert_eq!(reply, PONG);
    echo_ok(&mut s, 10);

    let _ = d.router.child.kill();
    d.router.wait_exit();
    let restarted = Instant::now();
    let d = dmz(reg, "", &[pseudo]);
    wait_registered(&d, 1, 1);
    println!(
        "re-registered {:?} after the DMZ router restarted",
        restarted.elapsed()
    );
    let (mut s, reply) = via(&d, pseudo, echo, 0);
    assert_eq!(reply, PONG);
    echo_ok(&mut s, 10);
}

#[test]
fn registration_outside_the_ace_list_is_refused_and_logged() {
    let reg = free_port();
    let pseudo = free_port();
    let d = dmz(reg, "ACE = D 127.0.0.1\nACE = P 0.0.0.0/0\n", &[pseudo]);
    let l = lan(reg, pseudo, "");
    let text = wait_listing(&l.router, "refusal on the LAN side", |t| {
        t.contains("refused")
    });
    assert!(text.contains("not permitted by the ACE list"), "{text}");
    let start = Instant::now();
    while !d.trace().contains("reverse-invoke registration refused") {
        assert!(start.elapsed() < STEP, "refusal not in the DMZ trace");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(d.trace().contains("not permitted by the ACE list"));
    assert!(listing(&d.router).contains("srv no 0 "));
}

#[test]
fn registration_beyond_max_servers_is_refused_and_logged() {
    let reg = free_port();
    let (p1, p2) = (free_port(), free_port());
    let d = dmz(reg, "max_servers = 1\n", &[p1, p2]);
    let _l1 = lan(reg, p1, "");
    wait_registered(&d, 1, 1);
    let l2 = lan(reg, p2, "");
    let text = wait_listing(&l2.router, "refusal on the LAN side", |t| {
        t.contains("refused")
    });
    assert!(text.contains("max_servers (1) reached"), "{text}");
    assert!(d.trace().contains("max_servers (1) reached"));
    let echo = ni_echo();
    let (_s, reply) = via(&d, p2, echo, 0);
    assert_ne!(reply, PONG, "the refused server must not be reachable");
}

#[test]
fn a_stalled_session_does_not_stall_its_neighbour_on_the_same_link() {
    stalled_session_beside_a_neighbour("");
}

#[test]
fn a_stalled_session_does_not_stall_its_neighbour_on_a_linkmux_link() {
    stalled_session_beside_a_neighbour("link_protocol = linkmux\n");
}

/// A session whose client never reads, and a neighbour on the same link (the LAN router's
/// `-i` file with `lan_extra`) that must echo 8 MiB within a step all the same.
fn stalled_session_beside_a_neighbour(lan_extra: &str) {
    let reg = free_port();
    let pseudo = free_port();
    // A target that sends without end to a client that never reads.
    let flood = spawn_server(|mut s| {
        let chunk = vec![0x55u8; 64 * 1024];
        while s.write_all(&chunk).is_ok() {}
    });
    let raw = raw_echo();
    let d = dmz(reg, "conn_pool_size = 1\n", &[pseudo]);
    let _l = lan_raw(reg, pseudo, lan_extra, &[flood, raw]);
    wait_registered(&d, 1, 1);
    let (_stalled, reply) = via(&d, pseudo, flood, 1);
    assert_eq!(reply, PONG);
    let (s, reply) = via(&d, pseudo, raw, 1);
    assert_eq!(reply, PONG);
    let data = pattern(8 << 20, 1);
    let mut writer = s.try_clone().unwrap();
    let sent = data.clone();
    let started = Instant::now();
    let t = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut reader = s;
    reader.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    let took = started.elapsed();
    assert!(got == data);
    assert!(took < STEP, "neighbour took {took:?}");
    println!("8 MiB echoed beside a stalled stream in {took:?}");
}

#[test]
fn exclusive_refuses_next_hops_that_are_not_registered() {
    let reg = free_port();
    let closed = free_port();
    // SAP's default (exclusive = yes): the table permits the hop, yet nothing registered it.
    let d = dmz(reg, "", &[closed]);
    let hops = [(L, "", ""), (L, &closed.to_string()[..], ""), (L, "1", "")];
    let err = rterr(&ask_route(&d.router, &hops, 0).1);
    assert_eq!(err.rc, -94, "{err:?}");
    assert!(err.error().contains("route permission denied"), "{err:?}");
    assert!(
        err.detail().contains("exclusive reverse invoke refused"),
        "{err:?}"
    );
    assert!(listing(&d.router).contains("exclusive YES"));
}

#[test]
fn no_registered_server_means_an_error_within_w() {
    let reg = free_port();
    let closed = free_port();
    // exclusive = no: the table alone decides, and an unregistered hop is an ordinary host.
    let d = dmz(reg, "exclusive = no\n", &[closed]);
    assert!(listing(&d.router).contains("exclusive NO"));
    let started = Instant::now();
    let hops = [(L, "", ""), (L, &closed.to_string()[..], ""), (L, "1", "")];
    let err = rterr(&ask_route(&d.router, &hops, 0).1);
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert!([-92, -5].contains(&err.rc), "TCP to the hop: {err:?}");
    // What the table denies stays denied.
    let hops = [(L, "", ""), (L, "9", ""), (L, "1", "")];
    let err = rterr(&ask_route(&d.router, &hops, 0).1);
    assert_eq!(err.rc, -94, "{err:?}");
    assert!(!err.detail().contains("exclusive"), "{err:?}");
}

#[test]
fn port_forwarder_routes_every_raw_connection() {
    let reg = free_port();
    let pseudo = free_port();
    let raw = raw_echo();
    let d = dmz(
        reg,
        &format!("route = /H/{L}/S/3299/H/{L}/S/{pseudo}/H/{L}/S/{raw}\n"),
        &[pseudo],
    );
    let _l = lan_raw(reg, pseudo, "", &[raw]);
    // -l is not answered in port-forwarder mode (every connection is forwarded); wait for
    // the registration in the DMZ trace instead.
    let start = Instant::now();
    while !d.trace().contains("LAN router registered") {
        assert!(start.elapsed() < STEP, "no registration");
        thread::sleep(Duration::from_millis(50));
    }
    let mut s = d.router.connect();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"GET / HTTP/1.0\r\n\r\n", "no NI_PONG, just the bytes");
}

#[test]
fn the_scenario_samples_load() {
    use saprouter::ri::params::{self, RiParams};
    use saprouter::routtab::{RoutTab, SystemResolver};
    use saprouter::services::Services;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("routtab-samples/reverse-invoke");
    let services = Services::system();
    match params::load(&dir.join("cf1"), &services).expect("cf1") {
        RiParams::Client(c) => {
            assert_eq!(c.service, 5001);
            assert_eq!((c.max_servers, c.conn_pool_size), (1, 3));
        }
        other => panic!("cf1 is not a client file: {other:?}"),
    }
    match params::load(&dir.join("cf2"), &services).expect("cf2") {
        RiParams::Server(s) => {
            assert_eq!(s.client_hostname, "10.200.0.1");
            assert_eq!((s.client_service, s.reg_service), (5001, 5002));
        }
        other => panic!("cf2 is not a server file: {other:?}"),
    }
    for table in ["saprouttab-dmz", "saprouttab-lan"] {
        let t = RoutTab::load(
            &dir.join(table),
            &SystemResolver::with_services(services.clone()),
        )
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(t.entries.len(), if table.ends_with("dmz") { 2 } else { 3 });
    }
}
