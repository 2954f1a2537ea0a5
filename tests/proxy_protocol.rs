//! PROXY protocol from load balancers (`--proxy-from`) against the real binary on
//! loopback: the "balancer" connects from 127.0.0.2 (listed), other peers from 127.0.0.1
//! (not listed). Headers decide the table, name the client in `-G`, `-l` and the trace,
//! and carry the per-source caps and penalties; hostile headers close the connection and
//! leave the router serving; a header from an unlisted peer is never trusted. The last
//! test puts real haproxy (`send-proxy`, `send-proxy-v2`) in front of the router.

mod common;
mod tls_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";
/// The listed balancer's address.
const BALANCER: &str = "127.0.0.2";

/// A connection to the router on 127.0.0.1:`port` from `source`.
fn connect_from(source: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    sock.bind(&from.into()).expect("bind a loopback source");
    sock.connect(&local(port).into()).expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(STEP)).ok();
    s.set_nodelay(true).ok();
    s
}

/// A version 1 header for an IPv4 client.
fn v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 198.51.100.1 {port} 3299\r\n").into_bytes()
}

/// A version 2 header: version/command byte, family/protocol byte, body.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend_from_slice(&[ver_cmd, fam]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A version 2 PROXY header for an IPv4 TCP client, with `tlvs` behind the addresses.
fn v2_tcp4(client: [u8; 4], port: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut body = client.to_vec();
    body.extend_from_slice(&[198, 51, 100, 1]);
    body.extend_from_slice(&port.to_be_bytes());
    body.extend_from_slice(&3299u16.to_be_bytes());
    body.extend_from_slice(tlvs);
    v2(0x21, 0x11, &body)
}

/// The route through `r` to the NI echo on `echo`.
fn echo_route(r: &TestRouter, echo: u16) -> Vec<u8> {
    frame(&route(
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    ))
}

/// Sends `header` and the route in one write, from the balancer; returns the reply.
fn via_balancer(r: &TestRouter, header: &[u8], echo: u16) -> (TcpStream, Vec<u8>) {
    let mut s = connect_from(BALANCER, r.port);
    let mut bytes = header.to_vec();
    bytes.extend(echo_route(r, echo));
    s.write_all(&bytes).unwrap();
    let reply = read_frame(&mut s);
    (s, reply)
}

/// The route stands and data flows both ways.
fn routes(r: &TestRouter, header: &[u8], echo: u16) -> TcpStream {
    let (mut s, reply) = via_balancer(r, header, echo);
    assert_eq!(reply, PONG, "{:?}", String::from_utf8_lossy(&reply));
    s.write_all(&frame(b"through the balancer")).unwrap();
    assert_eq!(read_frame(&mut s), b"through the balancer");
    s
}

/// Waits until the file `name` in the router's directory contains `needle`.
fn wait_file(r: &TestRouter, name: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = read_text(&r.path(name));
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < STEP,
            "{name} has no {needle:?}; it holds:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn start(table: &str, extra: &[&str]) -> TestRouter {
    let mut args = vec!["-D", "-G", "connlog", "--proxy-from", BALANCER];
    args.extend_from_slice(extra);
    TestRouter::start(table, &args)
}

const TABLE: &str = "D 192.0.2.66 * *\nP * * *\n";

