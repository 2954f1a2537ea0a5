//! Test support: start the real `saprouter` binary on 127.0.0.1 with a table of the test's
//! own, wait until it accepts connections, and speak NI to it with raw bytes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub mod listener_owner;

/// How long any single step of a test may take before the test fails.
pub const STEP: Duration = Duration::from_secs(10);

/// A free TCP port on 127.0.0.1 (bound, then released).
///
/// Ports come from below the kernel's ephemeral range (32768 and up on Linux), so the
/// outgoing connections of tests running in parallel cannot take a port between this check
/// and the router's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(127)) % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

/// Waits until process `pid` listens on `port` (a router's registration or metrics port,
/// a balancer's front), or panics after [`STEP`].
pub fn wait_listening(pid: u32, port: u16) {
    let never_exits = || None;
    let _ = wait_for_listener(pid, port, never_exits);
}

/// Waits until `child` itself listens on `port` (a connect alone may reach another process
/// that took the port first); the child's exit status if it exits before. Panics after
/// [`STEP`].
pub fn wait_child_listening(child: &mut Child, port: u16) -> Result<(), ExitStatus> {
    let pid = child.id();
    wait_for_listener(pid, port, || child.try_wait().ok().flatten())
}

/// Polls until `pid` listens on `port`, or `exited` reports an exit status.
fn wait_for_listener(
    pid: u32,
    port: u16,
    mut exited: impl FnMut() -> Option<ExitStatus>,
) -> Result<(), ExitStatus> {
    let start = Instant::now();
    loop {
        if listener_owner::listens_on(pid, port) {
            return Ok(());
        }
        if let Some(status) = exited() {
            return Err(status);
        }
        assert!(
            start.elapsed() < STEP,
            "pid {pid} does not listen on port {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running router process; killed when dropped.
pub struct TestRouter {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TestRouter {
    /// Starts `saprouter -r -S <free port> -R <dir>/saprouttab <extra...>` in a fresh directory.
    pub fn start(table: &str, extra: &[&str]) -> TestRouter {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("saprouttab"), table).expect("write table");
            let port = free_port();
            let mut child = Command::new(env!("CARGO_BIN_EXE_saprouter"))
                .current_dir(dir.path())
                .args(["-r", "-S", &port.to_string(), "-R", "saprouttab"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start saprouter");
            if wait_child_listening(&mut child, port).is_ok() {
                return TestRouter { child, port, dir };
            }
            // The port was taken in the meantime, or a start-up error: try again.
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            if !err.contains("Address already in use") {
                panic!("router exited at start: {err}");
            }
        }
        panic!("no free port for the router");
    }

    /// Path of a file in the router's working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the `saprouter` admin client against this router.
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .args(args)
            .args(["-H", "127.0.0.1", "-S", &self.port.to_string()])
            .output()
            .expect("run saprouter admin client")
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(start.elapsed() < STEP, "router did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects a client socket.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to router");
        s.set_read_timeout(Some(STEP)).ok();
        s
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        // A failing test shows whether its router was still running, and its trace.
        if thread::panicking() {
            let status = self.child.try_wait();
            let trace = read_text(&self.path("dev_rout"));
            let tail: Vec<&str> = trace.lines().rev().take(40).collect();
            eprintln!(
                "router on port {} (pid {}): exit status {status:?}; dev_rout ends with:",
                self.port,
                self.child.id()
            );
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when the peer closes `s` without sending a byte (a connection turned away at
/// accept); false when anything arrives.
pub fn closed_without_answer(s: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.read(&mut byte), Ok(0) | Err(_))
}

/// One NI frame for `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Reads one NI frame's payload.
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).expect("frame header");
    let n = u32::from_be_bytes(head) as usize;
    assert!(n <= 64 << 20, "frame of {n} bytes");
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).expect("frame body");
    body
}

/// An `NI_ROUTE` payload built byte by byte: hops of (host, service, password); talk mode;
/// rest = entries - 1; offset = length of entry 0.
pub fn route(hops: &[(&str, &str, &str)], talk_mode: u8) -> Vec<u8> {
    let mut string = Vec::new();
    let mut first = 0;
    for (i, (h, s, p)) in hops.iter().enumerate() {
        for field in [h, s, p] {
            string.extend_from_slice(field.as_bytes());
            string.push(0);
        }
        if i == 0 {
            first = string.len();
        }
    }
    let mut out = b"NI_ROUTE\0".to_vec();
    out.extend_from_slice(&[
        2,
        40,
        hops.len() as u8,
        talk_mode,
        0,
        0,
        hops.len() as u8 - 1,
    ]);
    out.extend_from_slice(&(string.len() as u32).to_be_bytes());
    out.extend_from_slice(&(first as u32).to_be_bytes());
    out.extend_from_slice(&string);
    out
}

/// `NI_PONG\0`.
pub const PONG: &[u8] = b"NI_PONG\0";

/// A decoded `NI_RTERR`: return code and the 21 text fields.
#[derive(Debug)]
pub struct RtErr {
    pub version: u8,
    pub opcode: u8,
    pub rc: i32,
    pub fields: Vec<String>,
}

impl RtErr {
    pub fn error(&self) -> &str {
        &self.fields[2]
    }
    pub fn detail(&self) -> &str {
        &self.fields[9]
    }
}

/// Decodes an `NI_RTERR` payload by hand (independently of the crate's decoder).
pub fn rterr(payload: &[u8]) -> RtErr {
    assert!(
        payload.starts_with(b"NI_RTERR\0"),
        "not NI_RTERR: {:?}",
        String::from_utf8_lossy(&payload[..payload.len().min(40)])
    );
    let rc = i32::from_be_bytes(payload[12..16].try_into().unwrap());
    let len = u32::from_be_bytes(payload[16..20].try_into().unwrap()) as usize;
    assert_eq!(payload.len(), 20 + len + 4, "text length and trailer");
    let text = &payload[20..20 + len];
    let fields: Vec<String> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    };
    if !fields.is_empty() {
        assert_eq!(fields[0], "*ERR*");
        assert_eq!(fields[20], "*ERR*");
        assert_eq!(fields[3], rc.to_string());
    }
    RtErr {
        version: payload[9],
        opcode: payload[10],
        rc,
        fields,
    }
}

/// Sends a route request and returns the router's one reply frame.
pub fn ask_route(
    router: &TestRouter,
    hops: &[(&str, &str, &str)],
    talk_mode: u8,
) -> (TcpStream, Vec<u8>) {
    let mut s = router.connect();
    s.write_all(&frame(&route(hops, talk_mode)))
        .expect("send route");
    let reply = read_frame(&mut s);
    (s, reply)
}

/// A route that must be refused: its return code and record.
pub fn refused(router: &TestRouter, hops: &[(&str, &str, &str)], talk_mode: u8) -> RtErr {
    let (_s, reply) = ask_route(router, hops, talk_mode);
    assert_ne!(reply, PONG, "route was accepted");
    rterr(&reply)
}

/// A server on a free port that echoes NI frames (one thread per connection).
pub fn ni_echo() -> u16 {
    spawn_server(|mut s| loop {
        let mut head = [0u8; 4];
        if s.read_exact(&mut head).is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        if s.write_all(&head).and_then(|_| s.write_all(&body)).is_err() {
            return;
        }
    })
}

/// A server on a free port that echoes raw bytes and half-closes when its client does.
pub fn raw_echo() -> u16 {
    spawn_server(|mut s| {
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = s.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// Runs `handler` for every connection to a new listener on 127.0.0.1; returns its port.
pub fn spawn_server(handler: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let h = handler.clone();
            thread::spawn(move || h(conn));
        }
    });
    port
}

/// Pattern bytes for payload tests.
pub fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// Address helper.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Reads a text file, empty if missing.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the router's trace file (`dev_rout`) contains `needle` (logs are written as
/// things happen, not before the client sees the outcome); returns the text. Panics after
/// [`STEP`] with what the file holds.
pub fn wait_trace(router: &TestRouter, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = read_text(&router.path("dev_rout"));
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < STEP,
            "dev_rout has no {needle:?}; it holds:\n{text}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Says on stderr that part of a test did not run. Written to the process's stderr itself,
/// not through `eprintln!`, which the test harness captures and hides for passing tests: a
/// skip is shown in every `cargo test` run.
pub fn skipped(what: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// Whether the outside program `tool` (haproxy, nmap, openssl, docker, ...) can be run.
///
/// A test that needs it calls this first. Where it is missing the test says so on stderr
/// and returns early, except under CI (`CI` set), where a missing tool fails the test:
/// `.ci/run` installs every tool the suite uses, so CI never passes without testing.
pub fn tool_available(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed, and CI must run every test (.ci/run installs it)"
        );
        // Some tests skip only the part that needs the tool: say what did not run either way.
        skipped(&format!(
            "needs {tool}, which is not installed; the checks that use it did not run"
        ));
    }
    found
}

/// The router's `-l` output.
pub fn listing(r: &TestRouter) -> String {
    String::from_utf8_lossy(&r.admin(&["-l"]).stdout).into_owned()
}

/// Polls `-l` until `ok` holds; returns that output. Fails the test after [`STEP`].
pub fn wait_listing(r: &TestRouter, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = listing(r);
        if ok(&text) {
            return text;
        }
        assert!(
            start.elapsed() < STEP,
            "timed out waiting for {what}:\n{text}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Status and body of `GET path` on a `--metrics` port; retries while it is not up yet.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let start = Instant::now();
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(err) => {
                assert!(start.elapsed() < STEP, "metrics endpoint not up: {err}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(STEP)).expect("read timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").expect("send the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// Resident memory of a process, in KiB (`VmRSS` of /proc/<pid>/status; 0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Writes a reverse-invoke parameter file (`-i`) into a temporary directory; returns the
/// directory (kept for as long as the router runs) and the file's path.
pub fn write_cf(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cf");
    std::fs::write(&path, text).expect("write cf");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}
