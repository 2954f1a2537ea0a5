//! Registration storms (and the self-route rule for the registration port) against a real
//! reverse-invoke DMZ router: a reconnect storm, garbage registrations and a slowloris on
//! the registration port, while a real LAN router registers and routes through it; then
//! the DMZ router's descriptors are back to the baseline and it still routes. Session
//! storms over the links: waves that fill the LAN router's pool and are reset without a
//! goodbye, and a storm while the DMZ router restarts.

mod common;
mod probe;
mod ri_support;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use probe::*;

const L: &str = "127.0.0.1";

fn cf(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cf");
    std::fs::write(&path, text).expect("write cf");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

/// A DMZ router with its registration port `reg` and a table permitting routes to the
/// pseudo port a LAN router registers and to ordinary hosts; waits until the registration
/// port listens.
fn dmz_router(reg: u16, pseudo: u16, extra: &[&str]) -> (TestRouter, tempfile::TempDir) {
    // exclusive = no: the tests also route through this router to ordinary hosts.
    let (dir, path) = cf(&format!(
        "client = true\nclient_service = {reg}\nconnect_timeout = 1000\nexclusive = no\n"
    ));
    let mut args = vec!["-i", path.as_str()];
    args.extend_from_slice(extra);
    let dmz = TestRouter::start(&format!("P * {L} {pseudo}\nP * * *\n"), &args);
    wait_listening(dmz.child.id(), reg);
    (dmz, dir)
}

/// Starts a LAN router registering `pseudo` with the DMZ router, and waits until a route
/// through the link reaches the echo server; returns the route's stream.
fn lan_router_routes(
    dmz: &TestRouter,
    reg: u16,
    pseudo: u16,
    echo: u16,
) -> (TestRouter, tempfile::TempDir, std::net::TcpStream) {
    let (dir, path) = cf(&format!(
        "server = true\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\n"
    ));
    let lan = TestRouter::start(&format!("P {L} * *\n"), &["-i", &path]);
    let me = dmz.port.to_string();
    let start = Instant::now();
    loop {
        let hops = [
            (L, &me[..], ""),
            (L, &pseudo.to_string()[..], ""),
            (L, &echo.to_string()[..], ""),
        ];
        let (s, reply) = ask_route(dmz, &hops, 0);
        if reply == PONG {
            return (lan, dir, s);
        }
        assert!(start.elapsed() < STEP, "the LAN router never registered");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn registration_port_survives_storms_and_keeps_serving() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    let (dmz, _dmz_cf) = dmz_router(reg, pseudo, &["-W", "2000"]);
    let pid = dmz.child.id();
    let me = dmz.port.to_string();
    let baseline = settles(0, Duration::from_millis(500), || fd_count(pid) as u64);

    // Routes to the registration port are routes to the router itself.
    let e = rterr(&ask_route(&dmz, &[(L, &me, ""), (L, &reg.to_string(), "")], 0).1);
    assert_eq!(e.rc, -94, "route to the registration port");

    // Slowloris on the registration port from one address: at most half the places.
    let held: Vec<_> = (0..48).map(|_| connect_from([127, 0, 0, 2], reg)).collect();
    // A reconnect storm from a second address, garbage registrations from a third: the
    // storm meets its per-source cap, the third address still gets its refusals.
    for i in 0..300 {
        drop(connect_from([127, 0, 0, 3], reg));
        if i % 6 == 0 {
            let mut s = connect_from([127, 0, 0, 4], reg);
            s.write_all(&frame(b"RI_REGISTER\0\x01garbage")).unwrap();
            let reply = read_frame(&mut s);
            assert_eq!(rterr(&reply).rc, -93, "garbage registration {i}");
        }
    }
    // A real LAN router still registers, and routes pass through its link.
    let (_lan, _lan_cf, mut s) = lan_router_routes(&dmz, reg, pseudo, echo);
    s.write_all(&frame(b"through the link")).unwrap();
    assert_eq!(read_frame(&mut s), b"through the link");
    // The slowloris connections are closed by the handshake deadline.
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        // A refusal may come first; then EOF (or a reset), never a timeout.
        if let Err(e) = s.read_to_end(&mut rest) {
            assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "idle registration kept open"
            );
        }
    }
    let (s, reply) = ask_route(&dmz, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
    assert_eq!(reply, PONG, "the DMZ router no longer routes");
    drop(s);
    // The LAN link (and its control stream) stays; everything else is gone.
    let after = settles(baseline + 4, Duration::from_secs(15), || {
        fd_count(pid) as u64
    });
    assert!(
        after <= baseline + 4,
        "{after} descriptors, {baseline} before"
    );
}

/// H57 with `--penalty`: an address whose registrations keep being refused is closed at
/// accept on the registration port; a real LAN router from another address registers.
#[test]
fn refused_registrations_earn_a_penalty() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    let (dmz, _dmz_cf) = dmz_router(reg, pseudo, &["--penalty", "2/60"]);
    for attempt in 0..2 {
        let mut s = connect_from([127, 0, 0, 4], reg);
        s.write_all(&frame(b"RI_REGISTER\0\x01garbage")).unwrap();
        assert_eq!(rterr(&read_frame(&mut s)).rc, -93, "attempt {attempt}");
    }
    // Closed without a reply now.
    let mut s = connect_from([127, 0, 0, 4], reg);
    let _ = s.write_all(&frame(b"RI_REGISTER\0\x01garbage"));
    assert!(
        closed_without_answer(&mut s),
        "a penalised address got an answer"
    );
    // A LAN router from another address registers and routes pass.
    let (_lan, _lan_cf, mut s) = lan_router_routes(&dmz, reg, pseudo, echo);
    s.write_all(&frame(b"after the penalty")).unwrap();
    assert_eq!(read_frame(&mut s), b"after the penalty");
}

