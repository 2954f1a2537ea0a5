//! Probes for the hostile-input and soak suites: raw sends, replies, and the router's own
//! resources (open file descriptors, resident memory) read from /proc.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::common::*;

/// Sends `bytes` on a fresh connection and returns the one reply frame.
pub fn reply_to(r: &TestRouter, bytes: &[u8]) -> Vec<u8> {
    let mut s = r.connect();
    s.write_all(bytes).expect("send");
    read_frame(&mut s)
}

/// Sends `payload` as one NI frame and returns the router's `NI_RTERR`.
pub fn rterr_for(r: &TestRouter, payload: &[u8]) -> RtErr {
    rterr(&reply_to(r, &frame(payload)))
}

/// Asserts the return code the router answers `payload` (one frame) with.
#[track_caller]
pub fn expect_rc(r: &TestRouter, payload: &[u8], rc: i32, what: &str) -> RtErr {
    let e = rterr_for(r, payload);
    assert_eq!(e.rc, rc, "{what}: {:?} / {:?}", e.error(), e.detail());
    e
}

/// Hops as the helpers of `common` take them.
pub fn hops<'a>(list: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str, &'a str)> {
    list.iter().map(|(h, s)| (*h, s.as_str(), "")).collect()
}

/// An `NI_ROUTE` payload with every header byte under the caller's control.
pub struct RawRoute {
    pub info_version: u8,
    pub ni_version: u8,
    pub entries: u8,
    pub talk_mode: u8,
    pub unused: [u8; 2],
    pub rest: u8,
    pub length: Option<u32>,
    pub offset: Option<u32>,
    pub string: Vec<u8>,
}

impl RawRoute {
    /// A valid two-hop route to 127.0.0.1:`port` via the router on `me`.
    pub fn to(me: u16, port: u16) -> Self {
        let mut string = Vec::new();
        for field in [
            "127.0.0.1",
            &me.to_string(),
            "",
            "127.0.0.1",
            &port.to_string(),
            "",
        ] {
            string.extend_from_slice(field.as_bytes());
            string.push(0);
        }
        Self {
            info_version: 2,
            ni_version: 40,
            entries: 2,
            talk_mode: 0,
            unused: [0, 0],
            rest: 1,
            length: None,
            offset: Some(("127.0.0.1".len() + me.to_string().len() + 3) as u32),
            string,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = b"NI_ROUTE\0".to_vec();
        out.extend_from_slice(&[
            self.info_version,
            self.ni_version,
            self.entries,
            self.talk_mode,
            self.unused[0],
            self.unused[1],
            self.rest,
        ]);
        let length = self.length.unwrap_or(self.string.len() as u32);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.offset.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.string);
        out
    }
}

/// A TCP connection to `port` from the loopback address `from` (127.0.0.2, ...).
pub fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(STEP)).ok();
    s
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls until `value()` is at most `limit`, for at most `within`; returns the last value.
pub fn settles(limit: u64, within: Duration, value: impl Fn() -> u64) -> u64 {
    let start = Instant::now();
    loop {
        let v = value();
        if v <= limit || start.elapsed() > within {
            return v;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// True when the peer closes `s` (EOF or reset) within `within` without sending more.
pub fn closes_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).ok();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
    }
}

/// The router's listing (`saprouter -l`) succeeds.
#[track_caller]
pub fn admin_works(r: &TestRouter) -> String {
    let out = r.admin(&["-l"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "saprouter -l failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
