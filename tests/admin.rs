//! Operator commands against a running router: `-l -L -n -c -t -p -s -z -d -f`, signals,
//! and the info password.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";

fn routed_session(r: &TestRouter, target: u16) -> TcpStream {
    let (s, reply) = ask_route(
        r,
        &[(L, &r.port.to_string(), ""), (L, &target.to_string(), "")],
        0,
    );
    assert_eq!(reply, PONG);
    s
}

fn echo_ok(s: &mut TcpStream, data: &[u8]) {
    s.write_all(&frame(data)).unwrap();
    assert_eq!(read_frame(s), data);
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The client id of the row whose partner service is `service`, from `-l` output.
fn id_for(listing: &str, service: u16) -> u32 {
    listing
        .lines()
        .find(|l| l.contains('|') && l.trim_end().ends_with(&service.to_string()))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|id| id.trim_end_matches('*').parse().ok())
        .unwrap_or_else(|| panic!("no row for service {service} in:\n{listing}"))
}

#[test]
fn list_shows_live_sessions() {
    let echo = ni_echo();
    let r = TestRouter::start(&format!("P {L} {L} {echo}\n"), &[]);
    let mut s = routed_session(&r, echo);
    echo_ok(&mut s, b"alive");
    let out = r.admin(&["-l"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("running on port {}", r.port)),
        "{text}"
    );
    assert!(
        text.contains(L) && text.contains(&echo.to_string()),
        "{text}"
    );
    assert!(text.contains("Total no. of clients:"), "{text}");
    assert!(text.contains("Routtab             : saprouttab"), "{text}");
    assert!(text.contains("Open files limit    : "), "{text}");
    let long = stdout(&r.admin(&["-L"]));
    assert!(long.contains("connected on"), "{long}");
    // 9 bytes each way: the 4-byte header and "alive".
    assert!(long.contains("9 > 9 <"), "{long}");
    assert!(!text.contains("Bytes of client"), "{text}");
}

#[test]
fn reload_applies_to_new_routes_and_keeps_old_sessions() {
    let a = ni_echo();
    let b = ni_echo();
    let r = TestRouter::start(&format!("P {L} {L} {a}\nD * * *\n"), &[]);
    let mut old = routed_session(&r, a);
    assert_eq!(
        refused(
            &r,
            &[(L, &r.port.to_string(), ""), (L, &b.to_string(), "")],
            0
        )
        .rc,
        -94
    );

    std::fs::write(r.path("saprouttab"), format!("P {L} {L} {b}\nD * * *\n")).unwrap();
    let out = r.admin(&["-n"]);
    assert!(out.status.success(), "{}", stderr(&out));
    routed_session(&r, b);
    assert_eq!(
        refused(
            &r,
            &[(L, &r.port.to_string(), ""), (L, &a.to_string(), "")],
            0
        )
        .rc,
        -94
    );
    echo_ok(&mut old, b"still flowing");

    // A broken table is refused with file, line and column; the table in force stays.
    std::fs::write(
        r.path("saprouttab"),
        format!("P {L} {L} {b}\nP 10.0.0.0/33 * *\n"),
    )
    .unwrap();
    let out = r.admin(&["-n"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("saprouttab:2:3"), "{}", stderr(&out));
    routed_session(&r, b);
}

#[test]
fn cancel_ends_exactly_the_named_session() {
    let a = ni_echo();
    let b = ni_echo();
    let r = TestRouter::start(&format!("P {L} {L} {a}\nP {L} {L} {b}\n"), &[]);
    let mut first = routed_session(&r, a);
    let mut second = routed_session(&r, b);
    let listing = stdout(&r.admin(&["-l"]));
    let id = id_for(&listing, a);
    let out = r.admin(&["-c", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let notice = rterr(&read_frame(&mut first));
    assert_eq!(notice.rc, -97);
    echo_ok(&mut second, b"untouched");
    let out = r.admin(&["-c", "99999"]);
    assert!(!out.status.success(), "cancel of an unknown id must fail");
}

#[test]
fn soft_shutdown_frees_the_port_and_lets_sessions_finish() {
    let echo = ni_echo();
    let table = format!("P {L} {L} {echo}\n");
    let mut r = TestRouter::start(&table, &[]);
    let mut s = routed_session(&r, echo);
    let out = r.admin(&["-p"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The port is free at once: a new router starts on it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("saprouttab"), &table).unwrap();
    let start = Instant::now();
    let mut successor = loop {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .current_dir(dir.path())
            .args(["-r", "-S", &r.port.to_string()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if wait_child_listening(&mut child, r.port).is_ok() {
            break child;
        }
        assert!(start.elapsed() < STEP, "port not released");
    };
    echo_ok(&mut s, b"old session lives on");
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "soft-shut router exited with a session open"
    );
    drop(s);
    assert!(r.wait_exit().success());
    successor.kill().ok();
    successor.wait().ok();
}

#[test]
fn stop_tells_ni_sessions_and_exits_zero() {
    let echo = ni_echo();
    let mut r = TestRouter::start(&format!("P {L} {L} {echo}\n"), &[]);
    let mut s = routed_session(&r, echo);
    let out = r.admin(&["-s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rterr(&read_frame(&mut s)).rc, -98);
    assert!(r.wait_exit().success());
}

#[test]
fn sigterm_stops_and_sighup_reloads() {
    let a = ni_echo();
    let b = ni_echo();
    let mut r = TestRouter::start(&format!("P {L} {L} {a}\n"), &[]);
    std::fs::write(r.path("saprouttab"), format!("P {L} {L} {b}\n")).unwrap();
    let pid = r.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    loop {
        let (_s, reply) = ask_route(
            &r,
            &[(L, &r.port.to_string(), ""), (L, &b.to_string(), "")],
            0,
        );
        if reply == PONG {
            break;
        }
        assert!(start.elapsed() < STEP, "SIGHUP did not reload");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(r.wait_exit().success());
}

#[test]
fn trace_hide_dump_flush_are_accepted() {
    let r = TestRouter::start("D * * *\n", &[]);
    for args in [
        &["-t"][..],
        &["-t", "on 10.0.0.*"][..],
        &["-t", "off 10.0.0.*"][..],
        &["-d"][..],
        &["-f"][..],
        &["-z"][..],
    ] {
        let out = r.admin(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // -z switched hiding on: refusals are now generic.
    let e = refused(&r, &[(L, &r.port.to_string(), ""), (L, "3200", "")], 0);
    assert_eq!(e.rc, -92);
    assert_eq!(e.error(), "route could not be established");
}

#[test]
fn info_password_is_checked() {
    let r = TestRouter::start("D * * *\n", &["-P", "infopass"]);
    let out = r.admin(&["-l"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    let out = r.admin(&["-l", "-P", "infopass"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn admin_against_no_router_fails_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .args(["-s", "-H", "127.0.0.1", "-S", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
}