#[test]
fn headers_decide_the_table_and_name_the_client() {
    let r = start(TABLE, &[]);
    let echo = ni_echo();
    // Version 1, header and route in one segment: the route behind the header is intact.
    let held = routes(&r, &v1("192.0.2.10", 40001), echo);
    let (_s, reply) = via_balancer(&r, &v1("192.0.2.66", 40002), echo);
    let e = rterr(&reply);
    assert_eq!(
        e.rc,
        -94,
        "the D line for 192.0.2.66 decides: {}",
        e.detail()
    );
    // Version 2, one for each verdict.
    let _v2 = routes(&r, &v2_tcp4([192, 0, 2, 11], 40003, &[]), echo);
    let (_s, reply) = via_balancer(&r, &v2_tcp4([192, 0, 2, 66], 40004, &[]), echo);
    assert_eq!(rterr(&reply).rc, -94);
    // A header dripped a byte at a time is reassembled.
    let mut s = connect_from(BALANCER, r.port);
    for b in v1("192.0.2.12", 40005) {
        s.write_all(&[b]).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    s.write_all(&echo_route(&r, echo)).unwrap();
    assert_eq!(read_frame(&mut s), PONG, "dripped header");

    // -G names the clients, never the balancer.
    let log = wait_file(&r, "connlog", "host 192.0.2.12/40005");
    for needle in [
        "CONNECT FROM C",
        "host 192.0.2.10/40001",
        "host 192.0.2.66/40002",
        "host 192.0.2.11/40003",
        "host 192.0.2.66/40004",
        "PERM DENIED",
    ] {
        assert!(log.contains(needle), "-G has no {needle:?}:\n{log}");
    }
    assert!(!log.contains(BALANCER), "-G names the balancer:\n{log}");
    // The trace ties the client to its balancer and records the header's destination.
    let trace = wait_trace(&r, "client=192.0.2.10:40001");
    assert!(
        trace.contains("destination=198.51.100.1:3299") && trace.contains("balancer=127.0.0.2:"),
        "{trace}"
    );
    // -l: the setting, and the client of the session still open.
    let out = r.admin(&["-l"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("PROXY protocol      : required from 127.0.0.2/32 (--proxy-from)"),
        "{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(rows.iter().any(|l| l.contains("192.0.2.10 ")), "{text}");
    assert!(!rows.iter().any(|l| l.contains(BALANCER)), "{text}");
    drop(held);
}

#[test]
fn hostile_headers_close_and_leave_the_router_serving() {
    let r = start(TABLE, &["-W", "2000"]);
    let echo = ni_echo();
    let silent_close = |bytes: &[u8], what: &str| -> Duration {
        let mut s = connect_from(BALANCER, r.port);
        let start = Instant::now();
        s.write_all(bytes).unwrap();
        assert!(closed_without_answer(&mut s), "{what}: an answer");
        start.elapsed()
    };
    // Truncated, then silence: closed at -W.
    let full = v2_tcp4([192, 0, 2, 20], 1, &[]);
    for (what, bytes) in [
        ("truncated v2", &full[..20]),
        ("truncated v1", &b"PROXY TCP4 192.0.2.20 "[..]),
        ("v2 signature only", &full[..12]),
    ] {
        let took = silent_close(bytes, what);
        assert!(
            took >= Duration::from_millis(1800) && took < Duration::from_millis(4000),
            "{what}: closed after {took:?}"
        );
    }
    wait_trace(&r, "no complete header within -W");
    // Oversized, invalid, or no address: closed at once, long before -W.
    let mut too_long_v2 = v2_tcp4([192, 0, 2, 21], 1, &[]);
    too_long_v2[14..16].copy_from_slice(&[0xff, 0xff]);
    let mut just_over = v2_tcp4([192, 0, 2, 21], 1, &[]);
    just_over[14..16].copy_from_slice(&(4096u16 - 16 + 1).to_be_bytes());
    let mut long_v1 = b"PROXY TCP4 ".to_vec();
    long_v1.resize(200, b'1');
    for (what, bytes, logged) in [
        (
            "v2 length 65535",
            too_long_v2,
            "version 2 header of 65551 bytes",
        ),
        (
            "v2 length 4081",
            just_over,
            "version 2 header of 4097 bytes",
        ),
        ("v1 without CRLF", long_v1, "without CRLF within 107 bytes"),
        (
            "unknown family",
            v2(0x21, 0x41, &[0; 12]),
            "invalid version 2 header",
        ),
        (
            "version 3",
            v2(0x31, 0x11, &[0; 12]),
            "invalid version 2 header",
        ),
        (
            "PROXY with UNSPEC",
            v2(0x21, 0x00, &[]),
            "without a client IP address",
        ),
        (
            "v1 bad address",
            b"PROXY TCP4 192.0.2.300 1.2.3.4 1 2\r\n".to_vec(),
            "invalid version 1 header",
        ),
        (
            "plain NI route",
            echo_route(&r, echo),
            "not a PROXY protocol header",
        ),
    ] {
        let took = silent_close(&bytes, what);
        assert!(took < Duration::from_millis(1500), "{what}: took {took:?}");
        wait_trace(&r, logged);
    }
    // Extensions (TLVs) are skipped: PP2_TYPE_AUTHORITY, UNIQUE_ID, NOOP.
    let mut tlvs = vec![0x02, 0, 11];
    tlvs.extend_from_slice(b"example.com");
    tlvs.extend_from_slice(&[0x05, 0, 4, 1, 2, 3, 4, 0x04, 0, 2, 0, 0]);
    routes(&r, &v2_tcp4([192, 0, 2, 22], 40022, &tlvs), echo);
    // IPv6 clients too.
    let mut body = "2001:db8::22"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    body.extend_from_slice(&[0; 16]);
    body.extend_from_slice(&[0x9c, 0x40, 0x0c, 0xe3]);
    routes(&r, &v2(0x21, 0x21, &body), echo);
    wait_file(&r, "connlog", "host 2001:db8::22/40000");
    // An unlisted peer's header is an invalid first message like any other ("PROX" read as
    // a frame length): SAP's -93, and the peer stays 127.0.0.1.
    for header in [
        v1("192.0.2.10", 40030),
        v2_tcp4([192, 0, 2, 10], 40031, &[]),
    ] {
        let mut s = connect_from(L, r.port);
        let mut bytes = header;
        bytes.extend(echo_route(&r, echo));
        s.write_all(&bytes).unwrap();
        let e = rterr(&read_frame(&mut s));
        assert_eq!(e.rc, -93, "{}", e.detail());
        assert_eq!(e.error(), "Network packet too big");
    }
    let log = read_text(&r.path("connlog"));
    assert!(!log.contains("40030") && !log.contains("40031"), "{log}");
    assert!(log.contains("host 127.0.0.1/"), "{log}");
    // Still serving.
    routes(&r, &v1("192.0.2.23", 40023), echo);
}

#[test]
fn health_checks_close_quietly() {
    let r = start(TABLE, &[]);
    for (what, header) in [
        ("v2 LOCAL", v2(0x20, 0x00, &[])),
        ("v2 LOCAL with addresses", {
            let mut h = v2_tcp4([192, 0, 2, 1], 1, &[]);
            h[12] = 0x20;
            h
        }),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec()),
        (
            "v1 UNKNOWN with addresses",
            b"PROXY UNKNOWN ::1 ::1 1 2\r\n".to_vec(),
        ),
    ] {
        let mut s = connect_from(BALANCER, r.port);
        let start = Instant::now();
        s.write_all(&header).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).ok(), Some(0), "{what}: a clean close");
        assert!(start.elapsed() < Duration::from_secs(2), "{what}");
    }
    // Nothing in -G, nothing at the default trace level.
    // (TestRouter::start's readiness probe from 127.0.0.1 is the only connection logged.)
    let log = read_text(&r.path("connlog"));
    assert!(
        log.lines()
            .filter(|l| l.contains("CONNECT FROM"))
            .all(|l| l.contains("host 127.0.0.1/")),
        "{log}"
    );
    assert!(!log.contains(BALANCER), "{log}");
    let trace = read_text(&r.path("dev_rout"));
    assert!(!trace.contains(BALANCER), "{trace}");
}

