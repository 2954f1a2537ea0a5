//! The router on the wire: routes in both talk modes, refusals with SAP's codes, timeouts,
//! pipelined data, half-close, multi-hop and many sessions, all with raw bytes.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;

use common::*;

const L: &str = "127.0.0.1";

fn table(lines: &[String]) -> String {
    let mut t = lines.join("\n");
    t.push_str("\nD * * *\n");
    t
}

#[test]
fn ni_route_relays_frames_of_every_size() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let (mut s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    );
    assert_eq!(reply, PONG);
    // No first-message limit once the route stands: 10025 bytes and 1 MiB pass.
    for n in [0usize, 1, 100, 10024, 10025, 1 << 20] {
        let data = pattern(n, n);
        s.write_all(&frame(&data)).unwrap();
        assert_eq!(read_frame(&mut s), data, "frame of {n} bytes");
    }
}

#[test]
fn keepalive_passes_through_the_route() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let (mut s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    );
    assert_eq!(reply, PONG);
    s.write_all(&frame(b"NI_PING\0")).unwrap();
    assert_eq!(
        read_frame(&mut s),
        b"NI_PING\0",
        "the router must not answer keepalives itself"
    );
}

#[test]
fn raw_route_relays_bytes_and_half_close() {
    let echo = raw_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let (s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        1,
    );
    assert_eq!(reply, PONG);
    let data = pattern(3 << 20, 3);
    let mut writer = s.try_clone().unwrap();
    let sent = data.clone();
    let t = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        // Half-close: the echo sees EOF, answers the rest, closes; we read to EOF.
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    let mut reader = s;
    reader.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes lost, duplicated or reordered");
}

#[test]
fn server_half_close_keeps_client_direction_open() {
    // The target sends a greeting and closes its sending side at once, then keeps reading.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(tx));
    let target = spawn_server(move |mut s| {
        s.write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        tx.lock().unwrap().send(all).unwrap();
    });
    let r = TestRouter::start(&table(&[format!("P {L} {L} {target}")]), &[]);
    let (mut s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &target.to_string(), "")],
        1,
    );
    assert_eq!(reply, PONG);
    let mut greeting = Vec::new();
    s.read_to_end(&mut greeting).unwrap();
    assert_eq!(greeting, b"hello");
    let data = pattern(1 << 20, 9);
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(STEP).unwrap();
    assert!(got == data, "client bytes after the server's FIN were lost");
}

#[test]
fn data_sent_right_behind_the_route_is_forwarded_once() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let mut s = r.connect();
    let mut bytes = frame(&route(
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    ));
    bytes.extend(frame(b"early-bird"));
    bytes.extend(frame(b"second"));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), PONG);
    assert_eq!(read_frame(&mut s), b"early-bird");
    assert_eq!(read_frame(&mut s), b"second");
}

#[test]
fn two_routers_in_a_row() {
    let echo = ni_echo();
    let second = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let first = TestRouter::start(&table(&[format!("P {L} {L} {}", second.port)]), &[]);
    let hops = [
        (L, first.port.to_string()),
        (L, second.port.to_string()),
        (L, echo.to_string()),
    ];
    let hops: Vec<(&str, &str, &str)> = hops.iter().map(|(h, s)| (*h, s.as_str(), "")).collect();
    let (mut s, reply) = ask_route(&first, &hops, 0);
    assert_eq!(reply, PONG);
    s.write_all(&frame(b"two routers")).unwrap();
    assert_eq!(read_frame(&mut s), b"two routers");
}

#[test]
fn second_router_refusal_reaches_the_client() {
    let echo = ni_echo();
    let second = TestRouter::start("D * * *\n", &[]);
    let first = TestRouter::start(&table(&[format!("P {L} {L} {}", second.port)]), &[]);
    let hops = [
        (L, first.port.to_string()),
        (L, second.port.to_string()),
        (L, echo.to_string()),
    ];
    let hops: Vec<(&str, &str, &str)> = hops.iter().map(|(h, s)| (*h, s.as_str(), "")).collect();
    let e = refused(&first, &hops, 0);
    assert_eq!(e.rc, -94);
}

