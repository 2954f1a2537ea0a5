//! `niping -t`: self test of the NI layer: codecs in memory, then a loopback echo server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use bytes::BytesMut;

use super::report::ctime;
use super::server;
use crate::ni::frame::{frame, split_frame, FrameTracker, NI_PING};
use crate::ni::route::{talk_mode, RouteRequest};
use crate::ni::rterr::{ErrorRecord, RtErr};
use crate::ni::{routestr, NI_VERSION};

type Step = Result<String, String>;
type StepFn = fn() -> Step;

/// Runs every step, printing each with its result; returns the exit code.
pub fn run(out: &mut dyn Write) -> i32 {
    let _ = writeln!(out, "{}\nNI self test (NI version {NI_VERSION})\n", ctime());
    let steps: [(&str, StepFn); 5] = [
        ("frame codec", frame_codec),
        ("frame tracker", frame_tracker),
        ("route request encode/decode", route_request),
        ("NI_RTERR error record", error_record),
        ("loopback echo server", loopback),
    ];
    for (name, step) in steps {
        match step() {
            Ok(detail) => {
                let _ = writeln!(out, "{name:<30} {detail:<40} o.k.");
            }
            Err(why) => {
                let _ = writeln!(out, "{name:<30} FAILED: {why}");
                let _ = writeln!(out, "\n*** SELFTEST FAILED ***");
                let _ = out.flush();
                return 1;
            }
        }
        let _ = out.flush();
    }
    let _ = writeln!(out, "\n*** SELFTEST O.K. ***");
    let _ = out.flush();
    0
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn frame_codec() -> Step {
    let sizes = [0usize, 1, 8, 1000, 70_000];
    let mut stream = Vec::new();
    for &n in &sizes {
        stream.extend_from_slice(&frame(&vec![0xa5; n]));
    }
    // Feed in awkward 3-byte pieces.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for piece in stream.chunks(3) {
        buf.extend_from_slice(piece);
        while let Some(p) = split_frame(&mut buf, 100_000).map_err(|e| e.to_string())? {
            got.push(p.len());
        }
    }
    check(got == sizes && buf.is_empty(), "split_frame lost a message")?;
    let mut big = BytesMut::from(&b"bla\n"[..]);
    check(
        split_frame(&mut big, 10024).is_err(),
        "oversized header accepted",
    )?;
    Ok(format!("{} messages, 3-byte pieces", sizes.len()))
}

fn frame_tracker() -> Step {
    let mut t = FrameTracker::new();
    t.feed(b"\x00\x00");
    check(
        t.boundary_within(b"\x00\x00") == Some(2),
        "zero-length frame",
    )?;
    t.feed(b"\x00\x03SA");
    check(
        !t.at_boundary() && t.boundary_within(b"Pxx") == Some(1),
        "split body",
    )?;
    t.feed(b"P");
    check(t.at_boundary(), "boundary after body")?;
    Ok("split header, empty frame".into())
}

fn route_request() -> Step {
    let text = "/H/127.0.0.1/S/3299/W/pw/H/10.0.0.1/H/target";
    let hops = routestr::parse(text, "3298").map_err(|e| e.to_string())?;
    check(
        routestr::format_redacted(&hops).contains("/W/***"),
        "password not redacted",
    )?;
    let req = RouteRequest::new(hops, talk_mode::NI_MSG_IO, NI_VERSION);
    let back = RouteRequest::decode(&req.encode()).map_err(|e| e.to_string())?;
    check(back == req, "route changed in encode/decode")?;
    let next = back.advanced().ok_or("no next router")?;
    let next = RouteRequest::decode(&next.encode()).map_err(|e| e.to_string())?;
    check(
        next.next_hop().host == "target" && next.advanced().is_none(),
        "advance",
    )?;
    check(
        RouteRequest::decode(b"NI_ROUTE\0\x02\x00\x05").is_err(),
        "truncated accepted",
    )?;
    Ok("3 hops, advanced once".into())
}

fn error_record() -> Step {
    let rec = ErrorRecord {
        counter: "1".into(),
        error: "route permission denied".into(),
        return_code: "-94".into(),
        location: "SAProuter 40.4 on 'selftest'".into(),
        ..ErrorRecord::default()
    };
    let msg = RtErr::error(NI_VERSION, -94, &rec);
    let back = RtErr::decode(&msg.encode()).map_err(|e| e.to_string())?;
    check(back.record() == Ok(rec), "record changed")?;
    Ok("rc -94, 21 fields".into())
}

fn loopback() -> Step {
    let listener = server::bind("127.0.0.1", 0).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let accept = thread::spawn(move || -> std::io::Result<()> {
        let (stream, _) = listener.accept()?;
        server::echo(stream)
    });
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_nodelay(true);
    let mut payloads: Vec<Vec<u8>> = vec![NI_PING.to_vec()];
    payloads.extend([0usize, 1, 10, 1000, 65_536, 1_000_000].map(|n| vec![0x3c; n]));
    let mut back = Vec::new();
    for p in &payloads {
        let msg = frame(p);
        s.write_all(&msg)
            .map_err(|e| format!("send {} bytes: {e}", p.len()))?;
        back.resize(msg.len(), 0);
        s.read_exact(&mut back)
            .map_err(|e| format!("receive {} bytes: {e}", p.len()))?;
        check(back == msg, &format!("echo of {} bytes differs", p.len()))?;
    }
    drop(s);
    let joined = accept
        .join()
        .map_err(|_| "echo thread panicked".to_string())?;
    joined.map_err(|e| format!("echo: {e}"))?;
    Ok(format!("{addr}: NI_PING + {} sizes", payloads.len() - 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn selftest_passes() {
        let mut out = Vec::new();
        assert_eq!(super::run(&mut out), 0, "{}", String::from_utf8_lossy(&out));
        assert!(String::from_utf8_lossy(&out).contains("*** SELFTEST O.K. ***"));
    }
}
