//! Test support for reverse invoke under load: a DMZ router and a LAN router on loopback
//! with SAP's default pool, a target that echoes any number of sessions, a listener on the
//! pseudo address that counts who dials it, and storms of route requests whose every
//! outcome is classified and timed (routed, cleanly refused, or cut while a router
//! restarts; never hung).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
// The storm tests use them through this module alone.
#[allow(unused_imports)]
pub use crate::common::{listing, wait_listing};

pub const L: &str = "127.0.0.1";
/// The routers' `-W` (SAP's default).
pub const W: Duration = Duration::from_millis(5000);
/// Slack on top of `-W` for a reply to cross loopback on a busy machine.
pub const SLACK: Duration = Duration::from_secs(2);

/// Raises this process's open-file limit: a storm holds thousands of sockets.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// A target on 127.0.0.1 that echoes bytes on any number of connections (one tokio task
/// each, not one thread), and half-closes when its client does.
pub fn echo_target() -> u16 {
    let listener = std::net::TcpListener::bind((L, 0)).expect("bind echo target");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let (mut rd, mut wr) = socket.into_split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
                });
            }
        });
    });
    port
}

/// A listener on the pseudo address: whatever connects to it was dialled directly, which
/// must never happen to a registered pseudo address.
pub struct Trap {
    pub hits: Arc<AtomicUsize>,
}

impl Trap {
    pub fn on(host: &str, port: u16) -> Trap {
        let listener = TcpListener::bind((host, port)).expect("bind the trap");
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        thread::spawn(move || {
            for conn in listener.incoming() {
                counted.fetch_add(1, Ordering::Relaxed);
                drop(conn);
            }
        });
        Trap { hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

/// How a pair is set up beyond the defaults.
#[derive(Clone, Default)]
pub struct Spec {
    /// The pseudo host a route names (`reg_hostname` when not 127.0.0.1).
    pub pseudo_host: Option<String>,
    /// Extra DMZ table lines (before its `P` line for the pseudo address); `{pseudo}` stands
    /// for the pseudo port.
    pub dmz_table: String,
    /// Extra options for each router (`-K ...`).
    pub dmz_args: Vec<String>,
    pub lan_args: Vec<String>,
}

/// A DMZ router and a LAN router registered with it: SAP's default pool (3 links, on
/// demand), `-C 20000`, `-W` default.
pub struct Pair {
    pub dmz: TestRouter,
    pub lan: TestRouter,
    pub reg: u16,
    pub pseudo: u16,
    pub pseudo_host: String,
    /// The DMZ router's current port (it changes when the DMZ router restarts).
    pub dmz_port: Arc<AtomicU16>,
    spec: Spec,
    dmz_cf: (tempfile::TempDir, String),
    _lan_cf: (tempfile::TempDir, String),
}

fn start_dmz(spec: &Spec, cf: &str, pseudo_host: &str, pseudo: u16) -> TestRouter {
    let table = format!(
        "{}P * {pseudo_host} {pseudo}\nD * * *\n",
        spec.dmz_table.replace("{pseudo}", &pseudo.to_string())
    );
    let mut args: Vec<&str> = vec!["-i", cf, "-C", "20000"];
    args.extend(spec.dmz_args.iter().map(String::as_str));
    TestRouter::start(&table, &args)
}

impl Pair {
    pub fn start(spec: Spec) -> Pair {
        raise_fd_limit();
        let reg = free_port();
        let pseudo = free_port();
        let pseudo_host = spec.pseudo_host.clone().unwrap_or_else(|| L.to_string());
        let dmz_cf = write_cf(&format!("client = true\nclient_service = {reg}\n"));
        let reg_hostname = match &spec.pseudo_host {
            Some(h) => format!("reg_hostname = {h}\n"),
            None => String::new(),
        };
        let lan_cf = write_cf(&format!(
            "server = true\nclient_hostname = {L}\nclient_service = {reg}\nreg_service = {pseudo}\n{reg_hostname}"
        ));
        let dmz = start_dmz(&spec, &dmz_cf.1, &pseudo_host, pseudo);
        wait_listening(dmz.child.id(), reg);
        let mut lan_args: Vec<&str> = vec!["-i", &lan_cf.1, "-C", "20000"];
        lan_args.extend(spec.lan_args.iter().map(String::as_str));
        let lan = TestRouter::start(&format!("P {L} * *\n"), &lan_args);
        let pair = Pair {
            dmz_port: Arc::new(AtomicU16::new(dmz.port)),
            dmz,
            lan,
            reg,
            pseudo,
            pseudo_host,
            spec,
            dmz_cf,
            _lan_cf: lan_cf,
        };
        pair.wait_registered();
        pair
    }

    /// Waits until the DMZ router lists the LAN router.
    pub fn wait_registered(&self) -> String {
        wait_listing(&self.dmz, "the LAN router's registration", |t| {
            t.contains("srv no 1 ") && t.contains(&format!("reg port {}", self.pseudo))
        })
    }

    /// Kills the DMZ router and starts it again (new user port, same registration port).
    pub fn restart_dmz(&mut self) {
        let _ = self.dmz.child.kill();
        self.dmz.wait_exit();
        self.dmz = start_dmz(&self.spec, &self.dmz_cf.1, &self.pseudo_host, self.pseudo);
        self.dmz_port.store(self.dmz.port, Ordering::Relaxed);
    }

    /// Kills the LAN router.
    pub fn kill_lan(&mut self) {
        let _ = self.lan.child.kill();
        self.lan.wait_exit();
    }

    /// A route DMZ → pseudo address → `target`.
    pub fn route(&self, target: u16) -> Attempt {
        route_via(
            self.dmz_port.load(Ordering::Relaxed),
            &self.pseudo_host,
            self.pseudo,
            target,
        )
    }

    /// Sessions the LAN router can carry (its pool times the streams per link).
    pub fn capacity(&self) -> usize {
        3 * saprouter::ri::mux::SESSIONS_PER_LINK
    }
}

/// Open streams per link in the DMZ router's `-l`.
pub fn streams_per_link(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 6 && f[2].contains(':')).then(|| f[3].parse().ok())?
        })
        .collect()
}