#[test]
fn hop_limits_count_routers_before_and_after() {
    let echo = ni_echo();
    // The second router admits only direct clients (no router before it).
    let second = TestRouter::start(&table(&[format!("P0,* {L} {L} {echo}")]), &[]);
    let first = TestRouter::start(
        &table(&[
            format!("P*,0 {L} {L} {}", second.port),
            format!("P {L} {L} {echo}"),
        ]),
        &[],
    );
    let via_both = [
        (L, first.port.to_string()),
        (L, second.port.to_string()),
        (L, echo.to_string()),
    ];
    let hops: Vec<(&str, &str, &str)> =
        via_both.iter().map(|(h, s)| (*h, s.as_str(), "")).collect();
    // First router: P*,0 allows no router after it.
    assert_eq!(refused(&first, &hops, 0).rc, -94);
    // Direct to the second router: 0 before, fine.
    let (_s, reply) = ask_route(
        &second,
        &[
            (L, &second.port.to_string(), ""),
            (L, &echo.to_string(), ""),
        ],
        0,
    );
    assert_eq!(reply, PONG);
}

#[test]
fn refusals_carry_saps_codes() {
    let echo = ni_echo();
    let closed = free_port();
    let r = TestRouter::start(
        &table(&[
            format!("P {L} {L} {echo}"),
            format!("P {L} {L} {closed}"),
            format!("S {L} {L} 1.2"),
            "P * no-such-host.invalid *".to_string(),
        ]),
        &["-W", "2000"],
    );
    let me = r.port.to_string();
    let denied = refused(&r, &[(L, &me, ""), (L, "3", "")], 0);
    assert_eq!(denied.rc, -94);
    assert!(
        denied.error().contains("route permission denied"),
        "{:?}",
        denied.error()
    );
    assert_eq!(denied.version, 40);
    assert!(
        denied.fields[15].starts_with("SAProuter 40.4 on '"),
        "{:?}",
        denied.fields[15]
    );

    let refused_conn = refused(&r, &[(L, &me, ""), (L, &closed.to_string(), "")], 0);
    assert_eq!(refused_conn.rc, -92);
    assert!(refused_conn.error().contains("not reached"));
    assert_eq!(refused_conn.fields[11], "connect");

    let unknown = refused(&r, &[(L, &me, ""), ("no-such-host.invalid", "3200", "")], 0);
    assert_eq!(unknown.rc, -90);
    assert!(unknown.error().contains("no-such-host.invalid"));

    let service = refused(&r, &[(L, &me, ""), (L, "no-such-service-xyz", "")], 0);
    assert_eq!(service.rc, -91);

    // S lines admit NI routes only.
    assert_eq!(refused(&r, &[(L, &me, ""), (L, "2", "")], 1).rc, -94);
}

#[test]
fn passwords_in_the_router_entry_or_the_next_entry() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo} secret")]), &[]);
    let me = r.port.to_string();
    let e = echo.to_string();
    assert_eq!(refused(&r, &[(L, &me, ""), (L, &e, "")], 0).rc, -94);
    assert_eq!(refused(&r, &[(L, &me, ""), (L, &e, "nope")], 0).rc, -94);
    assert_eq!(ask_route(&r, &[(L, &me, "secret"), (L, &e, "")], 0).1, PONG);
    assert_eq!(ask_route(&r, &[(L, &me, ""), (L, &e, "secret")], 0).1, PONG);
}

#[test]
fn routes_to_the_router_itself_are_refused_under_any_spelling() {
    let r = TestRouter::start("P * * *\n", &[]);
    let me = r.port.to_string();
    for host in [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "localhost",
        "0.0.0.0",
        "127.0.0.2",
    ] {
        let e = refused(&r, &[(L, &me, ""), (host, &me, "")], 0);
        assert_eq!(e.rc, -94, "route to {host}:{me} must be refused");
    }
}

#[test]
fn malformed_first_messages() {
    let r = TestRouter::start("P * * *\n", &[]);
    let me = r.port.to_string();

    let mut s = r.connect();
    s.write_all(b"bla\n").unwrap();
    let e = rterr(&read_frame(&mut s));
    assert_eq!(e.rc, -93);
    assert_eq!(e.error(), "Network packet too big");
    assert!(
        e.detail().contains("1651269898") && e.detail().contains("10024"),
        "{}",
        e.detail()
    );

    let mut s = r.connect();
    s.write_all(&10025u32.to_be_bytes()).unwrap();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -93);

    let mut s = r.connect();
    s.write_all(&frame(b"EYECATCHER\0\0\0\0\0\0")).unwrap();
    let e = rterr(&read_frame(&mut s));
    assert_eq!(e.rc, -93);
    assert!(e.detail().contains("route expected"));

    let mut bad = route(&[(L, &me, ""), (L, "3200", "")], 0);
    bad[20..24].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    let mut s = r.connect();
    s.write_all(&frame(&bad)).unwrap();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -93);

    let mut v0 = route(&[(L, &me, ""), (L, "3200", "")], 0);
    v0[10] = 0;
    let mut s = r.connect();
    s.write_all(&frame(&v0)).unwrap();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -96);

    // The router still routes afterwards.
    let echo = ni_echo();
    assert_eq!(
        ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0).1,
        PONG
    );
}

