//! `niping -c`: connect (directly or through saprouters), time `-L` echoed messages.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use super::report::{bare_error, ctime, error_block, local_error, os_error, Stats};
use super::{port, read_message};
use crate::ni::frame::{self, HEADER_LEN, NI_PONG};
use crate::ni::route::{talk_mode, RouteRequest};
use crate::ni::rterr::{rc, ErrorRecord, RtErr, RTERR_EYECATCHER};
use crate::ni::{routestr, NI_VERSION};

/// TCP connect limit per address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for any byte of an expected reply.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest route reply read (an `NI_PONG` or an `NI_RTERR`, both small).
const MAX_ROUTE_REPLY: usize = 64 * 1024;

/// Client options (`-H -S -B -L -D`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// `-H`: host name, address or route string.
    pub host: String,
    /// `-S`: port; for a route string, the service of a last hop without `/S/`.
    pub service: String,
    /// `-B`: message size in bytes (at least 10).
    pub bytes: usize,
    /// `-L`: round trips.
    pub loops: u64,
    /// `-D`: pause between round trips, ms.
    pub delay_ms: u64,
}

/// A failure, as the error record niping prints.
type Failure = Box<ErrorRecord>;

/// Runs the client; the summary goes to `out`, an error block to `err`. Returns the exit
/// code (0 o.k., 1 error).
pub fn run(opts: &ClientOptions, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match session(opts, out) {
        Ok(()) => 0,
        Err(rec) => {
            let _ = out.flush();
            let _ = err.write_all(error_block(&rec).as_bytes());
            let _ = err.flush();
            1
        }
    }
}

fn session(opts: &ClientOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let (mut stream, peer) = if routestr::is_route_string(&opts.host) {
        connect_route(opts)?
    } else {
        connect(&opts.host, &opts.service)?
    };
    let _ = writeln!(out, "{}\nconnect to server o.k.\n", ctime());
    let _ = out.flush();

    // One buffer each way, reused by every loop.
    let bytes = opts.bytes;
    let mut message = Vec::with_capacity(HEADER_LEN + bytes);
    message.extend_from_slice(&frame::header(bytes));
    message.extend_from_slice(b"EYECATCHER");
    message.resize(HEADER_LEN + bytes, 0);
    let mut reply = vec![0u8; bytes];
    let mut stats = Stats::default();
    for i in 0..opts.loops {
        if i > 0 && opts.delay_ms > 0 {
            thread::sleep(Duration::from_millis(opts.delay_ms));
        }
        let start = Instant::now();
        stream
            .write_all(&message)
            .map_err(|e| io_failure(&e, peer, "send"))?;
        let mut head = [0u8; HEADER_LEN];
        stream
            .read_exact(&mut head)
            .map_err(|e| io_failure(&e, peer, "recv"))?;
        let len = u32::from_be_bytes(head) as usize;
        if len != bytes {
            return Err(unexpected_reply(&mut stream, head, peer, i));
        }
        stream
            .read_exact(&mut reply)
            .map_err(|e| io_failure(&e, peer, "recv"))?;
        let elapsed = start.elapsed();
        if message.get(HEADER_LEN..) != Some(&reply[..]) {
            if let Some(rec) = RtErr::decode(&reply).ok().map(|m| router_error(&m)) {
                return Err(rec);
            }
            return Err(local(
                rc::NIEINTERN,
                &format!("response on message {i} differs"),
            ));
        }
        stats.add(elapsed);
    }
    // End marker as pysap's niping sends it, then close; failures here change nothing.
    let _ = stream.write_all(&frame::frame(b""));
    let _ = stream.shutdown(Shutdown::Write);

    let _ = writeln!(
        out,
        "{}\nsend and receive {} messages (len {})\n",
        ctime(),
        opts.loops,
        bytes
    );
    let _ = writeln!(out, "{}", stats.render(bytes));
    let _ = out.flush();
    Ok(())
}

