//! SNC as TLS with the real binary on 127.0.0.1: `-K` identities, K* lines matched on the
//! authenticated name, KT hops between two routers, and every failure closed, explained in
//! `dev_rout`, and harmless to the next client.

mod common;
mod tls_support;

use std::io::Write;
use std::process::Command;

use common::*;
use tls_support::snc_router::*;
use tls_support::*;

fn hops<'a>(r: &'a str, target: &'a str) -> [(&'a str, &'a str, &'a str); 2] {
    [(L, r, ""), (L, target, "")]
}

/// A TLS client with `files` routes through `r` to the NI echo on `echo` and gets its frames
/// back.
fn tls_echo_works(r: &TestRouter, files: &saprouter::tls::SncFiles, echo: u16) {
    let mut s = tls_connect(r.port, files).expect("TLS handshake");
    let reply = route_over(&mut s, &hops(&r.port.to_string(), &echo.to_string())).unwrap();
    assert_eq!(reply, PONG, "{:?}", String::from_utf8_lossy(&reply));
    for n in [1usize, 10024, 100_000] {
        let data = pattern(n, n);
        send_frame(&mut s, &data).unwrap();
        assert_eq!(recv_frame(&mut s).unwrap(), data, "frame of {n} bytes");
    }
}

/// A plain client routes through `r` to `echo` (proves the router still serves).
fn plain_echo_works(r: &TestRouter, echo: u16) {
    let (mut s, reply) = ask_route(r, &hops(&r.port.to_string(), &echo.to_string()), 0);
    assert_eq!(reply, PONG);
    s.write_all(&frame(b"still here")).unwrap();
    assert_eq!(read_frame(&mut s), b"still here");
}

/// A TLS client's route attempt that must not stand: the reply (if any) is not `NI_PONG`.
fn tls_route_fails(r: &TestRouter, files: &saprouter::tls::SncFiles, echo: u16) {
    let outcome = tls_connect(r.port, files)
        .and_then(|mut s| route_over(&mut s, &hops(&r.port.to_string(), &echo.to_string())));
    if let Ok(reply) = outcome {
        assert_ne!(reply, PONG, "route stood");
    }
}