/// What became of one route request.
pub enum Attempt {
    /// `NI_PONG`: the session stands.
    Routed(TcpStream, Duration),
    /// An `NI_RTERR`.
    Refused(RtErr, Duration),
    /// No answer but a closed connection, or no connection (the DMZ router is down or was
    /// killed meanwhile).
    Cut(String, Duration),
}

impl Attempt {
    pub fn took(&self) -> Duration {
        match self {
            Attempt::Routed(_, d) | Attempt::Refused(_, d) | Attempt::Cut(_, d) => *d,
        }
    }
}

/// Reads one frame, or says why not; a read that outlives the timeout is a hang.
fn reply(s: &mut TcpStream) -> Result<Vec<u8>, (String, bool)> {
    let mut head = [0u8; 4];
    let mut read = |buf: &mut [u8]| {
        s.read_exact(buf).map_err(|e| {
            let hung = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            (e.to_string(), hung)
        })
    };
    read(&mut head)?;
    let n = u32::from_be_bytes(head) as usize;
    if n > 1 << 20 {
        return Err((format!("frame of {n} bytes"), false));
    }
    let mut body = vec![0u8; n];
    read(&mut body)?;
    Ok(body)
}

/// One route request DMZ (`dmz_port`) → `pseudo_host:pseudo` → 127.0.0.1:`target`. Panics
/// when no answer (or close) comes within `-W` plus slack.
pub fn route_via(dmz_port: u16, pseudo_host: &str, pseudo: u16, target: u16) -> Attempt {
    let started = Instant::now();
    let mut s = match TcpStream::connect((L, dmz_port)) {
        Ok(s) => s,
        Err(e) => return Attempt::Cut(format!("connect: {e}"), started.elapsed()),
    };
    s.set_read_timeout(Some(W + SLACK)).expect("timeout");
    let hops = [
        (L, &dmz_port.to_string()[..], ""),
        (pseudo_host, &pseudo.to_string()[..], ""),
        (L, &target.to_string()[..], ""),
    ];
    if let Err(e) = s.write_all(&frame(&crate::common::route(&hops, 0))) {
        return Attempt::Cut(format!("send: {e}"), started.elapsed());
    }
    let answer = reply(&mut s);
    let took = started.elapsed();
    match answer {
        Ok(payload) if payload == PONG => {
            s.set_read_timeout(Some(STEP)).expect("timeout");
            Attempt::Routed(s, took)
        }
        Ok(payload) => Attempt::Refused(rterr(&payload), took),
        Err((why, hung)) => {
            assert!(
                !hung,
                "no answer within -W + {SLACK:?}: {why} after {took:?}"
            );
            Attempt::Cut(why, took)
        }
    }
}