/// Waves of sessions fill the LAN router's pool past its capacity and are reset at once (RST,
/// no goodbye), again and again, while 200 sessions stand. The DMZ router's streams and the
/// LAN router's sessions then end in a burst, racing the next wave's new streams: every new
/// session is routed or cleanly refused, no standing session ends, no link is lost, and
/// nothing dials the pseudo address.
#[test]
fn waves_of_reset_sessions_never_cost_a_standing_one() {
    use ri_support::*;
    let started = Instant::now();
    let target = echo_target();
    let pair = Pair::start(Spec::default());
    let trap = Trap::on(&pair.pseudo_host, pair.pseudo);
    let mut standing = in_a_row(&pair, target, 200);
    assert_eq!(standing.routed.len(), 200, "{:?}", standing.refusal_kinds());
    let (mut routed, mut refused) = (0, 0);
    for wave in 0..4 {
        let tally = burst(&pair, target, 8, 160);
        assert!(tally.cut.is_empty(), "wave {wave}: cut {:?}", tally.cut);
        for e in &tally.refused {
            assert_eq!(e.rc, -100, "wave {wave}: {:?}", e.detail());
        }
        routed += tally.routed.len();
        refused += tally.refused.len();
        for s in tally.routed {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
    }
    assert!(refused > 0, "the waves never reached the capacity");
    all_open(&standing.routed, "after the waves");
    assert_eq!(bytes_flow(&mut standing.routed, 1), 200);
    // The three links of the first registration still carry them: no link was lost.
    let text = listing(&pair.dmz);
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().count() == 6 && l.contains("127.0.0.1:"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["1", "2", "3"], "{text}");
    assert_eq!(trap.hits(), 0, "the pseudo address was dialled");
    eprintln!(
        "reset waves: {routed} routed and reset, {refused} refused (full), 200 standing sessions intact; {:?}",
        started.elapsed()
    );
}

/// Route requests from 4 threads while the DMZ router is killed and started again: each
/// gets a PONG, an NI_RTERR or a closed connection, never a hang past -W; the LAN router
/// registers again; the sessions routed after that stand and carry bytes.
#[test]
fn a_storm_while_the_dmz_router_restarts() {
    use ri_support::*;
    let started = Instant::now();
    let target = echo_target();
    let mut pair = Pair::start(Spec::default());
    let trap = Trap::on(&pair.pseudo_host, pair.pseudo);
    let stop = Arc::new(AtomicBool::new(false));
    let routed = Arc::new(AtomicUsize::new(0));
    // Sessions routed once the LAN router is registered again.
    let after: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
    let reregistered = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, routed, after, reregistered) = (
                Arc::clone(&stop),
                Arc::clone(&routed),
                Arc::clone(&after),
                Arc::clone(&reregistered),
            );
            let (port, host, pseudo) = (
                Arc::clone(&pair.dmz_port),
                pair.pseudo_host.clone(),
                pair.pseudo,
            );
            thread::spawn(move || {
                let mut tally = Tally::default();
                let mut held = std::collections::VecDeque::new();
                while !stop.load(Ordering::Relaxed) {
                    let late = reregistered.load(Ordering::Relaxed);
                    match route_via(port.load(Ordering::Relaxed), &host, pseudo, target) {
                        Attempt::Routed(s, took) => {
                            routed.fetch_add(1, Ordering::Relaxed);
                            tally.slowest = tally.slowest.max(took);
                            if late {
                                after.lock().unwrap().push(s);
                            } else {
                                held.push_back(s);
                                if held.len() > 50 {
                                    held.pop_front();
                                }
                            }
                        }
                        other => tally.add(other),
                    }
                }
                tally
            })
        })
        .collect();
    let wait_routed = |n: usize| {
        let start = Instant::now();
        while routed.load(Ordering::Relaxed) < n {
            assert!(
                start.elapsed() < STEP,
                "only {} routed",
                routed.load(Ordering::Relaxed)
            );
            thread::sleep(Duration::from_millis(10));
        }
    };
    wait_routed(300);
    let restart = Instant::now();
    pair.restart_dmz();
    pair.wait_registered();
    let back = restart.elapsed();
    reregistered.store(true, Ordering::Relaxed);
    let start = Instant::now();
    while after.lock().unwrap().len() < 300 {
        assert!(start.elapsed() < STEP, "sessions are not routed again");
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for w in workers {
        // A hang would have panicked in route_via.
        tally.merge(w.join().expect("a storm thread failed"));
    }
    assert!(tally.slowest <= W + SLACK, "{:?}", tally.slowest);
    let mut after = std::mem::take(&mut *after.lock().unwrap());
    assert!(after.len() >= 300);
    all_open(&after, "sessions routed after the restart");
    let sampled = bytes_flow(&mut after, 10);
    // exclusive = yes (SAP's default, this pair's): a restarted DMZ router that has not yet
    // seen the registration refuses the route rather than dialling the pseudo address.
    assert_eq!(trap.hits(), 0, "the pseudo address was dialled directly");
    eprintln!(
        "DMZ restart storm: {} routed, {} refused {:?}, {} cut; LAN registered again {back:?} after the kill; {} sessions after it stand, bytes on {sampled}; pseudo address dialled {} times; {:?}",
        routed.load(Ordering::Relaxed),
        tally.refused.len(),
        tally.refusal_kinds(),
        tally.cut.len(),
        after.len(),
        trap.hits(),
        started.elapsed()
    );
}
