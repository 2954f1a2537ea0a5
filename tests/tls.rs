//! SNC as TLS with the real binary on 127.0.0.1: `-K` identities, K* lines matched on the
//! authenticated name, KT hops between two routers, and every failure closed, explained in
//! `dev_rout`, and harmless to the next client.

mod common;
mod tls_support;

use std::io::Write;
use std::process::Command;

use common::*;
use rcgen::DnType;
use tls_support::*;

const L: &str = "127.0.0.1";
/// A second loopback address: the KT tests' next router, so that a KT line naming it does
/// not also cover clients connecting from 127.0.0.1.
const L2: &str = "127.0.0.2";

struct Setup {
    pki: Pki,
    ca: Ca,
    router: saprouter::tls::SncFiles,
}

/// A CA and a router identity `CN=SAPROUTER1` trusting it.
fn setup() -> Setup {
    let pki = Pki::new();
    let ca = Ca::new("Test CA");
    let router = pki.identity("r1", &ca, "SAPROUTER1", &ca, false);
    Setup { pki, ca, router }
}

fn start_snc(table: &str, name: &str, files: &saprouter::tls::SncFiles) -> TestRouter {
    let mut args = vec!["-K".to_string(), name.to_string()];
    args.extend(snc_args(files));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    TestRouter::start(table, &refs)
}

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

