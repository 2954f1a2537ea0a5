//! `--metrics` with reverse invoke: a LAN router is ready only while it is registered with
//! its DMZ router, and both sides report links, streams and registrations.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";

/// A router started with `-i` and `--metrics`; the parameter file lives beside it.
struct Node {
    router: TestRouter,
    metrics: u16,
    _cf: tempfile::TempDir,
}

fn node(cf_text: &str, table: &str) -> Node {
    let cf = tempfile::tempdir().expect("temp dir");
    let path = cf.path().join("cf");
    std::fs::write(&path, cf_text).expect("write cf");
    let metrics = free_port();
    let addr = format!("{L}:{metrics}");
    let router = TestRouter::start(table, &["-i", &path.to_string_lossy(), "--metrics", &addr]);
    Node {
        router,
        metrics,
        _cf: cf,
    }
}

fn dmz(reg: u16, pseudo: u16) -> Node {
    node(
        &format!("client = true\nclient_service = {reg}\nconn_pool_size = 2\n"),
        &format!("P * {L} {pseudo}\nD * * *\n"),
    )
}

fn lan(reg: u16, pseudo: u16) -> Node {
    node(
        &format!(
            "server = true\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\nretry_timeout = 1000\n"
        ),
        &format!("P {L} * *\n"),
    )
}

/// Sum of all series of `name` (any labels); 0 when absent.
fn total(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls until `ok` holds for the scrape of `n`, or fails after [`STEP`].
fn wait_until(n: &Node, what: &str, ok: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let (status, body) = http_get(n.metrics, "/metrics");
        if status == 200 && ok(&body) {
            return;
        }
        assert!(start.elapsed() < STEP, "never {what}; last scrape:\n{body}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn wait_ready(n: &Node, want: u16) {
    let start = Instant::now();
    loop {
        let (status, body) = http_get(n.metrics, "/readyz");
        if status == want {
            return;
        }
        assert!(start.elapsed() < STEP, "/readyz stayed {status} ({body})");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lan_readiness_follows_its_registration() {
    let reg = free_port();
    let pseudo = free_port();
    // The LAN router alone: alive, not ready.
    let l = lan(reg, pseudo);
    assert_eq!(http_get(l.metrics, "/healthz").0, 200);
    let (status, why) = http_get(l.metrics, "/readyz");
    assert_eq!(status, 503);
    assert!(why.contains("not registered"), "{why}");
    wait_until(&l, "server mode shown", |b| {
        total(b, "saprouter_ri_server_mode") == 1.0 && total(b, "saprouter_ready") == 0.0
    });

    // The DMZ router comes: the LAN router registers and becomes ready.
    let d = dmz(reg, pseudo);
    wait_ready(&l, 200);
    wait_until(&d, "a link registered", |b| {
        total(b, "saprouter_ri_registered_servers") == 1.0
            && total(b, "saprouter_ri_links_up") >= 1.0
    });
    assert_eq!(
        http_get(d.metrics, "/readyz").0,
        200,
        "a DMZ router needs no registration"
    );
    // Heartbeats are echoed and timed on both sides (the first leaves at once).
    for n in [&l, &d] {
        wait_until(n, "a heartbeat timed", |b| {
            total(b, "saprouter_ri_heartbeat_rtt_seconds_count") >= 1.0
        });
    }

    // A session over the link shows as a stream on both sides.
    let echo = ni_echo();
    let (dp, pp, ep) = (
        d.router.port.to_string(),
        pseudo.to_string(),
        echo.to_string(),
    );
    let (mut s, reply) = ask_route(&d.router, &[(L, &dp, ""), (L, &pp, ""), (L, &ep, "")], 0);
    assert_eq!(reply, PONG);
    wait_until(&d, "a stream on the DMZ side", |b| {
        total(b, "saprouter_ri_link_streams") == 1.0
    });
    wait_until(&l, "a stream on the LAN side", |b| {
        total(b, "saprouter_ri_link_streams") == 1.0 && total(b, "saprouter_sessions_active") == 1.0
    });
    s.write_all(&frame(b"over the link")).unwrap();
    assert_eq!(read_frame(&mut s), b"over the link");
    s.shutdown(Shutdown::Both).unwrap();
    drop(s);
    let routed = "saprouter_sessions_total{outcome=\"routed\",rc=\"0\"}";
    wait_until(&l, "the LAN session counted", |b| total(b, routed) == 1.0);
    wait_until(&d, "the DMZ session counted", |b| total(b, routed) == 1.0);

    // The DMZ router goes away: not ready; it comes back: ready again, a reconnect counted.
    drop(d);
    wait_ready(&l, 503);
    let d = dmz(reg, pseudo);
    wait_ready(&l, 200);
    wait_until(&l, "a reconnect counted", |b| {
        total(b, "saprouter_ri_link_reconnects_total") >= 1.0
    });
    wait_until(&d, "registered again", |b| {
        total(b, "saprouter_ri_registered_servers") == 1.0
    });
}