#[test]
fn version_request_is_answered_then_the_route_follows() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &[]);
    let mut s = r.connect();
    let mut request = b"NI_RTERR\0".to_vec();
    request.extend_from_slice(&[40, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    request.extend_from_slice(b"*ERR");
    s.write_all(&frame(&request)).unwrap();
    let answer = rterr(&read_frame(&mut s));
    assert_eq!((answer.version, answer.opcode, answer.rc), (40, 2, 0));
    s.write_all(&frame(&route(
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    )))
    .unwrap();
    assert_eq!(read_frame(&mut s), PONG);
}

#[test]
fn idle_client_gets_a_timeout_within_the_deadline() {
    let r = TestRouter::start("P * * *\n", &["-W", "400"]);
    let mut s = r.connect();
    let start = std::time::Instant::now();
    // Dribbling bytes does not extend the absolute deadline.
    s.write_all(&[0, 0]).unwrap();
    let e = rterr(&read_frame(&mut s));
    assert_eq!(e.rc, -5);
    assert!(e.detail().contains("no route received"), "{}", e.detail());
    let waited = start.elapsed().as_millis();
    assert!((300..3000).contains(&waited), "answered after {waited} ms");
}

#[test]
fn hidden_errors_with_z() {
    let r = TestRouter::start("D * * *\n", &["-Z"]);
    let e = refused(&r, &[(L, &r.port.to_string(), ""), (L, "3200", "")], 0);
    assert_eq!(e.rc, -92);
    assert_eq!(e.error(), "route could not be established");
    assert!(e.detail().is_empty());
    assert_eq!(e.fields[15], "SAProuter");
}

#[test]
fn full_client_table_answers_minus_100() {
    let r = TestRouter::start("P * * *\n", &["-C", "1", "-W", "3000"]);
    let _holder = r.connect();
    // The holder may be accepted after a first try, which then takes the slot; retry.
    let start = std::time::Instant::now();
    loop {
        let mut s = r.connect();
        s.write_all(&frame(&route(
            &[(L, &r.port.to_string(), ""), (L, "3200", "")],
            0,
        )))
        .unwrap();
        let e = rterr(&read_frame(&mut s));
        if e.rc == -100 {
            break;
        }
        assert!(start.elapsed() < STEP, "expected -100, got {}", e.rc);
    }
}

#[test]
fn two_hundred_concurrent_sessions() {
    let echo = ni_echo();
    let r = std::sync::Arc::new(TestRouter::start(
        &table(&[format!("P {L} {L} {echo}")]),
        &[],
    ));
    let workers: Vec<_> = (0..200)
        .map(|i| {
            let r = std::sync::Arc::clone(&r);
            thread::spawn(move || {
                let (mut s, reply) = ask_route(
                    &r,
                    &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
                    0,
                );
                assert_eq!(reply, PONG);
                for k in 0..5 {
                    let data = pattern(1000 + i, k);
                    s.write_all(&frame(&data)).unwrap();
                    assert_eq!(read_frame(&mut s), data);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn connection_log_lines() {
    let echo = ni_echo();
    let r = TestRouter::start(&table(&[format!("P {L} {L} {echo}")]), &["-G", "conn.log"]);
    let me = r.port.to_string();
    {
        let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo.to_string(), "")], 0);
        assert_eq!(reply, PONG);
        s.write_all(&frame(b"x")).unwrap();
        read_frame(&mut s);
    }
    refused(&r, &[(L, &me, ""), (L, "1", "")], 0);
    let start = std::time::Instant::now();
    loop {
        let log = read_text(&r.path("conn.log"));
        let has = |s: &str| log.contains(s);
        if has("CONNECT FROM") && has("CONNECT TO") && has("DISCONNECT") && has("PERM DENIED") {
            assert!(has("INIT LOGFILE") && has("READ ROUTTAB"), "{log}");
            break;
        }
        assert!(start.elapsed() < STEP, "log incomplete:\n{log}");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn missing_table_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir.path())
        .args(["-r", "-S", &free_port().to_string(), "-R", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn malformed_table_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tab"), "P * * *\nP 10.0.0.0/33 * *\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir.path())
        .args(["-r", "-S", &free_port().to_string(), "-R", "tab"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tab:2:3"), "{err}");
}

#[test]
fn no_arguments_or_unknown_option_print_help() {
    for args in [&[][..], &["-X"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: saprouter"), "{err}");
    }
}
