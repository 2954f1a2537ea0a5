//! The zero-copy relay keeps the NI contract: a cancel that arrives while a long frame is
//! half through still delivers that frame whole, then `NI_RTERR` -97; frames of every size
//! mixed in one stream keep their boundaries.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

const L: &str = "127.0.0.1";

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
fn cancel_in_the_middle_of_a_long_frame_waits_for_its_end() {
    const BODY: usize = 1 << 20;
    let body = pattern(BODY, 7);
    let (go_on_tx, go_on_rx) = mpsc::channel::<()>();
    let go_on_rx = std::sync::Arc::new(std::sync::Mutex::new(go_on_rx));
    let sent = body.clone();
    // The server sends the header and half the body, waits, then the rest.
    let server = spawn_server(move |mut s| {
        let mut whole = frame(&sent);
        let rest = whole.split_off(4 + BODY / 2);
        s.write_all(&whole).unwrap();
        let _ = go_on_rx.lock().unwrap().recv_timeout(STEP);
        s.write_all(&rest).unwrap();
        let mut sink = [0u8; 64];
        let _ = s.read(&mut sink);
    });
    let r = TestRouter::start(&format!("P {L} {L} {server}\nD * * *\n"), &[]);
    let (mut s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &server.to_string(), "")],
        0,
    );
    assert_eq!(reply, PONG);
    // Read the first half so the relay is surely mid-frame.
    let mut head = vec![0u8; 4 + BODY / 2];
    s.read_exact(&mut head).unwrap();
    let listing = String::from_utf8_lossy(&r.admin(&["-l"]).stdout).into_owned();
    let id = id_for(&listing, server);
    assert!(r.admin(&["-c", &id.to_string()]).status.success());
    thread::sleep(Duration::from_millis(100));
    go_on_tx.send(()).unwrap();
    let mut tail = vec![0u8; BODY / 2];
    s.read_exact(&mut tail).unwrap();
    head.extend_from_slice(&tail);
    assert!(head[4..] == body[..], "the frame in flight arrives whole");
    let notice = rterr(&read_frame(&mut s));
    assert_eq!(notice.rc, -97);
}

#[test]
fn mixed_frame_sizes_keep_their_boundaries() {
    let echo = ni_echo();
    let r = TestRouter::start(&format!("P {L} {L} {echo}\nD * * *\n"), &[]);
    let (mut s, reply) = ask_route(
        &r,
        &[(L, &r.port.to_string(), ""), (L, &echo.to_string(), "")],
        0,
    );
    assert_eq!(reply, PONG);
    let sizes = [3usize, 8191, 8192, 8193, 0, 70_000, 1, 65_536, 200_000, 12];
    let mut all = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        all.extend_from_slice(&frame(&pattern(*n, i)));
    }
    let mut writer = s.try_clone().unwrap();
    let t = thread::spawn(move || writer.write_all(&all).unwrap());
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(read_frame(&mut s), pattern(*n, i), "frame {i} of {n} bytes");
    }
    t.join().unwrap();
}
