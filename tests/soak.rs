//! Soak: route churn, idle sessions, half-closed sessions, junk connections and
//! reverse-invoke link drops (a LAN router registers, serves routes, is killed, again)
//! against one router on 127.0.0.1, then its file descriptors and resident memory must
//! come back to the baseline. Bounded in time (`SOAK_SECONDS`, default 20) and in count (every loop has
//! a cap); loopback only. `SOAK_SECONDS=600 cargo test --release --test soak` runs the long
//! version (docs/hardening.md).
//!
//! A second soak runs reverse-invoke storms for the same duration: waves of sessions fill a
//! LAN router's pool and close, and the DMZ router restarts every third wave.

mod common;
mod probe;
mod ri_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use probe::*;

const L: &str = "127.0.0.1";
/// Most iterations any one worker makes, whatever the duration.
const MAX_ROUNDS: u64 = 1_000_000;
/// Idle sessions held open at once.
const IDLE: usize = 40;

fn soak_seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 24 * 3600)
}

#[derive(Default)]
struct Counts {
    churned: AtomicU64,
    idle_cycles: AtomicU64,
    half_closed: AtomicU64,
    junk: AtomicU64,
    link_drops: AtomicU64,
}

#[test]
fn soak_returns_to_baseline() {
    let echo = ni_echo();
    let raw = raw_echo();
    let reg = free_port();
    let pseudo = free_port();
    let table = format!("P {L} {L} {echo}\nP {L} {L} {raw}\nP {L} {L} {pseudo}\nD * * *\n");
    let cf_dir = tempfile::tempdir().unwrap();
    let cf = cf_dir.path().join("cf");
    // exclusive = no: the soak routes to ordinary hosts through this DMZ router too.
    std::fs::write(
        &cf,
        format!("client = true\nclient_service = {reg}\nexclusive = no\n"),
    )
    .unwrap();
    let lan_cf = cf_dir.path().join("lan");
    std::fs::write(
        &lan_cf,
        format!("server = true\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\n"),
    )
    .unwrap();
    let r = Arc::new(TestRouter::start(
        &table,
        &["-W", "1000", "-i", &cf.to_string_lossy()],
    ));
    wait_listening(r.child.id(), reg);
    let pid = r.child.id();
    let me = r.port.to_string();
    {
        let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
        assert_eq!(reply, PONG);
        s.write_all(&frame(b"warm-up")).unwrap();
        read_frame(&mut s);
    }
    let fd_base = settles(0, Duration::from_millis(500), || fd_count(pid) as u64);
    let rss_base = rss_kib(pid);
    let deadline = Instant::now() + Duration::from_secs(soak_seconds());
    let counts = Arc::new(Counts::default());
    let peak_fds = Arc::new(AtomicU64::new(0));

    let worker = |job: fn(&TestRouter, u16, u16, &Counts)| {
        let (r, c) = (Arc::clone(&r), Arc::clone(&counts));
        thread::spawn(move || {
            let mut rounds = 0;
            while Instant::now() < deadline && rounds < MAX_ROUNDS {
                job(&r, echo, raw, &c);
                rounds += 1;
            }
        })
    };
    let mut workers = vec![
        worker(churn),
        worker(churn),
        worker(idle),
        worker(half_close),
        worker(junk),
    ];
    workers.push({
        let (r, c) = (Arc::clone(&r), Arc::clone(&counts));
        let lan_cf = lan_cf.to_string_lossy().into_owned();
        thread::spawn(move || {
            let mut rounds = 0;
            while Instant::now() < deadline && rounds < MAX_ROUNDS {
                link_drop(&r, &lan_cf, pseudo, echo, &c);
                rounds += 1;
            }
        })
    });
    let watch = {
        let peak = Arc::clone(&peak_fds);
        thread::spawn(move || {
            while Instant::now() < deadline {
                peak.fetch_max(fd_count(pid) as u64, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(200));
            }
        })
    };
    for w in workers {
        w.join().expect("a soak worker failed");
    }
    watch.join().unwrap();

    let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG, "the router no longer routes after the soak");
    s.write_all(&frame(b"after")).unwrap();
    assert_eq!(read_frame(&mut s), b"after");
    drop(s);

    let fds = settles(fd_base + 2, Duration::from_secs(20), || {
        fd_count(pid) as u64
    });
    let rss_limit = rss_base + (rss_base / 2).max(16 * 1024);
    let rss = settles(rss_limit, Duration::from_secs(20), || rss_kib(pid));
    eprintln!(
        "soak {}s: {} routes churned, {} idle cycles, {} half-closed, {} junk, {} link drops; fds {fd_base} -> peak {} -> {fds}; rss {rss_base} -> {rss} KiB",
        soak_seconds(),
        counts.churned.load(Ordering::Relaxed),
        counts.idle_cycles.load(Ordering::Relaxed),
        counts.half_closed.load(Ordering::Relaxed),
        counts.junk.load(Ordering::Relaxed),
        counts.link_drops.load(Ordering::Relaxed),
        peak_fds.load(Ordering::Relaxed),
    );
    assert!(fds <= fd_base + 2, "fds {fds}, baseline {fd_base}");
    assert!(rss <= rss_limit, "rss {rss} KiB, baseline {rss_base} KiB");
    assert!(counts.churned.load(Ordering::Relaxed) > 0);
}