/// Connects to the first hop of the route string and has the route set up: `NI_PONG` goes
/// on, an `NI_RTERR` is the router's error.
fn connect_route(opts: &ClientOptions) -> Result<(TcpStream, SocketAddr), Failure> {
    let hops = routestr::parse(&opts.host, &opts.service)
        .map_err(|e| local(rc::NIEINVAL, &format!("invalid route string: {e}")))?;
    if hops.len() < 2 || hops.len() > usize::from(u8::MAX) {
        return Err(local(rc::NIEINVAL, "a route string needs 2 to 255 hops"));
    }
    let first = hops.first().cloned().unwrap_or_default();
    let (mut stream, peer) = connect(&first.host, &first.service)?;
    let request = RouteRequest::new(hops, talk_mode::NI_MSG_IO, NI_VERSION);
    stream
        .write_all(&frame::frame(&request.encode()))
        .map_err(|e| io_failure(&e, peer, "send"))?;
    let mut buf = Vec::new();
    match read_message(&mut stream, &mut buf, MAX_ROUTE_REPLY) {
        Ok(true) => {}
        Ok(false) => {
            return Err(io_failure(
                &io::ErrorKind::UnexpectedEof.into(),
                peer,
                "recv",
            ))
        }
        Err(e) => return Err(io_failure(&e, peer, "recv")),
    }
    let payload = buf.get(HEADER_LEN..).unwrap_or(&[]);
    if payload == NI_PONG {
        return Ok((stream, peer));
    }
    match RtErr::decode(payload) {
        Ok(msg) => Err(router_error(&msg)),
        Err(_) => Err(local(
            rc::NIEINTERN,
            "NiRRouteRepl: invalid route reply received",
        )),
    }
}

/// Resolves and connects; TCP_NODELAY on (niping measures latency).
fn connect(host: &str, service: &str) -> Result<(TcpStream, SocketAddr), Failure> {
    let Some(port) = port(service) else {
        let rec = local_error(
            rc::NIESERV_UNKNOWN,
            &format!("service '{service}' unknown"),
            &format!("NiPServToNo: service '{service}' unknown"),
        );
        return Err(Box::new(rec));
    };
    // `[v6]` as route strings write it.
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = match (name, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Err(host_unknown(host, &e)),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                return Ok((stream, *addr));
            }
            Err(e) => last = e,
        }
    }
    let Some(addr) = addrs.first() else {
        return Err(host_unknown(host, &last));
    };
    let (code, error) = if last.kind() == io::ErrorKind::TimedOut {
        (
            rc::NIETIMEOUT,
            format!("connection to partner '{addr}' timed out"),
        )
    } else {
        (rc::NIECONN_REFUSED, format!("partner '{addr}' not reached"))
    };
    Err(Box::new(os_error(
        code,
        &error,
        &format!("NiPConnect2: {addr}"),
        "connect",
        &last,
    )))
}

fn host_unknown(host: &str, e: &io::Error) -> Failure {
    let mut rec = local_error(
        rc::NIEHOST_UNKNOWN,
        &format!("hostname '{host}' unknown"),
        &format!("NiHLGetNodeAddr: hostname '{host}' unknown"),
    );
    rec.system_call = "getaddrinfo".into();
    rec.errno_text = e.to_string();
    Box::new(rec)
}

/// A reply whose length is not the message length: a router's `NI_RTERR` (route cancelled,
/// router shut down) or garbage.
fn unexpected_reply(stream: &mut TcpStream, head: [u8; 4], peer: SocketAddr, i: u64) -> Failure {
    let len = u32::from_be_bytes(head) as usize;
    if len <= MAX_ROUTE_REPLY {
        let mut body = vec![0u8; len];
        if stream.read_exact(&mut body).is_ok() && body.starts_with(RTERR_EYECATCHER) {
            if let Ok(msg) = RtErr::decode(&body) {
                return router_error(&msg);
            }
        }
    }
    local(
        rc::NIEINTERN,
        &format!("response on message {i} from {peer} has length {len}"),
    )
}

/// The record of a router's `NI_RTERR`, or one built from its return code.
fn router_error(msg: &RtErr) -> Failure {
    Box::new(msg.record().unwrap_or_else(|_| bare_error(msg.return_code)))
}

fn local(code: i32, detail: &str) -> Failure {
    let error = crate::ni::rterr::rc_text(code).unwrap_or("error");
    Box::new(local_error(code, error, detail))
}

fn io_failure(e: &io::Error, peer: SocketAddr, call: &str) -> Failure {
    let rec = match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => os_error(
            rc::NIETIMEOUT,
            "connection timed out",
            &format!(
                "NiIRead: no answer from {peer} within {}s",
                READ_TIMEOUT.as_secs()
            ),
            call,
            e,
        ),
        _ => os_error(
            rc::NIECONN_BROKEN,
            &format!("connection to partner '{peer}' broken"),
            &format!("NiIRead: P={peer}"),
            call,
            e,
        ),
    };
    Box::new(rec)
}
