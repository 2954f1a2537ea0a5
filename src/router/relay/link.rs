//! The relay between a plain TCP socket and a reverse-invoke stream of a linkmux link that
//! is itself plain TCP: bytes move socket → pipe → link socket and link socket → pipe →
//! socket with `splice(2)` ([`LinkStream::send_from`], [`LinkStream::recv_to`]), never
//! through user space. Chosen by [`super::run`] for raw routes. What a direction has read
//! from its socket and not yet sent sits in the stream's pipe, bounded by the relay buffer
//! (`-B`/`-Q`; at most a stream window); towards the socket the relay holds nothing (the
//! bytes wait in the stream's pipe, within the stream's window, as they wait in its buffer
//! for the copy relay). NI routes keep the copy relay, which follows frame boundaries
//! towards the client (a stream's bytes cannot be peeked like a socket's).
//!
//! The contract of the module header of [`super`] holds: pending bytes first, exact
//! half-close (a socket's EOF becomes the stream's `FIN`, the stream's `FIN` the socket's
//! write shutdown), either side failing ends the route, every byte passed on is counted.

use std::future::poll_fn;
use std::io;

use tokio::net::TcpStream;

use tokio::sync::watch;

use super::{interrupted, join, Direction, Log, Outcome, Pumped};
use crate::ri::carrier::Stream;
use crate::ri::linkmux::LinkStream;
use crate::router::clients::{Interrupt, Traffic};
use crate::router::conn::BoxConn;

/// The linkmux stream inside `conn`, when the relay may move its bytes zero-copy: a
/// reverse-invoke stream on a plain TCP link.
pub(super) fn zero_copy(conn: &BoxConn) -> Option<&LinkStream> {
    let stream = (**conn).as_any().downcast_ref::<Stream>()?;
    stream.as_link_stream().filter(|s| s.zero_copy())
}

/// Relays between `tcp` and `link` until both directions end, either fails, or an
/// interrupt. `tcp_is_client`: which of them is the route's client.
pub(super) async fn run(
    tcp: &TcpStream,
    link: &LinkStream,
    tcp_is_client: bool,
    upstream: Direction<'_>,
    downstream: Direction<'_>,
    traffic: &Traffic,
) -> Outcome {
    if tcp_is_client {
        let up = std::pin::pin!(tcp_to_link(tcp, link, upstream));
        let down = std::pin::pin!(link_to_tcp(link, tcp, downstream));
        join(up, down, traffic).await
    } else {
        let up = std::pin::pin!(link_to_tcp(link, tcp, upstream));
        let down = std::pin::pin!(tcp_to_link(tcp, link, downstream));
        join(up, down, traffic).await
    }
}

/// Socket → stream. `Err` carries the bytes passed on before the failure.
async fn tcp_to_link(tcp: &TcpStream, link: &LinkStream, d: Direction<'_>) -> Result<Pumped, u64> {
    let Direction {
        pending,
        mut interrupts,
        log,
        ..
    } = d;
    let mut bytes = match pass_pending(WriteEnd::Link(link), &pending, &mut interrupts, &log).await
    {
        Ok(bytes) => bytes,
        Err(ended) => return ended,
    };
    loop {
        tokio::select! {
            r = link.send_from_bounded(tcp, log.buffer) => match r {
                Ok(0) => {
                    link.finish();
                    return Ok(Pumped { bytes, interrupted: None });
                }
                Ok(n) => {
                    // Moved into the stream's pipe, which never holds more than the buffer.
                    log.holding(n);
                    bytes += n as u64;
                    log.relayed(n);
                }
                Err(_) => return Err(bytes),
            },
            why = interrupted(&mut interrupts) => {
                return Ok(Pumped { bytes, interrupted: Some(why) });
            }
        }
    }
}

/// Stream → socket. `Err` carries the bytes passed on before the failure.
async fn link_to_tcp(link: &LinkStream, tcp: &TcpStream, d: Direction<'_>) -> Result<Pumped, u64> {
    let Direction {
        pending,
        mut interrupts,
        log,
        ..
    } = d;
    let mut bytes = match pass_pending(WriteEnd::Tcp(tcp), &pending, &mut interrupts, &log).await {
        Ok(bytes) => bytes,
        Err(ended) => return ended,
    };
    loop {
        tokio::select! {
            r = link.recv_to(tcp) => match r {
                Ok(0) => {
                    // The peer's FIN: passed on, the other direction keeps flowing.
                    let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write);
                    return Ok(Pumped { bytes, interrupted: None });
                }
                Ok(n) => {
                    bytes += n as u64;
                    log.relayed(n);
                }
                Err(_) => return Err(bytes),
            },
            why = interrupted(&mut interrupts) => {
                return Ok(Pumped { bytes, interrupted: Some(why) });
            }
        }
    }
}

/// Where a direction writes: the stream (socket → stream) or the socket (stream → socket).
enum WriteEnd<'a> {
    Link(&'a LinkStream),
    Tcp(&'a TcpStream),
}

impl WriteEnd<'_> {
    /// Writes some of `buf`.
    async fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteEnd::Link(link) => poll_fn(|cx| link.poll_write_shared(cx, buf)).await,
            WriteEnd::Tcp(tcp) => write_some(tcp, buf).await,
        }
    }
}

/// Passes on `pending` (bytes that arrived before the relay), before anything else. Returns
/// the bytes passed on, or how the direction ended meanwhile (a failure or an interrupt).
async fn pass_pending(
    into: WriteEnd<'_>,
    pending: &[u8],
    interrupts: &mut watch::Receiver<Option<Interrupt>>,
    log: &Log<'_>,
) -> Result<u64, Result<Pumped, u64>> {
    let mut bytes = 0u64;
    let mut rest = pending;
    while !rest.is_empty() {
        tokio::select! {
            r = into.write_some(rest) => match r {
                Ok(n) => {
                    rest = &rest[n..];
                    bytes += n as u64;
                    log.relayed(n);
                }
                Err(_) => return Err(Err(bytes)),
            },
            why = interrupted(interrupts) => {
                return Err(Ok(Pumped { bytes, interrupted: Some(why) }));
            }
        }
    }
    Ok(bytes)
}

/// Writes some of `buf` to `tcp` (a shared reference: the other direction reads it).
async fn write_some(tcp: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    loop {
        tcp.writable().await?;
        match tcp.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}
