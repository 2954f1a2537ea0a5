//! The link protocol version on real routers: two routers of this build run yamux
//! (version 1) unless the LAN router's `-i` file asks for linkmux (`link_protocol =
//! linkmux`, version 2), and then linkmux; a LAN router of an earlier build (a raw version-1 registration, then
//! yamux) is served with yamux, and a LAN router of this build whose DMZ router is of an
//! earlier build (refuses version 2 with -93) registers again with version 1 and runs
//! yamux. The earlier builds are played here with raw bytes and the yamux of the library.
//! Every wait polls with a bound or reads with a timeout; nothing sleeps a fixed time.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use saprouter::ri::mux::{open_channel, run_control, session};
use tokio::io::AsyncReadExt;
use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::sync::CancellationToken;

const L: &str = "127.0.0.1";
/// Bound of every read of the fake peers.
const STEP: Duration = Duration::from_secs(20);

fn start(cf_text: &str, table: &str) -> (TestRouter, tempfile::TempDir) {
    let (cf, path) = write_cf(cf_text);
    (TestRouter::start(table, &["-i", &path, "-V", "2"]), cf)
}

fn dmz(reg: u16, pseudo: u16) -> (TestRouter, tempfile::TempDir) {
    start(
        &format!("client = true\nclient_service = {reg}\nconn_pool_size = 1\n"),
        &format!("P * {L} {pseudo}\nD * * *\n"),
    )
}

/// A LAN router of this build; its table lets the DMZ router reach `raw` natively (SAP's
/// tables need the explicit port for native routes).
/// `extra`: more lines of its `-i` file (`link_protocol = linkmux` to offer version 2).
fn lan(dmz_reg: u16, pseudo: u16, raw: u16, extra: &str) -> (TestRouter, tempfile::TempDir) {
    start(
        &format!(
            "server = true\nclient_hostname = {L}\nclient_service = {dmz_reg}\nreg_service = {pseudo}\nreg_hostname = {L}\n{extra}"
        ),
        &format!("P {L} * {raw}\nP {L} * *\n"),
    )
}

/// A version-`version` registration of 127.0.0.1:`pseudo`, byte by byte
/// (docs/reverse-invoke.md, "Link protocol (version 1)").
fn raw_register(version: u8, pseudo: u16) -> Vec<u8> {
    let mut out = b"RI_REGISTER\0".to_vec();
    out.push(version);
    out.extend_from_slice(&0x5eed_0000_0000_0001u64.to_be_bytes()); // instance
    out.extend_from_slice(&0u16.to_be_bytes()); // link index
    out.extend_from_slice(&pseudo.to_be_bytes());
    out.push(0); // flags: reg_hostname set
    out.push(1); // one address
    out.extend_from_slice(&[4, 127, 0, 0, 1]);
    out
}

/// A version-`version` acceptance: pool 1, server 1, link 7.
fn raw_accept(version: u8) -> Vec<u8> {
    let mut out = b"RI_ACCEPT\0".to_vec();
    out.push(version);
    out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 7]);
    out
}

