//! SNC certificates and names with the real binary: the start-up checks of the identity
//! (`-K`, `SECUDIR`'s default files, names compared normalised, multi-RDN subjects), the
//! sample tables and `scripts/make-test-pki.sh`, and every certificate problem (a version 1
//! certificate, at start-up or from a peer) named in words with the file and the fix.

mod common;
mod tls_support;

use std::process::Command;

use common::*;
use rcgen::DnType;
use tls_support::snc_router::*;
use tls_support::*;

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
    if let Err(status) = wait_child_listening(&mut child, port) {
        panic!("router exited: {status}");
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

    // Certificates of the router's own CA that are wrong in themselves.
    let issued: [(&str, (String, String), &[&str]); 3] = [
        (
            "expired",
            s.ca.issue(&subject, true),
            &["expired on 2020-01-01 00:00:00 UTC", "renew it"],
        ),
        (
            "future",
            s.ca.issue_with(&subject, |p| {
                p.not_before = rcgen::date_time_ymd(2099, 1, 1);
                p.not_after = rcgen::date_time_ymd(2100, 1, 1);
            }),
            &["not valid before 2099-01-01 00:00:00 UTC", "system clock"],
        ),
        (
            "server-only",
            s.ca.issue_with(&subject, |p| {
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            }),
            &["serverAuth or clientAuth", "re-issue"],
        ),
    ];
    for (tag, cert_and_key, expected) in issued {
        let own = files(tag, cert_and_key);
        fails(&own, &own.cert, expected);
    }

    let ca_as_own = s
        .pki
        .write("ca-as-own", &s.ca.pem(), &s.ca.key_pem(), &s.ca.pem());
    let err = start_fails("p:CN=Test CA", &snc_args(&ca_as_own), None);
    assert!(err.contains("is a CA certificate"), "{err}");
    assert!(err.contains(&*ca_as_own.cert.to_string_lossy()), "{err}");

    // The router's own files with one of them swapped: the start names that file.
    type Pick = fn(&mut saprouter::tls::SncFiles) -> &mut std::path::PathBuf;
    let (ca, key, cert): (Pick, Pick, Pick) = (|f| &mut f.ca, |f| &mut f.key, |f| &mut f.cert);
    let other = s.pki.identity("other", &s.ca, "OTHER", &s.ca, false);
    let swaps: [(Pick, std::path::PathBuf, &[&str]); 5] = [
        (
            ca,
            s.router.cert.clone(),
            &["is not a CA certificate", "CA file"],
        ),
        (
            key,
            s.pki.dir.path().join("no-such.key"),
            &["cannot read", "check the path"],
        ),
        (
            cert,
            s.router.key.clone(),
            &["holds a private key", "not a certificate"],
        ),
        (
            key,
            s.router.cert.clone(),
            &["holds a certificate, not a private key"],
        ),
        (
            key,
            other.key.clone(),
            &["does not belong to the certificate"],
        ),
    ];
    for (pick, path, expected) in swaps {
        let mut swapped = s.router.clone();
        *pick(&mut swapped) = path.clone();
        fails(&swapped, &path, expected);
    }

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
