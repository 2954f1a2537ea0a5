//! `--metrics` and `--log-format json` on the real binary: the counters move as routes are
//! made and refused, `/healthz` and `/readyz` answer, the JSON trace is one object per line.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";

/// A router with `--metrics` on a port of its own; returns it and the metrics port.
fn start(table: &str, extra: &[&str]) -> (TestRouter, u16) {
    let port = free_port();
    let addr = format!("{L}:{port}");
    let mut args = vec!["--metrics", addr.as_str()];
    args.extend_from_slice(extra);
    let router = TestRouter::start(table, &args);
    (router, port)
}

/// One HTTP exchange: status code and body. Retries while the endpoint is not up yet.
fn http(port: u16, request: &str) -> (u16, String) {
    let start = Instant::now();
    let mut s = loop {
        match TcpStream::connect((L, port)) {
            Ok(s) => break s,
            Err(err) => {
                assert!(start.elapsed() < STEP, "metrics endpoint not up: {err}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get(port: u16, path: &str) -> (u16, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

fn scrape(port: u16) -> String {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of one series, `name{labels}` exactly as exposed; 0 when absent.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap_or(f64::NAN))
        .unwrap_or(0.0)
}

/// Scrapes until `series` has `want`, or fails after [`STEP`] showing the last scrape.
fn wait_value(port: u16, series: &str, want: f64) {
    let start = Instant::now();
    loop {
        let body = scrape(port);
        if value(&body, series) == want {
            return;
        }
        assert!(
            start.elapsed() < STEP,
            "{series} never became {want}; last scrape:\n{body}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `data` through an open raw route to an echo server and reads it all back.
fn echo_through(s: TcpStream, data: &[u8]) {
    let mut writer = s.try_clone().unwrap();
    let sent = data.to_vec();
    let t = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut reader = s;
    reader.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == data, "echo differs");
}

#[test]
fn counters_follow_routes_refusals_and_bytes() {
    let echo = raw_echo();
    let closed = free_port();
    let table = format!("P {L} {L} {echo}\nD {L} {L} {closed}\nD * * *\n");
    let (r, m) = start(&table, &[]);
    let me = r.port.to_string();
    let body = scrape(m);
    assert_eq!(
        value(
            &body,
            "saprouter_sessions_total{outcome=\"routed\",rc=\"0\"}"
        ),
        0.0
    );
    assert_eq!(value(&body, "saprouter_client_table_max"), 800.0);
    assert_eq!(value(&body, "saprouter_ready"), 1.0);
    assert_eq!(value(&body, "saprouter_ri_server_mode"), 0.0);

    // A raw route, held open: one active session, two client-table slots.
    let (s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 1);
    assert_eq!(reply, PONG);
    wait_value(m, "saprouter_sessions_active", 1.0);
    let body = scrape(m);
    assert_eq!(value(&body, "saprouter_client_table_used"), 2.0);
    assert_eq!(value(&body, "saprouter_route_setup_seconds_count"), 1.0);
    let data = pattern(300_000, 9);
    echo_through(s, &data);
    wait_value(
        m,
        "saprouter_sessions_total{outcome=\"routed\",rc=\"0\"}",
        1.0,
    );
    let n = data.len() as f64;
    wait_value(
        m,
        "saprouter_relayed_bytes_total{direction=\"to_server\"}",
        n,
    );
    wait_value(
        m,
        "saprouter_relayed_bytes_total{direction=\"to_client\"}",
        n,
    );
    wait_value(m, "saprouter_sessions_active", 0.0);
    wait_value(m, "saprouter_client_table_used", 0.0);

    // Refusals: by line 2, by line 3, to the router's own port, an unknown service.
    assert_eq!(
        refused(&r, &[(L, &me, ""), (L, &closed.to_string(), "")], 0).rc,
        -94
    );
    assert_eq!(
        refused(&r, &[(L, &me, ""), ("127.0.0.2", "1", "")], 0).rc,
        -94
    );
    assert_eq!(refused(&r, &[(L, &me, ""), (L, &me, "")], 0).rc, -94);
    let unknown = refused(&r, &[(L, &me, ""), (L, "no-such-service-x", "")], 0).rc;
    wait_value(m, "saprouter_denials_total{line=\"2\"}", 1.0);
    wait_value(m, "saprouter_denials_total{line=\"3\"}", 1.0);
    wait_value(m, "saprouter_denials_total{line=\"own_port\"}", 1.0);
    wait_value(
        m,
        "saprouter_sessions_total{outcome=\"denied\",rc=\"-94\"}",
        3.0,
    );
    wait_value(
        m,
        &format!("saprouter_sessions_total{{outcome=\"error\",rc=\"{unknown}\"}}"),
        1.0,
    );
    // A client that says something else first gets -93 and counts as an error.
    let mut junk = r.connect();
    junk.write_all(&frame(b"HELLO\0")).unwrap();
    assert_eq!(rterr(&read_frame(&mut junk)).rc, -93);
    wait_value(
        m,
        "saprouter_sessions_total{outcome=\"error\",rc=\"-93\"}",
        1.0,
    );
    let body = scrape(m);
    assert_eq!(value(&body, "saprouter_route_setup_seconds_count"), 1.0);
    assert_eq!(
        value(
            &body,
            "saprouter_sessions_total{outcome=\"routed\",rc=\"0\"}"
        ),
        1.0
    );
}

#[test]
fn admin_requests_and_reloads_are_counted() {
    let (r, m) = start("P * * *\n", &[]);
    assert!(r.admin(&["-l"]).status.success());
    assert!(r.admin(&["-n"]).status.success());
    wait_value(
        m,
        "saprouter_admin_requests_total{command=\"info\",opcode=\"2\"}",
        1.0,
    );
    wait_value(m, "saprouter_reloads_total{result=\"success\"}", 1.0);
    let body = scrape(m);
    assert_eq!(value(&body, "saprouter_reload_last_success"), 1.0);
    assert!(value(&body, "saprouter_reload_last_timestamp_seconds") > 1.0e9);

    std::fs::write(r.path("saprouttab"), "Q nonsense\n").unwrap();
    assert!(!r.admin(&["-n"]).status.success());
    wait_value(m, "saprouter_reloads_total{result=\"failure\"}", 1.0);
    let body = scrape(m);
    assert_eq!(value(&body, "saprouter_reload_last_success"), 0.0);
    assert_eq!(
        value(
            &body,
            "saprouter_admin_requests_total{command=\"reload\",opcode=\"3\"}"
        ),
        2.0
    );
    wait_value(
        m,
        "saprouter_sessions_total{outcome=\"admin\",rc=\"0\"}",
        3.0,
    );
}

#[test]
fn health_readiness_and_other_requests() {
    let echo = raw_echo();
    let (r, m) = start(&format!("P {L} {L} {echo}\n"), &[]);
    assert_eq!(get(m, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(m, "/readyz").0, 200);
    assert_eq!(get(m, "/metrics?x=1").0, 200);
    assert_eq!(get(m, "/").0, 404);
    assert_eq!(get(m, "/metrics/x").0, 404);
    assert_eq!(
        http(m, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0,
        404
    );
    assert_eq!(http(m, "\x16\x03\x01\x02\x00\x01\r\n\r\n").0, 400);
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(http(m, &huge).0, 431);
    // A client that never finishes its request does not block the endpoint.
    let mut idle = TcpStream::connect((L, m)).unwrap();
    idle.write_all(b"GET /met").unwrap();
    assert_eq!(get(m, "/healthz").0, 200);

    // Soft shutdown with a route still open: alive, but no longer ready.
    let (s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        1,
    );
    assert_eq!(reply, PONG);
    assert!(r.admin(&["-p"]).status.success());
    let start = Instant::now();
    while get(m, "/readyz").0 != 503 {
        assert!(start.elapsed() < STEP, "still ready after -p");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(m, "/healthz").0, 200);
    assert_eq!(value(&scrape(m), "saprouter_ready"), 0.0);
    echo_through(s, b"last words");
}

#[test]
fn json_trace_and_connection_events() {
    let echo = raw_echo();
    let (r, m) = start(
        &format!("P {L} {L} {echo}\n"),
        &["--log-format", "json", "-G", "connlog"],
    );
    let (s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        1,
    );
    assert_eq!(reply, PONG);
    echo_through(s, b"json");
    wait_value(
        m,
        "saprouter_sessions_total{outcome=\"routed\",rc=\"0\"}",
        1.0,
    );
    // The -G log keeps SAP's shape.
    let connlog = read_text(&r.path("connlog"));
    assert!(connlog.contains("CONNECT TO"), "{connlog}");
    assert!(!connlog.contains('{'), "{connlog}");
    let start = Instant::now();
    loop {
        let trace = read_text(&r.path("dev_rout"));
        let events: Vec<serde_json::Value> = trace
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let connlog_event = |name: &str| {
            events
                .iter()
                .any(|e| e["target"] == "connlog" && e["event"] == name)
        };
        let closed = events
            .iter()
            .any(|e| e["message"] == "route closed" && e["to_server"] == 4 && e["level"] == "INFO");
        if closed && connlog_event("CONNECT FROM") && connlog_event("DISCONNECT") {
            break;
        }
        assert!(start.elapsed() < STEP, "events missing from\n{trace}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        ["--metrics", "nonsense"],
        ["--metrics", "127.0.0.1"],
        ["--log-format", "xml"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .arg("-r")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{err}");
    }
}

#[test]
fn a_taken_metrics_port_stops_the_start() {
    let taken = std::net::TcpListener::bind((L, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saprouttab"), "P * * *\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir.path())
        .args(["-r", "-S", &free_port().to_string(), "-R", "saprouttab"])
        .args(["--metrics", &format!("{L}:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics"), "{err}");
}

#[test]
fn connections_closed_under_penalty_are_counted() {
    let (r, m) = start("D * * *\n", &["--penalty", "1/60"]);
    let me = r.port.to_string();
    let hops = [(L, me.as_str(), ""), ("127.0.0.9", "3200", "")];
    assert_eq!(rterr(&ask_route(&r, &hops, 0).1).rc, -94);
    assert_eq!(
        value(&scrape(m), "saprouter_penalty_refused_connections_total"),
        0.0
    );
    // Penalised now: two connections closed at accept.
    for _ in 0..2 {
        assert!(closed_without_answer(&mut r.connect()));
    }
    wait_value(m, "saprouter_penalty_refused_connections_total", 2.0);
}