/// What a DMZ router of an earlier build answers a version it does not speak.
fn raw_version_refusal() -> Vec<u8> {
    use saprouter::ni::rterr::{ErrorRecord, RtErr};
    let record = ErrorRecord {
        counter: "1".into(),
        error: "NI-internal errors".into(),
        return_code: "-93".into(),
        detail: "invalid registration (link protocol version 2 not supported (this router speaks 1)); this port speaks the saprouter-rs reverse-invoke protocol".into(),
        ..ErrorRecord::default()
    };
    RtErr::error(40, -93, &record).encode()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A link line of the DMZ router's `-l` naming `mux`.
fn link_runs(listing: &str, mux: &str) -> bool {
    listing
        .lines()
        .any(|l| l.split_whitespace().last() == Some(mux) && l.contains(':'))
}

#[test]
fn routers_of_this_build_run_yamux_unless_asked_for_linkmux() {
    let reg = free_port();
    let pseudo = free_port();
    let (d, _dcf) = dmz(reg, pseudo);
    let (l, _lcf) = lan(reg, pseudo, 1, "");
    let text = wait_listing(&d, "a yamux link", |t| link_runs(t, "yamux"));
    assert!(!link_runs(&text, "linkmux"), "{text}");
    wait_trace(&l, "mux=yamux");
}

/// A DMZ and a LAN router of this build on a linkmux link, the LAN router permitting a raw
/// echo service; running while held.
struct LinkmuxChain {
    dmz: (TestRouter, tempfile::TempDir),
    lan: (TestRouter, tempfile::TempDir),
    pseudo: u16,
    echo: u16,
}

impl LinkmuxChain {
    /// Starts the chain and waits until the DMZ router lists the link; also returns that
    /// listing.
    fn start() -> (Self, String) {
        let reg = free_port();
        let pseudo = free_port();
        let echo = raw_echo();
        let dmz = dmz(reg, pseudo);
        let lan = lan(reg, pseudo, echo, "link_protocol = linkmux\n");
        let text = wait_listing(&dmz.0, "a linkmux link", |t| link_runs(t, "linkmux"));
        let chain = Self {
            dmz,
            lan,
            pseudo,
            echo,
        };
        (chain, text)
    }

    /// A session to the echo service through both routers, in `talk_mode`.
    fn route(&self, talk_mode: u8) -> TcpStream {
        let d = &self.dmz.0;
        let (dp, ps, es) = (
            d.port.to_string(),
            self.pseudo.to_string(),
            self.echo.to_string(),
        );
        let hops = [(L, dp.as_str(), ""), (L, &ps, ""), (L, &es, "")];
        let (s, reply) = ask_route(d, &hops, talk_mode);
        assert_eq!(reply, PONG);
        s
    }
}

/// Sends `data` on `s` from a second thread (with `write`) and reads as many bytes back.
fn echoed(s: &mut TcpStream, data: &[u8], write: fn(&mut TcpStream, &[u8])) -> Vec<u8> {
    let mut writer = s.try_clone().expect("clone");
    let sent = data.to_vec();
    let t = std::thread::spawn(move || write(&mut writer, &sent));
    let mut got = vec![0u8; data.len()];
    s.set_read_timeout(Some(STEP)).expect("timeout");
    s.read_exact(&mut got).expect("echo");
    t.join().expect("writer");
    got
}

#[test]
fn routers_of_this_build_run_linkmux_when_the_lan_router_asks() {
    let (chain, text) = LinkmuxChain::start();
    assert!(!link_runs(&text, "yamux"), "{text}");
    wait_trace(&chain.lan.0, "mux=linkmux");
    // A session over it.
    let mut s = chain.route(1);
    let data = pattern(1 << 20, 3);
    let got = echoed(&mut s, &data, |w, d| w.write_all(d).expect("send"));
    assert!(got == data, "1 MiB echoed intact over linkmux");
}

#[test]
fn ni_frames_keep_their_boundaries_over_a_linkmux_link() {
    // NI talk mode: both routers follow the frames towards the client (the LAN router
    // peeks each header, the DMZ router reads it out of the stream's pipe) while the
    // bodies move zero-copy. Frames of every size come back whole and in order.
    let (chain, _) = LinkmuxChain::start();
    let mut s = chain.route(0);
    let mut sent = Vec::new();
    for (k, size) in [
        0usize, 1, 3, 4, 5, 100, 8192, 65_536, 65_537, 300_000, 7, 0, 200_000,
    ]
    .into_iter()
    .enumerate()
    {
        sent.extend_from_slice(&frame(&pattern(size, k)));
    }
    // In pieces that split headers, then large writes.
    let got = echoed(&mut s, &sent, |w, d| {
        let (small, large) = d.split_at(64);
        for piece in small.chunks(3) {
            w.write_all(piece).expect("send");
        }
        w.write_all(large).expect("send");
    });
    assert!(got == sent, "NI frames echoed intact over linkmux");
}

#[test]
fn a_version_1_registration_is_served_with_yamux() {
    let reg = free_port();
    let pseudo = free_port();
    let (d, _dcf) = dmz(reg, pseudo);
    wait_listening(d.child.id(), reg);
    // A LAN router of an earlier build: version 1, then yamux.
    let mut link = TcpStream::connect((L, reg)).expect("connect");
    link.set_read_timeout(Some(STEP)).expect("timeout");
    link.write_all(&frame(&raw_register(1, pseudo)))
        .expect("register");
    let accept = read_frame(&mut link);
    assert_eq!(&accept[..10], b"RI_ACCEPT\0");
    assert_eq!(accept[10], 1, "accepted as version 1");
    link.set_read_timeout(None).expect("timeout");
    link.set_nonblocking(true).expect("nonblocking");
    let rt = runtime();
    let cancel = CancellationToken::new();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let c = cancel.clone();
    rt.spawn(async move {
        let socket = tokio::net::TcpStream::from_std(link).expect("tokio socket");
        let (opener, requests) = open_channel();
        let c2 = c.clone();
        tokio::spawn(async move {
            if let Ok(control) = opener.open().await {
                run_control(control.compat(), c2).await;
            }
        });
        // Every stream the DMZ router opens: its first bytes are handed to the test.
        session(socket, yamux::Mode::Server, requests)
            .drive(
                move |stream| {
                    let tx = opened_tx.clone();
                    tokio::spawn(async move {
                        let mut s = stream.compat();
                        let mut buf = vec![0u8; 256];
                        if let Ok(n) = s.read(&mut buf).await {
                            let _ = tx.send(buf[..n].to_vec());
                        }
                    });
                    true
                },
                c,
            )
            .await
    });
    wait_listing(&d, "a yamux link", |t| link_runs(t, "yamux"));
    // A route to the pseudo address arrives as a yamux stream carrying the rest of it.
    let (dp, ps) = (d.port.to_string(), pseudo.to_string());
    let mut s = d.connect();
    s.write_all(&frame(&route(
        &[(L, &dp, ""), (L, &ps, ""), (L, "3299", "")],
        1,
    )))
    .expect("route");
    let first = opened_rx.recv_timeout(STEP).expect("a stream over yamux");
    assert!(
        first.windows(9).any(|w| w == b"NI_ROUTE\0"),
        "the route travels on the stream: {first:?}"
    );
    cancel.cancel();
}

#[test]
fn a_dmz_router_that_refuses_version_2_gets_version_1_and_yamux() {
    // A DMZ router of an earlier build, played here.
    let listener = TcpListener::bind((L, 0)).expect("bind");
    let reg = listener.local_addr().expect("addr").port();
    let pseudo = free_port();
    let (_l, _lcf) = lan(reg, pseudo, 1, "link_protocol = linkmux\n");
    let (mut first, _) = listener.accept().expect("first registration");
    first.set_read_timeout(Some(STEP)).expect("timeout");
    let offer = read_frame(&mut first);
    assert_eq!(&offer[..12], b"RI_REGISTER\0");
    assert_eq!(
        offer[12], 2,
        "asked for linkmux, this build offers version 2 first"
    );
    first
        .write_all(&frame(&raw_version_refusal()))
        .expect("refuse");
    drop(first);
    let (mut second, _) = listener.accept().expect("second registration");
    second.set_read_timeout(Some(STEP)).expect("timeout");
    let offer = read_frame(&mut second);
    assert_eq!(offer[12], 1, "registered again with version 1");
    assert_eq!(offer[23..25], pseudo.to_be_bytes(), "the same registration");
    second.write_all(&frame(&raw_accept(1))).expect("accept");
    second.set_read_timeout(None).expect("timeout");
    second.set_nonblocking(true).expect("nonblocking");
    // The LAN router now speaks yamux: it opens the control stream and sends RI_ALIVE.
    let rt = runtime();
    let heartbeat = rt.block_on(async move {
        let socket = tokio::net::TcpStream::from_std(second).expect("tokio socket");
        let (_opener, requests) = open_channel();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let driver = tokio::spawn(session(socket, yamux::Mode::Client, requests).drive(
            move |stream| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut s = stream.compat();
                    let mut buf = vec![0u8; 64];
                    let mut got = Vec::new();
                    while got.len() < 4 + 9 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(got);
                });
                true
            },
            cancel.clone(),
        ));
        let got = tokio::time::timeout(STEP, rx.recv()).await;
        cancel.cancel();
        let _ = driver.await;
        got.ok().flatten().unwrap_or_default()
    });
    assert!(
        heartbeat.windows(9).any(|w| w == b"RI_ALIVE\0"),
        "a heartbeat on the yamux control stream: {heartbeat:?}"
    );
}