#[test]
fn admin_relayed_for_a_remote_client_is_remote() {
    let r = start("P * * *\n", &[]);
    let mut stop = b"ROUTER_ADM\0\x28\x05".to_vec();
    stop.extend_from_slice(&[0; 40]);
    let mut s = connect_from(BALANCER, r.port);
    let mut bytes = v1("192.0.2.7", 40007);
    bytes.extend(frame(&stop));
    s.write_all(&bytes).unwrap();
    let e = rterr(&read_frame(&mut s));
    assert_eq!(e.rc, -94, "{}", e.error());
    assert!(e.detail().contains("192.0.2.7"), "{}", e.detail());
    wait_trace(&r, "admin request from a remote host refused");
    // The router did not stop: an admin request straight from this host is answered.
    let out = r.admin(&["-l"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn caps_and_penalties_follow_the_header_not_the_balancer() {
    let r = start(
        TABLE,
        &[
            "--penalty",
            "2/60",
            "--max-pending",
            "4",
            "--max-pending-per-source",
            "1",
        ],
    );
    let echo = ni_echo();
    // Two denials penalise 192.0.2.66; its next connection is closed unanswered ...
    for port in [1, 2] {
        let (_s, reply) = via_balancer(&r, &v1("192.0.2.66", port), echo);
        let e = rterr(&reply);
        assert_eq!(e.rc, -94, "{}", e.detail());
    }
    let mut s = connect_from(BALANCER, r.port);
    let mut bytes = v1("192.0.2.66", 3);
    bytes.extend(echo_route(&r, echo));
    s.write_all(&bytes).unwrap();
    assert!(closed_without_answer(&mut s), "penalised client");
    wait_trace(&r, "address under penalty");
    // ... while the balancer, and every other client behind it, is served.
    routes(&r, &v1("192.0.2.10", 4), echo);

    // The per-source cap counts the header's client. It bites once half the route phase
    // (4 places) is taken: two clients hold places without a route ...
    let mut held = Vec::new();
    for (client, port) in [("192.0.2.20", 5), ("192.0.2.21", 6)] {
        // The header, then the start of a route that never ends: the session waits.
        let mut s = connect_from(BALANCER, r.port);
        let mut bytes = v1(client, port);
        bytes.extend_from_slice(&[0, 0, 0, 100]);
        s.write_all(&bytes).unwrap();
        held.push(s);
    }
    let start = Instant::now();
    loop {
        let out = String::from_utf8_lossy(&r.admin(&["-l"]).stdout).into_owned();
        if out.contains("192.0.2.20 ") && out.contains("192.0.2.21 ") {
            break;
        }
        assert!(
            start.elapsed() < STEP,
            "the held clients never showed:\n{out}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // ... a second one from 192.0.2.20 is refused (-100, naming the client) ...
    let (_s, reply) = via_balancer(&r, &v1("192.0.2.20", 7), echo);
    let e = rterr(&reply);
    assert_eq!(e.rc, -100, "{}", e.detail());
    assert!(e.detail().contains("from 192.0.2.20 (1)"), "{}", e.detail());
    // ... and another client through the same balancer is not.
    routes(&r, &v1("192.0.2.22", 8), echo);
    drop(held);
}

#[test]
fn tls_follows_the_header() {
    use tls_support::*;
    let pki = Pki::new();
    let ca = Ca::new("Test CA");
    let router = pki.identity("r1", &ca, "SAPROUTER1", &ca, false);
    let client = pki.identity("client", &ca, "CLIENT", &ca, false);
    let mut args: Vec<String> = vec!["-K".into(), "p:CN=SAPROUTER1".into()];
    args.extend(snc_args(&router));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = start("P * * *\n", &refs);
    let echo = ni_echo();

    let mut sock = connect_from(BALANCER, r.port);
    sock.set_write_timeout(Some(STEP)).ok();
    sock.write_all(&v2_tcp4([192, 0, 2, 30], 40030, &[]))
        .unwrap();
    let config = saprouter::tls::SncTls::load(&client, None)
        .expect("client identity")
        .client_config();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("TLS after the header");
    }
    let hops = [(L, &*r.port.to_string()), (L, &*echo.to_string())];
    let reply = route_over(
        &mut tls,
        &[(hops[0].0, hops[0].1, ""), (hops[1].0, hops[1].1, "")],
    )
    .unwrap();
    assert_eq!(reply, PONG);
    send_frame(&mut tls, b"sealed").unwrap();
    assert_eq!(recv_frame(&mut tls).unwrap(), b"sealed");
    let trace = wait_trace(&r, "TLS peer authenticated");
    assert!(trace.contains("peer=192.0.2.30:40030"), "{trace}");
}

#[test]
fn bad_values_stop_the_start() {
    for value in [
        "10.0.0.0/33",
        "host.example",
        "10.0.0.1,,10.0.0.2",
        "::/200",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .args(["-r", "-S", &free_port().to_string(), "--proxy-from", value])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("--proxy-from") && first.contains(value),
            "{value}: {first}"
        );
    }
}

/// haproxy in the foreground with `cfg`; killed when dropped.
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn haproxy_send_proxy_v1_and_v2_carry_the_client() {
    if !tool_available("haproxy") {
        return;
    }
    // -V 2: health checks leave a debug line in the trace (and nothing in -G).
    let r = start("D 127.0.0.6 * *\nP * * *\n", &["-V", "2"]);
    let echo = ni_echo();
    let (front_v1, front_v2) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    // Health checks send the header too (v1: PROXY UNKNOWN, v2: LOCAL); they must keep the
    // servers up without a -G line.
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             listen v1\n  bind 127.0.0.1:{front_v1}\n  \
               server router 127.0.0.1:{port} source {BALANCER} send-proxy check inter 200ms check-send-proxy\n\
             listen v2\n  bind 127.0.0.1:{front_v2}\n  \
               server router 127.0.0.1:{port} source {BALANCER} send-proxy-v2 check inter 200ms check-send-proxy\n",
            port = r.port
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    // Killed when the test ends, also when haproxy never comes up.
    let haproxy = Haproxy(child);
    wait_listening(haproxy.0.id(), front_v1);
    wait_listening(haproxy.0.id(), front_v2);

    for (what, front, client) in [
        ("send-proxy", front_v1, "127.0.0.5"),
        ("send-proxy-v2", front_v2, "127.0.0.7"),
    ] {
        // haproxy may still hold the server down until its first check passes: retry.
        let start = Instant::now();
        let (mut s, reply) = loop {
            let mut s = connect_from(client, front);
            let _ = s.write_all(&echo_route(&r, echo));
            let mut head = [0u8; 4];
            if s.read_exact(&mut head).is_ok() {
                let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
                s.read_exact(&mut body).unwrap();
                break (s, body);
            }
            assert!(start.elapsed() < STEP, "{what}: haproxy never relayed");
            thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(reply, PONG, "{what}");
        s.write_all(&frame(b"via haproxy")).unwrap();
        assert_eq!(read_frame(&mut s), b"via haproxy");
        let port = s.local_addr().unwrap().port();
        wait_file(&r, "connlog", &format!("host {client}/{port}"));
        // A client the table denies is denied through haproxy too.
        let mut d = connect_from("127.0.0.6", front);
        d.write_all(&echo_route(&r, echo)).unwrap();
        assert_eq!(rterr(&read_frame(&mut d)).rc, -94, "{what}");
    }
    // Both kinds of check arrived and were taken as checks: v1 names the balancer's own
    // connection, v2 says LOCAL.
    wait_trace(&r, "health check (the balancer's own address)");
    wait_trace(&r, "health check (LOCAL/UNKNOWN)");
    let log = read_text(&r.path("connlog"));
    assert!(log.contains("host 127.0.0.6/"), "{log}");
    assert!(
        !log.contains(BALANCER),
        "health checks or relays logged as the balancer:\n{log}"
    );
}
