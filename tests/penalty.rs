//! Per-source penalties (`--penalty`, hostile inputs H33/H41/H57, docs/hardening.md) against
//! the real binary: an address that keeps earning refusals has its connections closed at
//! accept, other addresses route on, the penalty ends, and without the option nothing is ever
//! blocked. The offending client connects from 127.0.0.2 (every 127/8 address is loopback on
//! Linux).

mod common;
mod probe;

use std::io::{Read, Write};
use std::time::Instant;

use common::*;
use probe::connect_from;

const L: &str = "127.0.0.1";
const OFFENDER: [u8; 4] = [127, 0, 0, 2];

/// Sends a route from `source`; the reply frame, or `None` when the router closed the
/// connection without one.
fn route_from(
    source: [u8; 4],
    router: &TestRouter,
    hops: &[(&str, &str, &str)],
) -> Option<Vec<u8>> {
    let mut s = connect_from(source, router.port);
    // A closed connection may already refuse the write; the read tells.
    let _ = s.write_all(&frame(&route(hops, 0)));
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {
            let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut payload).ok()?;
            Some(payload)
        }
        Err(_) => None,
    }
}

fn denied_hops(router: &TestRouter) -> [(&'static str, String, &'static str); 2] {
    [
        (L, router.port.to_string(), ""),
        ("127.0.0.9", "3200".into(), ""),
    ]
}

fn hops<'a>(h: &'a [(&'static str, String, &'static str); 2]) -> [(&'a str, &'a str, &'a str); 2] {
    [(h[0].0, &h[0].1, h[0].2), (h[1].0, &h[1].1, h[1].2)]
}

#[test]
fn refusals_put_their_source_under_penalty_and_others_route_on() {
    let echo = ni_echo();
    let table = format!("P {L} {L} {echo}\nD * * *\n");
    let r = TestRouter::start(&table, &["--penalty", "3/60"]);
    let denied = denied_hops(&r);
    for attempt in 1..=3 {
        let reply = route_from(OFFENDER, &r, &hops(&denied)).expect("a refusal is answered");
        assert_eq!(rterr(&reply).rc, -94, "attempt {attempt}");
    }
    // The third refusal started the penalty: closed at accept, no reply at all.
    assert_eq!(route_from(OFFENDER, &r, &hops(&denied)), None);
    let me = r.port.to_string();
    let echo_port = echo.to_string();
    assert_eq!(
        route_from(OFFENDER, &r, &[(L, &me, ""), (L, &echo_port, "")]),
        None
    );

    // Another address is untouched: its route stands and carries data.
    let (mut s, reply) = ask_route(&r, &[(L, &me, ""), (L, &echo_port, "")], 0);
    assert_eq!(reply, PONG);
    s.write_all(&frame(b"still routing")).unwrap();
    assert_eq!(read_frame(&mut s), b"still routing");

    let info = r.admin(&["-l"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("Penalties           : 3 refusals in 60 s close an address for 60 s"),
        "{text}"
    );
    assert!(text.contains("1 addresses tracked"), "{text}");
}

#[test]
fn a_penalty_ends() {
    let r = TestRouter::start("D * * *\n", &["--penalty", "1/1"]);
    let denied = denied_hops(&r);
    let started = Instant::now();
    assert!(route_from(OFFENDER, &r, &hops(&denied)).is_some());
    assert_eq!(route_from(OFFENDER, &r, &hops(&denied)), None, "blocked");
    // Answered again once the second is over (polled; the step bound fails the test).
    loop {
        if let Some(reply) = route_from(OFFENDER, &r, &hops(&denied)) {
            assert_eq!(rterr(&reply).rc, -94);
            break;
        }
        assert!(started.elapsed() < STEP, "the penalty did not end");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

#[test]
fn without_the_option_refusals_never_block() {
    let r = TestRouter::start("D * * *\n", &[]);
    let denied = denied_hops(&r);
    for attempt in 0..30 {
        let reply = route_from(OFFENDER, &r, &hops(&denied))
            .unwrap_or_else(|| panic!("attempt {attempt} was not answered"));
        assert_eq!(rterr(&reply).rc, -94);
    }
    let text = String::from_utf8_lossy(&r.admin(&["-l"]).stdout).to_string();
    assert!(
        text.contains("Penalties           : off (--penalty)"),
        "{text}"
    );
}

#[test]
fn garbage_and_wrong_passwords_count_too() {
    // H41: wrong info passwords; then a message that is not a route.
    let r = TestRouter::start("D * * *\n", &["--penalty", "3/60", "-P", "secret"]);
    for password in ["wrong", "secre"] {
        let mut s = connect_from(OFFENDER, r.port);
        // ROUTER_ADM, version 40, info request, then the password NUL-terminated.
        let mut request = b"ROUTER_ADM\0\x28\x02\0\0".to_vec();
        request.extend_from_slice(password.as_bytes());
        request.push(0);
        s.write_all(&frame(&request)).unwrap();
        assert_eq!(rterr(&read_frame(&mut s)).rc, -99, "{password}");
    }
    let mut s = connect_from(OFFENDER, r.port);
    s.write_all(&frame(b"GET / HTTP/1.0")).unwrap();
    assert_eq!(rterr(&read_frame(&mut s)).rc, -93, "not a route message");
    assert_eq!(
        route_from(OFFENDER, &r, &hops(&denied_hops(&r))),
        None,
        "blocked"
    );
}

#[test]
fn a_bad_policy_is_refused_at_start() {
    for bad in ["0/10", "5", "5/0", "x/y"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_saprouter"))
            .args(["-r", "-S", "1", "--penalty", bad])
            .output()
            .expect("run saprouter");
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--penalty"), "{bad}: {err}");
    }
}
