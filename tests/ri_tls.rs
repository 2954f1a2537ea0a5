//! Reverse invoke with SNC as TLS on loopback: the LAN router's links are TLS, the DMZ
//! router checks the registering router's name against its KT line, the LAN router checks
//! the DMZ router's certificate (and name, when a KT line names it) and its KP lines see
//! the DMZ router's name. Every refusal is logged and leaves the good link serving.

mod common;
mod tls_support;

use std::io::Write;

use common::*;
use saprouter::tls::SncFiles;
use tls_support::*;

const L: &str = "127.0.0.1";
/// The LAN router's registered pseudo address (reg_hostname): not 127.0.0.1, so the DMZ
/// router's KT line for it does not also cover users connecting from 127.0.0.1.
const PSEUDO_HOST: &str = "127.0.0.2";

struct Node {
    router: TestRouter,
    _cf: tempfile::TempDir,
}

fn start(cf: &str, table: &str, snc: Option<(&str, &SncFiles)>) -> Node {
    let dir = tempfile::tempdir().expect("cf dir");
    let path = dir.path().join("cf");
    std::fs::write(&path, cf).expect("write cf");
    let mut args = vec![
        "-i".to_string(),
        path.to_string_lossy().into_owned(),
        "-V".into(),
        "2".into(),
    ];
    if let Some((name, files)) = snc {
        args.push("-K".into());
        args.push(name.into());
        args.extend(snc_args(files));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Node {
        router: TestRouter::start(table, &refs),
        _cf: dir,
    }
}

/// The DMZ router: registrations on `reg`; users may route to PSEUDO_HOST:`pseudo`, which
/// a KT line reserves for `p:CN=SAPROUTER2`.
fn dmz(reg: u16, pseudo: u16, snc: Option<(&str, &SncFiles)>) -> Node {
    start(
        &format!("client = true\nclient_service = {reg}\nconn_pool_size = 1\n"),
        &format!(
            "KT \"p:CN=SAPROUTER2\" {PSEUDO_HOST} {pseudo}\nP * {PSEUDO_HOST} {pseudo}\nD * * *\n"
        ),
        snc,
    )
}

/// A LAN router registering PSEUDO_HOST:`pseudo` with the DMZ router's `reg`; `table` is
/// its route permission table.
fn lan(reg: u16, pseudo: u16, table: &str, snc: Option<(&str, &SncFiles)>) -> Node {
    start(
        &format!(
            "server = true\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\nreg_hostname = {PSEUDO_HOST}\n"
        ),
        table,
        snc,
    )
}

/// A user's route DMZ → pseudo address → `target`: the reply frame and the stream.
fn via(d: &Node, pseudo: u16, target: u16) -> (std::net::TcpStream, Vec<u8>) {
    let (dp, pp, tp) = (
        d.router.port.to_string(),
        pseudo.to_string(),
        target.to_string(),
    );
    ask_route(
        &d.router,
        &[(L, &dp, ""), (PSEUDO_HOST, &pp, ""), (L, &tp, "")],
        0,
    )
}

fn echo_through(d: &Node, pseudo: u16, echo: u16) {
    let (mut s, reply) = via(d, pseudo, echo);
    assert_eq!(reply, PONG, "{:?}", rterr(&reply));
    for n in [1usize, 10024, 300_000] {
        let data = pattern(n, n);
        s.write_all(&frame(&data)).unwrap();
        assert_eq!(read_frame(&mut s), data, "frame of {n} bytes");
    }
}

struct Pkis {
    pki: Pki,
    ca: Ca,
    dmz: SncFiles,
    lan: SncFiles,
}

fn pkis() -> Pkis {
    let pki = Pki::new();
    let ca = Ca::new("Test CA");
    let dmz = pki.identity("dmz", &ca, "SAPROUTER1", &ca, false);
    let lan = pki.identity("lan", &ca, "SAPROUTER2", &ca, false);
    Pkis { pki, ca, dmz, lan }
}

fn lan_table(echo: u16) -> String {
    format!("KP \"p:CN=SAPROUTER1\" {L} {echo}\nD * * *\n")
}

#[test]
fn tls_links_carry_routes_and_both_names_are_checked() {
    let p = pkis();
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER1", &p.dmz)));
    let l = lan(
        reg,
        pseudo,
        &lan_table(echo),
        Some(("p:CN=SAPROUTER2", &p.lan)),
    );
    let dlog = wait_trace(&d.router, "LAN router registered");
    assert!(dlog.contains("snc_name=p:CN=SAPROUTER2"), "{dlog}");
    let llog = wait_trace(&l.router, "TLS link to the DMZ router authenticated");
    assert!(llog.contains("snc_name=p:CN=SAPROUTER1"), "{llog}");
    echo_through(&d, pseudo, echo);
    // The LAN router's KP lines decide with the DMZ router's name: another port is denied.
    let other = ni_echo();
    let (_s, reply) = via(&d, pseudo, other);
    assert_eq!(rterr(&reply).rc, -94);
    let llog = wait_trace(&l.router, "route permission denied");
    assert!(llog.contains("p:CN=SAPROUTER1"), "{llog}");
}

#[test]
fn a_rogue_lan_router_with_another_name_cannot_register() {
    let p = pkis();
    let rogue_files = p.pki.identity("rogue", &p.ca, "ROGUE", &p.ca, false);
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER1", &p.dmz)));
    // First at boot: the rogue, valid CA, another name, same pseudo address and service.
    let rogue = lan(
        reg,
        pseudo,
        &lan_table(echo),
        Some(("p:CN=ROGUE", &rogue_files)),
    );
    let dlog = wait_trace(&d.router, "reverse-invoke registration refused");
    assert!(
        dlog.contains("requires SNC name p:cn=SAPROUTER2") && dlog.contains("p:CN=ROGUE"),
        "{dlog}"
    );
    wait_trace(&rogue.router, "the DMZ router refused the registration");
    let (_s, reply) = via(&d, pseudo, echo);
    assert_ne!(reply, PONG, "nothing registered yet");
    // The real LAN router registers and serves, while the rogue keeps being refused.
    let _l = lan(
        reg,
        pseudo,
        &lan_table(echo),
        Some(("p:CN=SAPROUTER2", &p.lan)),
    );
    wait_trace(&d.router, "snc_name=p:CN=SAPROUTER2");
    wait_trace(&d.router, "LAN router registered");
    echo_through(&d, pseudo, echo);
}

#[test]
fn a_plaintext_lan_router_is_refused_by_an_snc_dmz_router() {
    let p = pkis();
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER1", &p.dmz)));
    let plain = lan(reg, pseudo, &format!("P * * {echo}\n"), None);
    wait_trace(&d.router, "registrations must use TLS");
    let llog = wait_trace(&plain.router, "the DMZ router refused the registration");
    assert!(llog.contains("must use TLS"), "{llog}");
}

#[test]
fn a_kt_name_needs_a_tls_registration_even_without_k() {
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, None);
    let _l = lan(reg, pseudo, &format!("P * * {echo}\n"), None);
    let dlog = wait_trace(&d.router, "reverse-invoke registration refused");
    assert!(dlog.contains("not SNC (TLS)"), "{dlog}");
}

