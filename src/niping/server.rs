//! `niping -s`: NI echo server, one thread per connection.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::report::{ctime, error_block, os_error};
use super::{read_message, MAX_MESSAGE};
use crate::ni::rterr::rc;

/// Buffers larger than this are released after their message instead of kept per
/// connection.
const KEEP_BUFFER: usize = 16 * 1024 * 1024;
/// Accept polling interval when an idle limit is set.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Server options (`-S -H -I`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// `-H`: address to bind (all when `None`).
    pub bind: Option<String>,
    /// `-S`: port.
    pub port: u16,
    /// `-I`: stop after this many seconds without clients; 0 = never.
    pub idle_s: u64,
}

/// Runs the server until the idle limit (or forever); returns the exit code.
pub fn run(opts: &ServerOptions) -> i32 {
    let host = opts.bind.as_deref().unwrap_or("0.0.0.0");
    let listener = match bind(host, opts.port) {
        Ok(l) => l,
        Err(e) => {
            let detail = format!("NiIListen: {host}:{}", opts.port);
            let rec = os_error(rc::NIESERV_USED, "could not listen", &detail, "bind", &e);
            eprint!("{}", error_block(&rec));
            return 1;
        }
    };
    println!("\n{}\nready for connect from client ...", ctime());
    let idle = (opts.idle_s > 0).then(|| Duration::from_secs(opts.idle_s));
    match serve(&listener, idle, true) {
        Ok(()) => 0,
        Err(e) => {
            let rec = os_error(rc::NIEINTERN, "accept failed", "NiIAccept", "accept", &e);
            eprint!("{}", error_block(&rec));
            1
        }
    }
}

/// Binds `host:port` (`[v6]` accepted).
pub fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = (name, port).to_socket_addrs()?.collect();
    TcpListener::bind(&addrs[..])
}

/// Accepts clients and echoes each in its own thread. Returns after `idle` without any
/// client (never when `None`). `verbose` prints SAP's connect/disconnect lines.
pub fn serve(listener: &TcpListener, idle: Option<Duration>, verbose: bool) -> io::Result<()> {
    listener.set_nonblocking(idle.is_some())?;
    let active = Arc::new(AtomicUsize::new(0));
    let handles = AtomicU64::new(1);
    let mut last_activity = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                last_activity = Instant::now();
                let hdl = handles.fetch_add(1, Ordering::Relaxed);
                if verbose {
                    println!(
                        "\n{}\nconnect from host '{}', client hdl {hdl} o.k.",
                        ctime(),
                        peer.ip()
                    );
                }
                active.fetch_add(1, Ordering::SeqCst);
                let guard = Active(Arc::clone(&active));
                let spawned = thread::Builder::new()
                    .name(format!("niping-hdl-{hdl}"))
                    .spawn(move || {
                        let _guard = guard;
                        let _ = echo(stream);
                        if verbose {
                            println!("\n{}\nclient hdl {hdl} disconnected ...", ctime());
                        }
                    });
                if let Err(e) = spawned {
                    // The closure (and with it the stream and guard) is dropped: client closed.
                    eprintln!("niping: cannot start a thread for client hdl {hdl}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if active.load(Ordering::SeqCst) > 0 {
                    last_activity = Instant::now();
                } else if idle.is_some_and(|limit| last_activity.elapsed() >= limit) {
                    if verbose {
                        let secs = idle.map_or(0, |d| d.as_secs());
                        println!(
                            "\n{}\nidle time ({secs} s) elapsed, server stopped",
                            ctime()
                        );
                    }
                    return Ok(());
                }
                thread::sleep(IDLE_POLL);
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                eprintln!("niping: accept: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Echoes every NI message on `stream` verbatim until the client closes.
///
/// Each message is read completely before it is sent back: echoing while still reading
/// would deadlock with a client that writes a large message before it reads.
pub fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    while read_message(&mut stream, &mut buf, MAX_MESSAGE)? {
        stream.write_all(&buf)?;
        if buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::TimedOut
    )
}

/// Counts a connection as active while alive.
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ni::frame::frame;
    use std::io::Read;

    fn start() -> SocketAddr {
        let listener = bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || serve(&listener, None, false));
        addr
    }

    #[test]
    fn echoes_messages_verbatim_in_order() {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        let mut sent = Vec::new();
        for payload in [&b"SAP"[..], b"", b"NI_PING\0", &[7u8; 70_000]] {
            sent.extend_from_slice(&frame(payload));
        }
        // Header split from its body across writes.
        s.write_all(&sent[..2]).unwrap();
        thread::sleep(Duration::from_millis(20));
        s.write_all(&sent[2..]).unwrap();
        let mut back = vec![0u8; sent.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn large_message_does_not_deadlock() {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        let msg = frame(&vec![0x5a; 20 * 1024 * 1024]);
        s.write_all(&msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert!(back == msg);
    }

    #[test]
    fn oversized_header_closes_without_allocating() {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }

    #[test]
    fn idle_limit_stops_server() {
        let listener = bind("127.0.0.1", 0).unwrap();
        let t = Instant::now();
        serve(&listener, Some(Duration::from_millis(200)), false).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200));
    }
}
