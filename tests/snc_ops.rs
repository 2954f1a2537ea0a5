//! SNC in operation with the real binary: the identity from a PKCS#12 file as `openssl
//! pkcs12 -export` writes it (OpenSSL 3's AES-256 default and the older 3DES/SHA-1 form),
//! certificate rotation with `saprouter -n` while sessions run, broken replacements
//! refused with the old identity kept, and the expiry date in `-l`, the metrics, the `-G`
//! log and the trace.

mod common;
mod tls_support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::DnType;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use saprouter::tls::SncFiles;
use tls_support::p12::{Form, P12Pki};
use tls_support::snc_router::{L, L2};
use tls_support::*;

const NAME: &str = "p:CN=SAPROUTER1";

/// 2031-05-17 00:00:00 UTC and 2032-06-30 00:00:00 UTC, the not-after dates of the two
/// generations of the router's certificate.
const FIRST_END: (i32, u8, u8, i64) = (2031, 5, 17, 1_936_742_400);
const SECOND_END: (i32, u8, u8, i64) = (2032, 6, 30, 1_972_166_400);

/// The serial number `openssl x509 -serial` prints for a PEM certificate.
fn openssl_serial(cert: &Path) -> String {
    let text = openssl(&["x509", "-in", &cert.to_string_lossy(), "-noout", "-serial"]);
    text.trim().strip_prefix("serial=").unwrap().to_string()
}

/// The serial of the certificate a peer presented.
fn serial_of(der: &[u8]) -> String {
    saprouter::tls::CertInfo::from_der(der).unwrap().serial
}

/// The serial of the certificate the router on `port` presents to a TLS client.
fn presented_serial(port: u16, client: &SncFiles) -> String {
    let s = tls_connect(port, client).expect("TLS handshake");
    serial_of(&s.conn.peer_certificates().unwrap()[0])
}

