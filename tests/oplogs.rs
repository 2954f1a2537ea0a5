//! What the logs say agrees with the wire: byte counts of a route its client reset, the
//! `READ ROUTTAB` line on every table read (start, `-n`, SIGHUP), and a `-G` log whose
//! rotation fails keeps writing without retrying the rename on every line.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";

/// Closes `s` with a reset (SO_LINGER 0) instead of a FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(s);
}

/// Waits until `path` holds `needle` at least `count` times; returns the text.
fn wait_count(path: &std::path::Path, needle: &str, count: usize) -> String {
    let start = Instant::now();
    loop {
        let text = read_text(path);
        if text.matches(needle).count() >= count {
            return text;
        }
        assert!(
            start.elapsed() < STEP,
            "{} holds {needle:?} fewer than {count} times:\n{text}",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bytes_to_a_client_that_resets_are_counted() {
    const N: usize = 58_549;
    // A server that sends N bytes at once and then waits for its client to go.
    let server = spawn_server(|mut s| {
        if s.write_all(&pattern(N, 3)).is_ok() {
            let mut buf = [0u8; 1024];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let r = TestRouter::start(&format!("P {L} {L} {server}\n"), &["-V", "2"]);
    // Raw (talk mode 1) and NI (talk mode 0) routes take different relay paths.
    for (mode, sent) in [(1u8, 0usize), (0, 5)] {
        let (mut s, reply) = ask_route(&r, &[(L, "", ""), (L, &server.to_string(), "")], mode);
        assert_eq!(reply, PONG);
        if sent > 0 {
            s.write_all(&pattern(sent, 1)).expect("send to server");
        }
        let mut got = vec![0u8; N];
        s.read_exact(&mut got).expect("read the server's bytes");
        assert_eq!(got, pattern(N, 3));
        reset(s);
        let want = format!("to_server={sent} to_client={N}");
        wait_trace(&r, &want);
    }
    let trace = read_text(&r.path("dev_rout"));
    assert!(!trace.contains("to_client=0"), "{trace}");
}

#[test]
fn every_table_read_writes_read_routtab() {
    let r = TestRouter::start("P * * *\n", &["-G", "conn.log"]);
    let log = r.path("conn.log");
    wait_count(&log, "READ ROUTTAB", 1);
    // -n through the admin client.
    let out = r.admin(&["-n"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_count(&log, "READ ROUTTAB", 2);
    // SIGHUP.
    let pid = r.child.id() as libc::pid_t;
    // SAFETY: signals a child process this test started and still holds.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let text = wait_count(&log, "READ ROUTTAB", 3);
    // After the 24-character time stamp the three lines are the same.
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("READ ROUTTAB"))
        .map(|l| &l[24..])
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| *l == lines[0]), "{lines:?}");
    assert!(lines[0].ends_with("saprouttab"), "{lines:?}");
}

#[test]
fn failed_log_rotation_is_not_retried_on_every_line() {
    // `conn.log.old` is a directory that is not empty: renaming the log onto it fails,
    // even for root.
    // The trace goes to stderr (a pipe is never rotated, where -J would rotate dev_rout).
    let mut r = TestRouter::start(
        "P * * *\n",
        &["-G", "conn.log", "-J", "1000", "-D", "-T", "/dev/stderr"],
    );
    std::fs::create_dir_all(r.path("conn.log.old/keep")).expect("block the rotation");
    let log = r.path("conn.log");
    // Each connection writes CONNECT FROM and DISCONNECT (about 60 bytes each).
    const CONNECTIONS: usize = 25;
    for _ in 0..CONNECTIONS {
        let s = r.connect();
        drop(s);
    }
    let text = wait_count(&log, "DISCONNECT", CONNECTIONS);
    // (The readiness probe of the test harness is one more connection.)
    assert!(
        text.matches("CONNECT FROM").count() >= CONNECTIONS,
        "{text}"
    );
    let written = 2 * CONNECTIONS * 60;
    let _ = r.child.kill();
    let mut trace = String::new();
    if let Some(mut err) = r.child.stderr.take() {
        let _ = err.read_to_string(&mut trace);
    }
    let failures = trace.matches("connection log rotation failed").count();
    assert!(failures >= 1, "the failed rotation is reported:\n{trace}");
    // Once per -J bytes at most, not once per line.
    assert!(
        failures <= written / 1000 + 1,
        "{failures} failed rotations for about {written} bytes:\n{trace}"
    );
}