/// Route, a few frames, close.
fn churn(r: &TestRouter, echo: u16, _raw: u16, c: &Counts) {
    let me = r.port.to_string();
    let (mut s, reply) = ask_route(r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG);
    for k in 0..3 {
        let data = pattern(100 + k * 500, k);
        s.write_all(&frame(&data)).unwrap();
        assert_eq!(read_frame(&mut s), data);
    }
    c.churned.fetch_add(1, Ordering::Relaxed);
}

/// Opens [`IDLE`] routed sessions, leaves them idle a moment, checks one still works,
/// closes them all.
fn idle(r: &TestRouter, echo: u16, _raw: u16, c: &Counts) {
    let me = r.port.to_string();
    let mut held: Vec<TcpStream> = (0..IDLE)
        .map(|_| {
            let (s, reply) = ask_route(r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
            assert_eq!(reply, PONG);
            s
        })
        .collect();
    // Idle for a while, waiting on the last one (bounded by the read timeout).
    let last = held.last_mut().unwrap();
    last.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(last.read(&mut b).is_err(), "an idle session got data");
    last.set_read_timeout(Some(STEP)).unwrap();
    last.write_all(&frame(b"wake")).unwrap();
    assert_eq!(read_frame(last), b"wake");
    drop(held);
    c.idle_cycles.fetch_add(1, Ordering::Relaxed);
}

/// A raw route: send, half-close, read everything back to EOF.
fn half_close(r: &TestRouter, _echo: u16, raw: u16, c: &Counts) {
    let me = r.port.to_string();
    let (s, reply) = ask_route(r, &[(L, &me, ""), (L, &raw.to_string(), "")], 1);
    assert_eq!(reply, PONG);
    let data = pattern(64 * 1024, 3);
    let mut w = s.try_clone().unwrap();
    w.write_all(&data).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let mut rd = s;
    rd.read_to_end(&mut got).unwrap();
    assert!(got == data, "half-closed session lost bytes");
    c.half_closed.fetch_add(1, Ordering::Relaxed);
}

/// Pre-route junk: garbage, an oversize header, a denied route, a connect-and-close.
fn junk(r: &TestRouter, _echo: u16, _raw: u16, c: &Counts) {
    let me = r.port.to_string();
    let _ = reply_to(r, b"GET / HTTP/1.0\r\n\r\n");
    let _ = reply_to(r, &frame(b"EYECATCHER\0"));
    let denied = rterr(&ask_route(r, &[(L, &me, ""), (L, "1", "")], 0).1);
    assert_eq!(denied.rc, -94);
    drop(r.connect());
    c.junk.fetch_add(1, Ordering::Relaxed);
}

/// A LAN router registers with the soak router, a route goes through its link, then the
/// LAN router is killed (its links drop without a goodbye).
fn link_drop(r: &TestRouter, lan_cf: &str, pseudo: u16, echo: u16, c: &Counts) {
    let lan = TestRouter::start(&format!("P {L} * *\n"), &["-i", lan_cf]);
    let me = r.port.to_string();
    let hops = [
        (L, me.as_str(), ""),
        (L, &pseudo.to_string()[..], ""),
        (L, &echo.to_string()[..], ""),
    ];
    let start = Instant::now();
    loop {
        let (mut s, reply) = ask_route(r, &hops, 0);
        if reply == PONG {
            s.write_all(&frame(b"via the link")).unwrap();
            assert_eq!(read_frame(&mut s), b"via the link");
            break;
        }
        assert!(start.elapsed() < STEP, "the LAN router did not register");
        thread::sleep(Duration::from_millis(50));
    }
    drop(lan);
    c.link_drops.fetch_add(1, Ordering::Relaxed);
}

/// Reverse-invoke storms for the soak's duration: each wave (8 threads x 170 route requests)
/// fills the LAN router's pool beyond its capacity; every session is routed or cleanly
/// refused within -W, the routed ones stand and carry bytes until the wave closes them; the
/// DMZ router restarts every third wave and the LAN router registers again. Afterwards the
/// LAN router, which lived through every restart, is back to its baseline of descriptors
/// and memory.
#[test]
fn ri_storms_return_to_baseline() {
    use ri_support::*;
    let target = echo_target();
    let mut pair = Pair::start(Spec::default());
    let lan_pid = pair.lan.child.id();
    let idle = |pair: &Pair| {
        wait_listing(&pair.dmz, "the streams to close", |t| {
            streams_per_link(t) == vec![0, 0, 0]
        });
    };
    // A first wave opens the whole pool (links opened on demand stay open).
    drop(burst(&pair, target, 8, 170));
    idle(&pair);
    let fd_base = settles(0, Duration::from_millis(500), || fd_count(lan_pid) as u64);
    let rss_base = rss_kib(lan_pid);
    let deadline = Instant::now() + Duration::from_secs(soak_seconds());
    let (mut waves, mut routed, mut refused, mut restarts) = (0u64, 0, 0, 0);
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline && waves < MAX_ROUNDS {
        let mut tally = burst(&pair, target, 8, 170);
        assert!(tally.cut.is_empty(), "wave {waves}: cut {:?}", tally.cut);
        for e in &tally.refused {
            assert_eq!(e.rc, -100, "wave {waves}: {:?}", e.detail());
        }
        assert_eq!(tally.routed.len(), pair.capacity(), "wave {waves}");
        all_open(&tally.routed, "during the wave");
        bytes_flow(&mut tally.routed, 50);
        routed += tally.routed.len();
        refused += tally.refused.len();
        slowest = slowest.max(tally.slowest);
        drop(tally);
        waves += 1;
        if waves % 3 == 0 {
            pair.restart_dmz();
            restarts += 1;
            wait_listing(&pair.dmz, "the whole pool registered again", |t| {
                t.contains("  conns 3 ")
            });
        }
        idle(&pair);
    }
    let fds = settles(fd_base + 2, Duration::from_secs(20), || {
        fd_count(lan_pid) as u64
    });
    let rss_limit = rss_base + (rss_base / 2).max(16 * 1024);
    let rss = settles(rss_limit, Duration::from_secs(20), || rss_kib(lan_pid));
    eprintln!(
        "ri storms {}s: {waves} waves, {routed} routed, {refused} refused (full), {restarts} DMZ restarts, slowest answer {slowest:?}; LAN router fds {fd_base} -> {fds}, rss {rss_base} -> {rss} KiB",
        soak_seconds()
    );
    assert!(fds <= fd_base + 2, "fds {fds}, baseline {fd_base}");
    assert!(rss <= rss_limit, "rss {rss} KiB, baseline {rss_base} KiB");
    assert!(waves >= 2);
}