#[test]
fn tls_client_with_a_kp_name_routes_end_to_end() {
    let s = setup();
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let table = format!("KP \"p:CN=CLIENT\" {L} {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    tls_echo_works(&r, &client, echo);
    let log = wait_trace(&r, "TLS peer authenticated");
    assert!(log.contains("snc_name=p:CN=CLIENT"), "{log}");
    // K lines never match a plaintext connection.
    let e = refused(&r, &hops(&r.port.to_string(), &echo.to_string()), 0);
    assert_eq!(e.rc, -94);
}

#[test]
fn kp_for_another_name_is_denied() {
    let s = setup();
    let intruder = s.pki.identity("intruder", &s.ca, "INTRUDER", &s.ca, false);
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let table = format!("KP \"p:CN=CLIENT\" * {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    let mut conn = tls_connect(r.port, &intruder).expect("handshake with a valid certificate");
    let reply = route_over(&mut conn, &hops(&r.port.to_string(), &echo.to_string())).unwrap();
    let e = rterr(&reply);
    assert_eq!(e.rc, -94, "{}", e.detail());
    let log = wait_trace(&r, "route permission denied");
    assert!(log.contains("p:CN=INTRUDER"), "{log}");
    tls_echo_works(&r, &client, echo);
}

#[test]
fn a_certificate_from_another_ca_fails_closed() {
    let s = setup();
    let other_ca = Ca::new("Other CA");
    // Issued by the other CA; the client itself trusts the router's CA.
    let stranger = s
        .pki
        .identity("stranger", &other_ca, "CLIENT", &s.ca, false);
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let table = format!("KP * * {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    tls_route_fails(&r, &stranger, echo);
    let log = wait_trace(&r, "TLS handshake failed");
    assert!(log.contains("not issued by a trusted CA"), "{log}");
    tls_echo_works(&r, &client, echo);
}

#[test]
fn a_router_from_another_ca_is_not_trusted_by_the_client() {
    let s = setup();
    let other_ca = Ca::new("Other CA");
    // The client trusts only the other CA, so the router's certificate does not verify.
    let client = s.pki.identity("client", &s.ca, "CLIENT", &other_ca, false);
    let r = start_snc("KP * * *\n", "p:CN=SAPROUTER1", &s.router);
    let err = tls_connect(r.port, &client)
        .map(|_| ())
        .expect_err("the client must refuse the router");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    wait_trace(&r, "TLS handshake failed");
}

#[test]
fn an_expired_certificate_fails_closed() {
    let s = setup();
    let expired = s.pki.identity("expired", &s.ca, "CLIENT", &s.ca, true);
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let table = format!("KP * * {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    tls_route_fails(&r, &expired, echo);
    let log = wait_trace(&r, "TLS handshake failed");
    assert!(
        log.contains("peer certificate expired on 2020-01-01 00:00:00 UTC"),
        "{log}"
    );
    tls_echo_works(&r, &client, echo);
}

#[test]
fn a_client_without_a_certificate_fails_closed() {
    let s = setup();
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let table = format!("KP * * {echo}\nP * * {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    let outcome = tls_connect_with(r.port, anonymous_client())
        .and_then(|mut c| route_over(&mut c, &hops(&r.port.to_string(), &echo.to_string())));
    assert!(outcome.is_err(), "no fallback: {outcome:?}");
    let log = wait_trace(&r, "TLS handshake failed");
    assert!(log.contains("presented no certificate"), "{log}");
    tls_echo_works(&r, &client, echo);
    plain_echo_works(&r, echo);
}

#[test]
fn plaintext_from_a_kt_host_is_refused() {
    let s = setup();
    let client = s.pki.identity("client", &s.ca, "CLIENT", &s.ca, false);
    let other = s.pki.identity("other", &s.ca, "OTHER", &s.ca, false);
    let echo = ni_echo();
    // Connections from 127.0.0.1 must be SNC as CN=CLIENT (the KT service concerns the
    // outbound hop to 127.0.0.1:1 only).
    let table = format!("KT \"p:CN=CLIENT\" {L} 1\nP * * {echo}\nD * * *\n");
    let r = start_snc(&table, "p:CN=SAPROUTER1", &s.router);
    let e = refused(&r, &hops(&r.port.to_string(), &echo.to_string()), 0);
    assert_eq!(e.rc, -104, "{}", e.detail());
    assert!(e.detail().contains("plaintext"), "{}", e.detail());
    let log = wait_trace(&r, "SNC source check failed");
    assert!(log.contains("KT line 1"), "{log}");
    // Over TLS, but with another name: refused too.
    let mut conn = tls_connect(r.port, &other).unwrap();
    let reply = route_over(&mut conn, &hops(&r.port.to_string(), &echo.to_string())).unwrap();
    let e = rterr(&reply);
    assert_eq!(e.rc, -104);
    assert!(e.detail().contains("p:CN=OTHER"), "{}", e.detail());
    // The right name passes.
    tls_echo_works(&r, &client, echo);
}

/// Two routers: R1 (`-K p:CN=SAPROUTER1`) with a KT line for R2 on 127.0.0.2, R2 with
/// `-K <r2_name>` permitting SAPROUTER1 by KP. Returns (r1, r2, echo).
fn chain(r2_cn: &str) -> (Setup, TestRouter, TestRouter, u16) {
    let s = setup();
    let r2_files = s.pki.identity("r2", &s.ca, r2_cn, &s.ca, false);
    let echo = ni_echo();
    let r2 = start_snc(
        &format!("KP \"p:CN=SAPROUTER1\" {L} {echo}\nD * * *\n"),
        &format!("p:CN={r2_cn}"),
        &r2_files,
    );
    let r1_table = format!(
        "KT \"p:CN=SAPROUTER2\" {L2} {p}\nP {L} {L2} {p}\nP {L} {L} {echo}\nD * * *\n",
        p = r2.port
    );
    let r1 = start_snc(&r1_table, "p:CN=SAPROUTER1", &s.router);
    (s, r1, r2, echo)
}

fn through_both(r1: &TestRouter, r2: &TestRouter, echo: u16) -> (std::net::TcpStream, Vec<u8>) {
    let (p1, p2, pe) = (r1.port.to_string(), r2.port.to_string(), echo.to_string());
    ask_route(r1, &[(L, &p1, ""), (L2, &p2, ""), (L, &pe, "")], 0)
}

#[test]
fn router_to_router_hop_is_tls_with_the_kt_name() {
    let (_s, r1, r2, echo) = chain("SAPROUTER2");
    let (mut c, reply) = through_both(&r1, &r2, echo);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    for n in [0usize, 1, 10024, 1 << 20] {
        let data = pattern(n, n + 1);
        c.write_all(&frame(&data)).unwrap();
        assert_eq!(read_frame(&mut c), data, "frame of {n} bytes");
    }
    let log1 = wait_trace(&r1, "SNC (TLS) hop authenticated");
    assert!(log1.contains("snc_name=p:CN=SAPROUTER2"), "{log1}");
    let log2 = wait_trace(&r2, "TLS peer authenticated");
    assert!(log2.contains("snc_name=p:CN=SAPROUTER1"), "{log2}");
}

#[test]
fn kt_hop_to_a_router_with_another_name_fails_closed() {
    let (_s, r1, r2, echo) = chain("SAPROUTER3");
    let (_c, reply) = through_both(&r1, &r2, echo);
    let e = rterr(&reply);
    assert_eq!(e.rc, -104, "{}", e.detail());
    assert!(e.detail().contains("p:CN=SAPROUTER3"), "{}", e.detail());
    let log = wait_trace(&r1, "SNC hop failed");
    assert!(
        log.contains("the KT line requires p:cn=SAPROUTER2"),
        "{log}"
    );
    plain_echo_works(&r1, echo);
}

#[test]
fn kt_hop_to_a_plaintext_router_fails_closed() {
    let s = setup();
    let echo = ni_echo();
    let plain = TestRouter::start(&format!("P * * {echo}\n"), &[]);
    let r1_table = format!(
        "KT \"p:CN=SAPROUTER2\" {L2} {p}\nP {L} {L2} {p}\nP {L} {L} {echo}\nD * * *\n",
        p = plain.port
    );
    let r1 = start_snc(&r1_table, "p:CN=SAPROUTER1", &s.router);
    let (_c, reply) = through_both(&r1, &plain, echo);
    let e = rterr(&reply);
    assert_eq!(e.rc, -104, "{}", e.detail());
    wait_trace(&r1, "SNC hop failed");
    plain_echo_works(&r1, echo);
}

#[test]
fn kt_hop_without_k_fails_closed() {
    let echo = ni_echo();
    let r = TestRouter::start(
        &format!("KT \"p:CN=X\" {L2} {echo}\nP * * {echo}\nD * * *\n"),
        &[],
    );
    let (p, pe) = (r.port.to_string(), echo.to_string());
    let e = refused(&r, &[(L, &p, ""), (L2, &pe, "")], 0);
    assert_eq!(e.rc, -104);
    assert!(e.detail().contains("without -K"), "{}", e.detail());
    plain_echo_works(&r, echo);
}

/// SAP's own SNC handshake: control opcode 70 with an SNCFRAME.
fn sap_snc_request() -> Vec<u8> {
    let mut m = b"NI_RTERR\0".to_vec();
    m.extend_from_slice(&[40, 70, 0]);
    m.extend_from_slice(&0i32.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(b"SNCFRAME");
    m.extend_from_slice(&[2, 5, 0, 24]);
    m.extend_from_slice(&[0; 12]);
    m
}

#[test]
fn sap_snc_opcode_70_gets_104_naming_tls() {
    let s = setup();
    let echo = ni_echo();
    for r in [
        TestRouter::start(&format!("P * * {echo}\n"), &[]),
        start_snc(&format!("P * * {echo}\n"), "p:CN=SAPROUTER1", &s.router),
    ] {
        let mut c = r.connect();
        c.write_all(&frame(&sap_snc_request())).unwrap();
        let e = rterr(&read_frame(&mut c));
        assert_eq!(e.rc, -104);
        assert!(e.detail().contains("TLS"), "{}", e.detail());
        wait_trace(&r, "SAP SNC handshake refused");
        plain_echo_works(&r, echo);
    }
}

#[test]
fn tls_on_a_router_without_k_gets_the_plain_answer() {
    let echo = ni_echo();
    let r = TestRouter::start(&format!("P * * {echo}\n"), &[]);
    let mut c = r.connect();
    // The start of a ClientHello record: read as an NI length it is far too big.
    c.write_all(&[
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ])
    .unwrap();
    let e = rterr(&read_frame(&mut c));
    assert_eq!(e.rc, -93);
    wait_trace(&r, "TLS handshake on a router without -K");
    plain_echo_works(&r, echo);
}

#[test]
fn a_stalled_handshake_ends_at_the_w_deadline() {
    let s = setup();
    let mut args = vec!["-K", "p:CN=SAPROUTER1", "-W", "500"];
    let snc = snc_args(&s.router);
    args.extend(snc.iter().map(String::as_str));
    let r = TestRouter::start("P * * *\n", &args);
    let mut c = r.connect();
    c.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a plaintext answer");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    wait_trace(&r, "handshake not finished within the -W timeout");
}

#[test]
fn make_test_pki_certificates_carry_a_router_to_router_hop() {
    if !tool_available("openssl") {
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-test-pki.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(pki.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let files = |router: &str| saprouter::tls::SncFiles {
        cert: pki.path().join(router).join("saprouter.crt"),
        key: pki.path().join(router).join("saprouter.key"),
        ca: pki.path().join(router).join("ca.crt"),
    };
    let echo = ni_echo();
    let r2 = start_snc(
        &format!("KP \"p:CN=SAPROUTER1\" * {echo}\nD * * *\n"),
        "p:CN=SAPROUTER2",
        &files("saprouter2"),
    );
    let r1 = start_snc(
        &format!(
            "KT \"p:CN=SAPROUTER2\" {L2} {p}\nP * {L2} {p}\nD * * *\n",
            p = r2.port
        ),
        "p:CN=SAPROUTER1",
        &files("saprouter1"),
    );
    let (mut c, reply) = through_both(&r1, &r2, echo);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    c.write_all(&frame(b"openssl-made")).unwrap();
    assert_eq!(read_frame(&mut c), b"openssl-made");
}

#[test]
fn raw_bytes_and_half_close_cross_the_tls_hop() {
    use std::io::Read;
    let s = setup();
    let r2_files = s.pki.identity("r2", &s.ca, "SAPROUTER2", &s.ca, false);
    let echo = raw_echo();
    let r2 = start_snc(
        &format!("KP \"p:CN=SAPROUTER1\" {L} {echo}\nD * * *\n"),
        "p:CN=SAPROUTER2",
        &r2_files,
    );
    let r1 = start_snc(
        &format!(
            "KT \"p:CN=SAPROUTER2\" {L2} {p}\nP * {L2} {p}\nD * * *\n",
            p = r2.port
        ),
        "p:CN=SAPROUTER1",
        &s.router,
    );
    let (p1, p2, pe) = (r1.port.to_string(), r2.port.to_string(), echo.to_string());
    let (c, reply) = ask_route(&r1, &[(L, &p1, ""), (L2, &p2, ""), (L, &pe, "")], 1);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    let data = pattern(2 << 20, 5);
    let mut writer = c.try_clone().unwrap();
    let sent = data.clone();
    let t = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut reader = c;
    reader.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes lost, duplicated or reordered");
}

#[test]
fn a_next_router_that_does_not_trust_us_fails_closed() {
    let s = setup();
    let other_ca = Ca::new("Other CA");
    // R2's certificate is from the shared CA (R1 trusts it), but R2 trusts only the other
    // CA, so it refuses R1's certificate.
    let r2_files = s.pki.identity("r2", &s.ca, "SAPROUTER2", &other_ca, false);
    let echo = ni_echo();
    let r2 = start_snc(
        &format!("KP * {L} {echo}\nD * * *\n"),
        "p:CN=SAPROUTER2",
        &r2_files,
    );
    let r1 = start_snc(
        &format!(
            "KT \"p:CN=SAPROUTER2\" {L2} {p}\nP * {L2} {p}\nP * {L} {echo}\nD * * *\n",
            p = r2.port
        ),
        "p:CN=SAPROUTER1",
        &s.router,
    );
    let (_c, reply) = through_both(&r1, &r2, echo);
    assert_ne!(reply, PONG);
    let e = rterr(&reply);
    assert_eq!(e.rc, -104, "{}", e.detail());
    assert!(e.detail().contains("refused this router"), "{}", e.detail());
    let log = wait_trace(&r2, "TLS handshake failed");
    assert!(log.contains("not issued by a trusted CA"), "{log}");
    wait_trace(&r1, "route refused");
    plain_echo_works(&r1, echo);
}

#[test]
fn queue_and_pending_options_apply_with_k_too() {
    // -B/-Q and the --max-* options were once parsed only without -K.
    let s = setup();
    let mut args = vec!["-K".to_string(), "p:CN=SAPROUTER1".to_string()];
    args.extend(snc_args(&s.router));
    args.extend(
        [
            "-B",
            "8",
            "-Q",
            "26214400000",
            "-C",
            "100000",
            "--max-connecting",
            "7",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = TestRouter::start("P * * *\n", &refs);
    let out = r.admin(&["-l"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Relay queues        : 262144 bytes per client"),
        "{text}"
    );
    assert!(text.contains("7 at once (--max-connecting)"), "{text}");
}

/// With `--penalty`, a failed TLS handshake counts: the address is then closed at accept.
#[test]
fn failed_handshakes_count_towards_a_penalty() {
    let s = setup();
    let other_ca = Ca::new("Other CA");
    let stranger = s
        .pki
        .identity("stranger", &other_ca, "CLIENT", &s.ca, false);
    let echo = ni_echo();
    let mut args = vec!["-K", "p:CN=SAPROUTER1", "--penalty", "1/60"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(snc_args(&s.router));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = TestRouter::start(&format!("KP * * {echo}\nD * * *\n"), &refs);
    tls_route_fails(&r, &stranger, echo);
    wait_trace(&r, "address penalised");
    let mut c = r.connect();
    let _ = c.write_all(&frame(&route(
        &hops(&r.port.to_string(), &echo.to_string()),
        0,
    )));
    assert!(
        closed_without_answer(&mut c),
        "a penalised address got an answer"
    );
}