#[test]
fn the_lan_router_checks_the_dmz_router() {
    let p = pkis();
    let other_ca = Ca::new("Other CA");
    // A DMZ router whose certificate the LAN router's CA did not issue.
    let stranger = p
        .pki
        .identity("stranger", &other_ca, "SAPROUTER1", &p.ca, false);
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER1", &stranger)));
    let l = lan(
        reg,
        pseudo,
        &lan_table(echo),
        Some(("p:CN=SAPROUTER2", &p.lan)),
    );
    let llog = wait_trace(&l.router, "reverse-invoke: link down");
    assert!(llog.contains("not issued by a trusted CA"), "{llog}");
    drop(d);

    // A DMZ router with a valid certificate but not the name the LAN's KT line expects.
    let impostor = p
        .pki
        .identity("impostor", &p.ca, "SAPROUTER9", &p.ca, false);
    let (reg, pseudo) = (free_port(), free_port());
    let _d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER9", &impostor)));
    let table = format!("KT \"p:CN=SAPROUTER1\" {L} {reg}\n{}", lan_table(echo));
    let l = lan(reg, pseudo, &table, Some(("p:CN=SAPROUTER2", &p.lan)));
    let llog = wait_trace(&l.router, "reverse-invoke: link down");
    assert!(
        llog.contains("is p:CN=SAPROUTER9; the KT line requires p:cn=SAPROUTER1"),
        "{llog}"
    );
}

#[test]
fn a_reloaded_kt_line_for_another_name_stops_routes_over_the_link() {
    let p = pkis();
    let (reg, pseudo, echo) = (free_port(), free_port(), ni_echo());
    let d = dmz(reg, pseudo, Some(("p:CN=SAPROUTER1", &p.dmz)));
    let _l = lan(
        reg,
        pseudo,
        &lan_table(echo),
        Some(("p:CN=SAPROUTER2", &p.lan)),
    );
    wait_trace(&d.router, "LAN router registered");
    echo_through(&d, pseudo, echo);
    std::fs::write(
        d.router.path("saprouttab"),
        format!("KT \"p:CN=SAPROUTER3\" {PSEUDO_HOST} {pseudo}\nP * {PSEUDO_HOST} {pseudo}\n"),
    )
    .unwrap();
    assert!(d.router.admin(&["-n"]).status.success());
    let (_s, reply) = via(&d, pseudo, echo);
    let e = rterr(&reply);
    assert_eq!(e.rc, -104);
    assert!(
        e.detail().contains("authenticated as p:CN=SAPROUTER2"),
        "{}",
        e.detail()
    );
    wait_trace(&d.router, "SNC hop failed");
}