/// Runs `saprouter -r -K name <args>` expecting a start-up failure; returns stderr.
fn start_fails(name: &str, args: &[String], secudir: Option<&std::path::Path>) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saprouttab"), "P * * *\n").unwrap();
    let port = free_port().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_saprouter"));
    cmd.current_dir(dir.path())
        .args(["-r", "-S", &port, "-K", name])
        .args(args)
        .env_remove("SECUDIR");
    if let Some(d) = secudir {
        cmd.env("SECUDIR", d);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn start_up_checks_the_identity() {
    let s = setup();
    let args = snc_args(&s.router);
    // The certificate is somebody else's.
    let err = start_fails("p:CN=SAPROUTER2", &args, None);
    assert!(err.contains("issued to \"p:CN=SAPROUTER1\""), "{err}");
    // No files and no SECUDIR.
    let err = start_fails("p:CN=SAPROUTER1", &[], None);
    assert!(err.contains("SECUDIR is not set"), "{err}");
    // SECUDIR without the files.
    let empty = tempfile::tempdir().unwrap();
    let err = start_fails("p:CN=SAPROUTER1", &[], Some(empty.path()));
    assert!(err.contains("saprouter.crt"), "{err}");
    // A key that is not the certificate's.
    let other = s.pki.identity("other", &s.ca, "OTHER", &s.ca, false);
    let mut mixed = args.clone();
    mixed[3] = other.key.to_string_lossy().into_owned();
    let err = start_fails("p:CN=SAPROUTER1", &mixed, None);
    assert!(err.contains("does not belong"), "{err}");
    // Not an X.509 name.
    let err = start_fails("CN=SAPROUTER1", &args, None);
    assert!(err.contains("p:<distinguished name>"), "{err}");
}

#[test]
fn secudir_holds_the_default_files_and_names_compare_normalised() {
    let s = setup();
    let secudir = tempfile::tempdir().unwrap();
    for (from, to) in [
        (&s.router.cert, "saprouter.crt"),
        (&s.router.key, "saprouter.key"),
        (&s.router.ca, "ca.crt"),
    ] {
        std::fs::copy(from, secudir.path().join(to)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saprouttab"), "P * * *\n").unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir.path())
        .args(["-r", "-S", &port.to_string(), "-K", "p: cn = SAPROUTER1"])
        .env("SECUDIR", secudir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect((L, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("router exited: {status}");
        }
        assert!(start.elapsed() < STEP, "router did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = read_text(&dir.path().join("dev_rout"));
    assert!(log.contains("snc_name=p:CN=SAPROUTER1"), "{log}");
}

#[test]
fn multi_rdn_subjects_are_rfc4514_names() {
    let ca = Ca::new("Test CA");
    let (cert, _) = ca.issue(
        &[
            (DnType::CountryName, "DE"),
            (DnType::OrganizationName, "SAP"),
            (DnType::OrganizationalUnitName, "SAProuter"),
            (DnType::CommonName, "sapserv9, x"),
        ],
        false,
    );
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c)
        .unwrap();
    let name = saprouter::tls::snc_name_of(&der).unwrap();
    assert_eq!(name, "p:CN=sapserv9\\, x,OU=SAProuter,O=SAP,C=DE");
    let kp = saprouter::routtab::SncName::new("p:CN=sapserv9\\, x, OU=SAProuter, O=SAP, C=DE");
    assert!(kp.matches(&name));
}

#[test]
fn the_snc_scenario_samples_mean_what_they_say() {
    use saprouter::routtab::{Decision, RoutTab, RouteQuery, SncName, SystemResolver};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("routtab-samples")
        .join("reverse-invoke-snc");
    let resolver = SystemResolver::with_services(saprouter::services::Services::system());
    let load = |name: &str| RoutTab::load(&dir.join(name), &resolver).unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let query = |source: &str, snc: Option<&'static str>, dest: &str, port| RouteQuery {
        source: ip(source),
        snc_name: snc,
        destination: ip(dest),
        port,
        passwords: &[],
        raw: false,
        routers_before: 0,
        routers_after: 1,
    };
    let permitted = |d: Decision| matches!(d, Decision::Permit { .. });

    let dmz = load("saprouttab-dmz");
    assert_eq!(
        dmz.snc_target(ip("10.200.0.2"), 5002),
        Some(&SncName::new("p:CN=SAPROUTER2"))
    );
    assert!(permitted(dmz.decide(&query(
        "192.0.2.7",
        None,
        "10.200.0.2",
        5002
    ))));
    assert!(!permitted(dmz.decide(&query(
        "192.0.2.7",
        None,
        "10.200.0.3",
        5002
    ))));

    let lan = load("saprouttab-lan");
    let from_dmz = |snc, port| lan.decide(&query("10.200.0.1", snc, "127.0.0.1", port));
    assert!(permitted(from_dmz(Some("p:CN=SAPROUTER1"), 3201)));
    assert!(permitted(from_dmz(Some("p:CN=SAPROUTER1"), 4001)));
    assert!(!permitted(from_dmz(Some("p:CN=SAPROUTER1"), 3200)));
    assert!(!permitted(from_dmz(Some("p:CN=ROGUE"), 3201)));
    assert!(!permitted(from_dmz(None, 3201)));
    for cf in ["cf1", "cf2", "README.md"] {
        assert!(dir.join(cf).is_file(), "{cf} missing");
    }
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

/// A certificate for `CN=<cn>` issued by `ca` as `openssl x509 -req` without an extension
/// file makes it (X.509 version 1 with OpenSSL 3.0), with its key and `ca` as the CA file.
fn openssl_v1(pki: &Pki, ca: &Ca, tag: &str, cn: &str) -> saprouter::tls::SncFiles {
    let path = |ext: &str| pki.dir.path().join(format!("{tag}.{ext}"));
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    std::fs::write(path("ca.crt"), ca.pem()).unwrap();
    std::fs::write(path("ca.key"), ca.key_pem()).unwrap();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &s(&path("key")),
        "-out",
        &s(&path("csr")),
        "-subj",
        &format!("/CN={cn}"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&path("csr")),
        "-CA",
        &s(&path("ca.crt")),
        "-CAkey",
        &s(&path("ca.key")),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        &s(&path("crt")),
    ]);
    let text = openssl(&["x509", "-in", &s(&path("crt")), "-noout", "-text"]);
    assert!(text.contains("Version: 1 (0x0)"), "{text}");
    saprouter::tls::SncFiles {
        cert: path("crt"),
        key: path("key"),
        ca: path("ca.crt"),
    }
}

/// Start-up refuses each problem with the router's own material in one line that names
/// the file and says what to do.
#[test]
fn start_up_names_the_file_and_the_fix_for_each_certificate_problem() {
    let s = setup();
    let name = "p:CN=SAPROUTER1";
    let files =
        |tag: &str, (cert, key): (String, String)| s.pki.write(tag, &cert, &key, &s.ca.pem());
    let fails = |f: &saprouter::tls::SncFiles, blamed: &std::path::Path, expected: &[&str]| {
        let err = start_fails(name, &snc_args(f), None);
        assert!(
            err.contains(&*blamed.to_string_lossy()),
            "names {blamed:?}: {err}"
        );
        for e in expected {
            assert!(err.contains(e), "{e:?}: {err}");
        }
    };
    let subject = [(DnType::CommonName, "SAPROUTER1")];

    let expired = files("expired", s.ca.issue(&subject, true));
    fails(
        &expired,
        &expired.cert,
        &["expired on 2020-01-01 00:00:00 UTC", "renew it"],
    );

    let future = files(
        "future",
        s.ca.issue_with(&subject, |p| {
            p.not_before = rcgen::date_time_ymd(2099, 1, 1);
            p.not_after = rcgen::date_time_ymd(2100, 1, 1);
        }),
    );
    fails(
        &future,
        &future.cert,
        &["not valid before 2099-01-01 00:00:00 UTC", "system clock"],
    );

    let server_only = files(
        "server-only",
        s.ca.issue_with(&subject, |p| {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        }),
    );
    fails(
        &server_only,
        &server_only.cert,
        &["serverAuth or clientAuth", "re-issue"],
    );

    let ca_as_own = s
        .pki
        .write("ca-as-own", &s.ca.pem(), &s.ca.key_pem(), &s.ca.pem());
    let err = start_fails("p:CN=Test CA", &snc_args(&ca_as_own), None);
    assert!(err.contains("is a CA certificate"), "{err}");
    assert!(err.contains(&*ca_as_own.cert.to_string_lossy()), "{err}");

    let mut not_a_ca = s.router.clone();
    not_a_ca.ca = s.router.cert.clone();
    fails(
        &not_a_ca,
        &not_a_ca.ca,
        &["is not a CA certificate", "CA file"],
    );

    let mut missing = s.router.clone();
    missing.key = s.pki.dir.path().join("no-such.key");
    fails(&missing, &missing.key, &["cannot read", "check the path"]);

    let mut key_as_cert = s.router.clone();
    key_as_cert.cert = s.router.key.clone();
    fails(
        &key_as_cert,
        &key_as_cert.cert,
        &["holds a private key", "not a certificate"],
    );

    let mut cert_as_key = s.router.clone();
    cert_as_key.key = s.router.cert.clone();
    fails(
        &cert_as_key,
        &cert_as_key.key,
        &["holds a certificate, not a private key"],
    );

    let other = s.pki.identity("other", &s.ca, "OTHER", &s.ca, false);
    let mut wrong_key = s.router.clone();
    wrong_key.key = other.key.clone();
    fails(
        &wrong_key,
        &wrong_key.key,
        &["does not belong to the certificate"],
    );

    if tool_available("openssl") {
        let v1 = openssl_v1(&s.pki, &s.ca, "v1", "SAPROUTER1");
        fails(
            &v1,
            &v1.cert,
            &["X.509 version 1", "-extfile", "docs/snc-tls.md"],
        );
    }
}

/// A client presenting a version 1 certificate (openssl s_client) is refused, and the
/// trace says why in words.
#[test]
fn a_peer_with_a_version_1_certificate_is_refused_in_words() {
    if !tool_available("openssl") {
        return;
    }
    let s = setup();
    let v1 = openssl_v1(&s.pki, &s.ca, "v1-client", "CLIENT");
    let r = start_snc("KP * * *\n", "p:CN=SAPROUTER1", &s.router);
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{L}:{}", r.port),
            "-tls1_3",
        ])
        .args([
            "-cert",
            &*v1.cert.to_string_lossy(),
            "-key",
            &*v1.key.to_string_lossy(),
        ])
        .args(["-CAfile", &*s.router.ca.to_string_lossy()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let log = wait_trace(&r, "TLS handshake failed");
    assert!(
        log.contains("peer certificate is not X.509 version 3"),
        "{log}\n{out:?}"
    );
}

/// The next router presents a version 1 certificate (openssl s_server): the route ends
/// with -104 and a detail in words.
#[test]
fn a_next_hop_with_a_version_1_certificate_is_refused_in_words() {
    if !tool_available("openssl") {
        return;
    }
    let s = setup();
    let v1 = openssl_v1(&s.pki, &s.ca, "v1-server", "SAPROUTER2");
    let port = free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("{L2}:{port}"),
            "-tls1_3",
            "-quiet",
        ])
        .args([
            "-cert",
            &*v1.cert.to_string_lossy(),
            "-key",
            &*v1.key.to_string_lossy(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect((L2, port)).is_err() {
        assert!(start.elapsed() < STEP, "openssl s_server did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r1 = start_snc(
        &format!("KT \"p:CN=SAPROUTER2\" {L2} {port}\nP * {L2} {port}\nD * * *\n"),
        "p:CN=SAPROUTER1",
        &s.router,
    );
    let e = refused(
        &r1,
        &[(L, &r1.port.to_string(), ""), (L2, &port.to_string(), "")],
        0,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(e.rc, -104, "{}", e.detail());
    assert!(
        e.detail()
            .contains("peer certificate is not X.509 version 3"),
        "{}",
        e.detail()
    );
}

/// The OpenSSL recipe of docs/snc-tls.md makes a version 3 certificate the router starts
/// with.
#[test]
fn the_openssl_recipe_in_the_docs_gives_a_certificate_the_router_starts_with() {
    if !tool_available("openssl") {
        return;
    }
    let doc = read_text(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/snc-tls.md"));
    let section = doc
        .split("### A version 3 certificate with OpenSSL")
        .nth(1)
        .expect("the recipe's section");
    let script = section
        .split("```")
        .nth(1)
        .expect("the recipe's code block");
    let secudir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(secudir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("Version: 3 (0x2)"), "{text}");
    let files = saprouter::tls::SncFiles {
        cert: secudir.path().join("saprouter.crt"),
        key: secudir.path().join("saprouter.key"),
        ca: secudir.path().join("ca.crt"),
    };
    let r = start_snc("P * * *\n", "p:CN=SAPROUTER1, O=Example", &files);
    let log = wait_trace(&r, "SNC certificate in use");
    assert!(log.contains("subject=p:CN=SAPROUTER1,O=Example"), "{log}");
}