/// Replaces `to` with `from` in one step (what an operator's `mv` does).
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// `saprouter -n`: (success, stderr).
fn reload(r: &TestRouter) -> (bool, String) {
    let out = r.admin(&["-n"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start_p12(table: &str, p12: &Path, pki: &P12Pki, extra: &[&str]) -> TestRouter {
    let mut args: Vec<String> = vec![
        "-K".into(),
        NAME.into(),
        "--snc-p12".into(),
        p12.to_string_lossy().into_owned(),
        "--snc-p12-pass-file".into(),
        pki.path("pass").to_string_lossy().into_owned(),
        "--snc-ca".into(),
        pki.path("ca.crt").to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    TestRouter::start(table, &refs)
}

#[test]
fn a_pkcs12_file_from_openssl_starts_the_router_in_either_form() {
    if !tool_available("openssl") {
        return;
    }
    let pki = P12Pki::new();
    let router = pki.issue("r1", "SAPROUTER1", 0x1001, FIRST_END);
    let client = pki.client();
    let serial = openssl_serial(&router.cert);
    assert_eq!(serial, "1001");
    let echo = ni_echo();
    let table = format!("KP \"p:CN=CLIENT\" {L} {echo}\nD * * *\n");
    for form in [Form::Aes, Form::TripleDes] {
        let p12 = pki.export(&router, &format!("{form:?}"), form, true);
        let r = start_p12(&table, &p12, &pki, &[]);
        assert_eq!(presented_serial(r.port, &client), serial, "{form:?}");
        let mut s = tls_connect(r.port, &client).unwrap();
        let reply = route_over(
            &mut s,
            &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        )
        .unwrap();
        assert_eq!(reply, PONG, "{form:?}");
        send_frame(&mut s, b"from a PKCS#12 identity").unwrap();
        assert_eq!(recv_frame(&mut s).unwrap(), b"from a PKCS#12 identity");
        let log = wait_trace(&r, "SNC certificate in use");
        assert!(log.contains("serial=1001"), "{log}");
    }
}

#[test]
fn secudir_saprouter_p12_without_a_password_is_the_default() {
    if !tool_available("openssl") {
        return;
    }
    let pki = P12Pki::new();
    let router = pki.issue("r1", "SAPROUTER1", 0x2002, FIRST_END);
    let client = pki.client();
    let p12 = pki.export(&router, "nopass", Form::Aes, false);
    let secudir = tempfile::tempdir().unwrap();
    std::fs::copy(&p12, secudir.path().join("saprouter.p12")).unwrap();
    std::fs::copy(pki.path("ca.crt"), secudir.path().join("ca.crt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saprouttab"), "KP * * *\n").unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir.path())
        .args(["-r", "-S", &port.to_string(), "-K", NAME])
        .env("SECUDIR", secudir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    if let Err(status) = wait_child_listening(&mut child.0, port) {
        let mut err = String::new();
        if let Some(mut stderr) = child.0.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        panic!("router exited: {status}: {err}");
    }
    assert_eq!(presented_serial(port, &client), "2002");
}

/// A child process killed when the test ends, failed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS server on 127.0.0.2 that requires a client certificate from `ca` and sends the
/// serial of each client's certificate to the returned channel; it holds each session until
/// the client closes it when `hold`, else closes it at once.
fn serial_recorder(server: &SncFiles, hold: bool) -> (u16, mpsc::Receiver<String>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&server.ca).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&server.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let port = free_port();
    let listener = TcpListener::bind((L2, port)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let config = Arc::clone(&config);
            let tx = tx.clone();
            std::thread::spawn(move || {
                sock.set_read_timeout(Some(STEP)).ok();
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut sock).is_err() {
                        return;
                    }
                }
                if let Some(certs) = conn.peer_certificates() {
                    let _ = tx.send(serial_of(&certs[0]));
                }
                if !hold {
                    return;
                }
                // Hold the session until the router closes it.
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 256];
                while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (port, rx)
}

#[test]
fn n_rotates_the_certificate_for_new_handshakes_and_keeps_running_sessions() {
    if !tool_available("openssl") {
        return;
    }
    let pki = P12Pki::new();
    let first = pki.issue("first", "SAPROUTER1", 0x1001, FIRST_END);
    let second = pki.issue("second", "SAPROUTER1", 0x1002, SECOND_END);
    let next = pki.issue("next", "NEXT", 0x3003, FIRST_END);
    let client = pki.client();
    let first_p12 = pki.export(&first, "first", Form::Aes, true);
    let second_p12 = pki.export(&second, "second", Form::TripleDes, true);
    let live = pki.path("saprouter.p12");
    std::fs::copy(&first_p12, &live).unwrap();

    let echo = ni_echo();
    let (next_port, next_serials) = serial_recorder(&next, true);
    let metrics = free_port();
    let metrics_addr = format!("{L}:{metrics}");
    let table = format!(
        "KT \"p:CN=NEXT\" {L2} {next_port}\nP * {L2} {next_port}\nKP \"p:CN=CLIENT\" {L} {echo}\nD * * *\n"
    );
    let r = start_p12(
        &table,
        &live,
        &pki,
        &["-G", "connlog", "--metrics", &metrics_addr],
    );
    let (r_port, echo_port, next_port) =
        (r.port.to_string(), echo.to_string(), next_port.to_string());
    let to_echo = [(L, r_port.as_str(), ""), (L, echo_port.as_str(), "")];
    let to_next = [(L, r_port.as_str(), ""), (L2, next_port.as_str(), "")];

    // Generation 1, inbound and outbound; a session stays open.
    assert_eq!(presented_serial(r.port, &client), "1001");
    let mut running = tls_connect(r.port, &client).unwrap();
    assert_eq!(route_over(&mut running, &to_echo).unwrap(), PONG);
    send_frame(&mut running, b"before").unwrap();
    assert_eq!(recv_frame(&mut running).unwrap(), b"before");
    let (_hop1, reply) = ask_route(&r, &to_next, 0);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    assert_eq!(next_serials.recv_timeout(STEP).unwrap(), "1001");
    wait_listening(r.child.id(), metrics);
    let (_, text) = http_get(metrics, "/metrics");
    let identity = format!(
        "saprouter_tls_certificate_expiry_timestamp_seconds{{role=\"identity\"}} {}",
        FIRST_END.3
    );
    assert!(text.contains(&identity), "{text}");
    assert!(
        text.contains("saprouter_tls_certificate_expiry_timestamp_seconds{role=\"ca\"} "),
        "{text}"
    );

    // The file is replaced; -n puts generation 2 in force.
    replace(&second_p12, &live);
    let (ok, err) = reload(&r);
    assert!(ok, "{err}");
    assert_eq!(presented_serial(r.port, &client), "1002");
    let (_hop2, reply) = ask_route(&r, &to_next, 0);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    assert_eq!(next_serials.recv_timeout(STEP).unwrap(), "1002");
    // The session opened before is untouched.
    send_frame(&mut running, b"after the rotation").unwrap();
    assert_eq!(recv_frame(&mut running).unwrap(), b"after the rotation");

    // -l, the metric and the -G log show the new certificate.
    let info = r.admin(&["-l"]);
    let listing = String::from_utf8_lossy(&info.stdout);
    assert!(
        listing.contains("SNC name            : p:CN=SAPROUTER1"),
        "{listing}"
    );
    assert!(
        listing.contains("SNC certificate     : serial 1002, valid until 2032-06-30 00:00:00 UTC"),
        "{listing}"
    );
    assert!(
        listing.contains("SNC CA              : p:CN=Test CA, serial "),
        "{listing}"
    );
    let (_, text) = http_get(metrics, "/metrics");
    let identity = format!(
        "saprouter_tls_certificate_expiry_timestamp_seconds{{role=\"identity\"}} {}",
        SECOND_END.3
    );
    assert!(text.contains(&identity), "{text}");
    let log = read_text(&r.path("connlog"));
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("SNC CERT")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("p:CN=SAPROUTER1 serial 1001 not after 2031-05-17 00:00:00 UTC"),
        "{log}"
    );
    assert!(
        lines[1].contains("p:CN=SAPROUTER1 serial 1002 not after 2032-06-30 00:00:00 UTC"),
        "{log}"
    );
}

#[test]
fn a_broken_replacement_is_refused_and_the_old_identity_stays() {
    if !tool_available("openssl") {
        return;
    }
    let pki = P12Pki::new();
    let good = pki.issue("good", "SAPROUTER1", 0x1001, FIRST_END);
    let renewed = pki.issue("renewed", "SAPROUTER1", 0x1002, SECOND_END);
    let other_name = pki.issue("other", "SAPROUTER2", 0x1003, FIRST_END);
    let (expired_cert, expired_key) = pki.ca.issue(&[(DnType::CommonName, "SAPROUTER1")], true);
    let expired = pki.write("expired", &expired_cert, &expired_key);
    let client = pki.client();
    let live = pki.path("saprouter.p12");
    std::fs::copy(pki.export(&good, "good", Form::Aes, true), &live).unwrap();
    let r = start_p12("KP * * *\n", &live, &pki, &[]);
    assert_eq!(presented_serial(r.port, &client), "1001");
    let live_name = live.to_string_lossy().into_owned();

    let garbage = pki.path("garbage");
    std::fs::write(&garbage, b"not a PKCS#12 file").unwrap();
    let cases: [(&str, PathBuf, &str); 3] = [
        ("garbage", garbage, "is not a PKCS#12 file"),
        (
            "expired",
            pki.export(&expired, "expired", Form::Aes, true),
            "expired on 2020-01-01 00:00:00 UTC",
        ),
        (
            "another name",
            pki.export(&other_name, "other", Form::Aes, true),
            "is issued to \"p:CN=SAPROUTER2\"",
        ),
    ];
    for (what, file, expected) in cases {
        replace(&file, &live);
        let (ok, err) = reload(&r);
        assert!(!ok, "{what}: -n succeeded");
        assert!(err.contains("SNC identity not reloaded"), "{what}: {err}");
        assert!(err.contains(&live_name), "{what}: the file is named: {err}");
        assert!(err.contains(expected), "{what}: {err}");
        assert_eq!(presented_serial(r.port, &client), "1001", "{what}");
    }
    let log = wait_trace(
        &r,
        "SNC identity not reloaded; the certificate in use stays",
    );
    assert!(log.contains("is not a PKCS#12 file"), "{log}");
    // A good file afterwards is taken.
    replace(&pki.export(&renewed, "renewed", Form::Aes, true), &live);
    let (ok, err) = reload(&r);
    assert!(ok, "{err}");
    assert_eq!(presented_serial(r.port, &client), "1002");
}

#[test]
fn a_key_that_does_not_match_is_refused_on_reload_and_sighup_reloads_too() {
    let pki = P12Pki::new();
    let good = pki.issue("good", "SAPROUTER1", 0x1001, FIRST_END);
    let renewed = pki.issue("renewed", "SAPROUTER1", 0x1002, SECOND_END);
    let client = pki.client();
    let live = SncFiles {
        cert: pki.path("saprouter.crt"),
        key: pki.path("saprouter.key"),
        ca: pki.path("ca.crt"),
    };
    std::fs::copy(&good.cert, &live.cert).unwrap();
    std::fs::copy(&good.key, &live.key).unwrap();
    let mut args = vec!["-K".to_string(), NAME.to_string()];
    args.extend(snc_args(&live));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = TestRouter::start("KP * * *\n", &refs);
    assert_eq!(presented_serial(r.port, &client), "1001");
    // The new certificate is in place, its key not yet.
    replace(&renewed.cert, &live.cert);
    let (ok, err) = reload(&r);
    assert!(!ok);
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(err.contains(&*live.key.to_string_lossy()), "{err}");
    assert_eq!(presented_serial(r.port, &client), "1001");
    // With the key too, SIGHUP puts it in force.
    replace(&renewed.key, &live.key);
    let hup = Command::new("kill")
        .args(["-HUP", &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let start = std::time::Instant::now();
    while presented_serial(r.port, &client) != "1002" {
        assert!(
            start.elapsed() < STEP,
            "SIGHUP did not rotate the certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_identity_close_to_its_end_is_warned_about_at_start_and_reload() {
    let pki = P12Pki::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let (cert, key) = pki
        .ca
        .issue_with(&[(DnType::CommonName, "SAPROUTER1")], |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after =
                rcgen::date_time_ymd(1970, 1, 1) + (now + Duration::from_secs(10 * 86_400));
        });
    let soon = pki.write("soon", &cert, &key);
    let mut args = vec!["-K".to_string(), NAME.to_string()];
    args.extend(snc_args(&soon));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = TestRouter::start("P * * *\n", &refs);
    let log = wait_trace(&r, "SNC certificate expires within 30 days");
    assert!(
        log.contains("when=\"start\"") || log.contains("when=start"),
        "{log}"
    );
    assert!(
        log.contains("days_left=9") || log.contains("days_left=10"),
        "{log}"
    );
    let (ok, err) = reload(&r);
    assert!(ok, "{err}");
    let start = std::time::Instant::now();
    loop {
        let log = read_text(&r.path("dev_rout"));
        if log.contains("when=\"reload\"") || log.contains("when=reload") {
            break;
        }
        assert!(start.elapsed() < STEP, "no warning at reload: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let listing = String::from_utf8_lossy(&r.admin(&["-l"]).stdout).into_owned();
    assert!(listing.contains("days left)"), "{listing}");
}

#[test]
fn new_reverse_invoke_links_present_the_new_certificate() {
    let pki = P12Pki::new();
    let first = pki.issue("first", "SAPROUTER2", 0x1001, FIRST_END);
    let second = pki.issue("second", "SAPROUTER2", 0x1002, SECOND_END);
    let dmz = pki.issue("dmz", "SAPROUTER1", 0x3003, FIRST_END);
    let live = SncFiles {
        cert: pki.path("saprouter.crt"),
        key: pki.path("saprouter.key"),
        ca: pki.path("ca.crt"),
    };
    std::fs::copy(&first.cert, &live.cert).unwrap();
    std::fs::copy(&first.key, &live.key).unwrap();
    // The "DMZ router" hangs up after each handshake, so the LAN router keeps opening links.
    let (reg, links) = serial_recorder(&dmz, false);
    let cf = pki.path("cf");
    std::fs::write(
        &cf,
        format!(
            "server = true\nclient_hostname = {L2}\nclient_service = {reg}\nreg_service = {}\nretry_timeout = 1\n",
            free_port()
        ),
    )
    .unwrap();
    let mut args = vec![
        "-i".to_string(),
        cf.to_string_lossy().into_owned(),
        "-K".into(),
        "p:CN=SAPROUTER2".into(),
    ];
    args.extend(snc_args(&live));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = TestRouter::start("D * * *\n", &refs);
    assert_eq!(links.recv_timeout(STEP).unwrap(), "1001");
    replace(&second.cert, &live.cert);
    replace(&second.key, &live.key);
    let (ok, err) = reload(&r);
    assert!(ok, "{err}");
    let start = std::time::Instant::now();
    loop {
        let serial = links.recv_timeout(STEP).expect("a new link");
        if serial == "1002" {
            break;
        }
        assert_eq!(serial, "1001");
        assert!(start.elapsed() < 2 * STEP, "new links still present 1001");
    }
}