/// The outcomes of a storm.
#[derive(Default)]
pub struct Tally {
    pub routed: Vec<TcpStream>,
    pub refused: Vec<RtErr>,
    pub cut: Vec<String>,
    pub slowest: Duration,
}

impl Tally {
    pub fn add(&mut self, attempt: Attempt) {
        self.slowest = self.slowest.max(attempt.took());
        match attempt {
            Attempt::Routed(s, _) => self.routed.push(s),
            Attempt::Refused(e, _) => self.refused.push(e),
            Attempt::Cut(why, _) => self.cut.push(why),
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.routed.extend(other.routed);
        self.refused.extend(other.refused);
        self.cut.extend(other.cut);
        self.slowest = self.slowest.max(other.slowest);
    }

    pub fn total(&self) -> usize {
        self.routed.len() + self.refused.len() + self.cut.len()
    }

    /// Refusals grouped by return code and detail (times stripped), for messages.
    pub fn refusal_kinds(&self) -> Vec<(i32, String, usize)> {
        let mut kinds: Vec<(i32, String, usize)> = Vec::new();
        for e in &self.refused {
            let detail = e
                .detail()
                .split(" (last seen")
                .next()
                .unwrap_or("")
                .to_string();
            match kinds
                .iter_mut()
                .find(|(rc, d, _)| *rc == e.rc && *d == detail)
            {
                Some(k) => k.2 += 1,
                None => kinds.push((e.rc, detail, 1)),
            }
        }
        kinds
    }
}

/// `n` route requests one after another.
pub fn in_a_row(pair: &Pair, target: u16, n: usize) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..n {
        tally.add(pair.route(target));
    }
    tally
}

/// `threads` × `each` route requests, all threads released at once.
pub fn burst(pair: &Pair, target: u16, threads: usize, each: usize) -> Tally {
    let barrier = Arc::new(Barrier::new(threads));
    let port = Arc::clone(&pair.dmz_port);
    let (host, pseudo) = (pair.pseudo_host.clone(), pair.pseudo);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (barrier, port, host) = (Arc::clone(&barrier), Arc::clone(&port), host.clone());
            thread::spawn(move || {
                barrier.wait();
                let mut tally = Tally::default();
                for _ in 0..each {
                    tally.add(route_via(
                        port.load(Ordering::Relaxed),
                        &host,
                        pseudo,
                        target,
                    ));
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.join().expect("a storm thread failed"));
    }
    tally
}

/// Panics unless every session in `sessions` is still open: nothing arrived, no EOF.
pub fn all_open(sessions: &[TcpStream], what: &str) {
    let mut ended = 0;
    for s in sessions {
        s.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 1];
        match (&*s).read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            _ => ended += 1,
        }
        s.set_nonblocking(false).expect("blocking");
    }
    assert_eq!(
        ended,
        0,
        "{what}: {ended} of {} routed sessions ended before their clients closed them",
        sessions.len()
    );
}

/// An NI frame through every `every`-th session (the target echoes it); returns how many.
pub fn bytes_flow(sessions: &mut [TcpStream], every: usize) -> usize {
    let mut checked = 0;
    for (i, s) in sessions.iter_mut().enumerate().step_by(every.max(1)) {
        let data = pattern(1000 + i % 7 * 3000, i);
        s.write_all(&frame(&data))
            .expect("send on a routed session");
        assert!(read_frame(s) == data, "session {i}: bytes changed");
        checked += 1;
    }
    checked
}

/// RSS per session of a router between `before` and now, in KiB.
pub fn rss_per_session(pid: u32, before: u64, sessions: usize) -> f64 {
    (rss_kib(pid).saturating_sub(before)) as f64 / sessions.max(1) as f64
}
