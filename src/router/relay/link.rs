//! The relay between a plain TCP socket and a reverse-invoke stream of a linkmux link that
//! is itself plain TCP: bytes move socket → pipe → link socket and link socket → pipe →
//! socket with `splice(2)` ([`LinkStream::send_from`], [`LinkStream::recv_to`]), never
//! through user space. Chosen by [`super::run`] for raw routes. What a direction has read
//! from its socket and not yet sent sits in the stream's pipe, bounded by the relay buffer
//! (`-B`/`-Q`; at most a stream window); towards the socket the relay holds nothing (the
//! bytes wait in the stream's pipe, within the stream's window, as they wait in its buffer
//! for the copy relay).
//!
//! NI routes too: towards the client every frame boundary must be known. From a socket
//! into the stream (the LAN router's side) the next header is peeked and the frame spliced
//! whole ([`LinkStream::send_from_framed`]); from the stream into a socket (the DMZ router's
//! side) the header is read out of the stream's pipe (4 bytes through user space, written
//! on with the body behind it) and the body spliced up to its end
//! ([`LinkStream::recv_to_framed`]). On interrupt the frame in flight completes, then the
//! `NI_RTERR` notice, as on every path.
//!
//! With no pipe to be had (descriptor limit), a round goes through user space instead:
//! the stream's buffers, frame-aware as well; the next round tries a pipe again.
//!
//! The contract of the module header of [`super`] holds: pending bytes first, exact
//! half-close (a socket's EOF becomes the stream's `FIN`, the stream's `FIN` the socket's
//! write shutdown), either side failing ends the route, every byte passed on is counted.

use std::future::poll_fn;
use std::io;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

use super::{interrupted, join, Direction, Log, Outcome, Pumped, BOUNDARY_GRACE};
use crate::ni::frame::{self, FrameTracker};
use crate::ri::carrier::Stream;
use crate::ri::linkmux::zero_copy::HeldHeader;
use crate::ri::linkmux::LinkStream;
use crate::router::clients::{Interrupt, Traffic};
use crate::router::conn::{BoxConn, Side};

/// The linkmux stream inside `conn`, when the relay may move its bytes zero-copy: a
/// reverse-invoke stream on a plain TCP link.
pub(super) fn zero_copy(conn: &BoxConn) -> Option<&LinkStream> {
    let stream = (**conn).as_any().downcast_ref::<Stream>()?;
    stream.as_link_stream().filter(|s| s.zero_copy())
}

/// The socket and the linkmux stream of a route this relay takes, and whether the socket
/// is the route's client: one end plain TCP, the other a stream [`zero_copy`] recognises.
pub(super) fn pair<'a>(
    client: &'a Side,
    server: &'a Side,
) -> Option<(&'a TcpStream, &'a LinkStream, bool)> {
    match (client, server) {
        (Side::Tcp(tcp), Side::Other(other)) => Some((tcp, zero_copy(other)?, true)),
        (Side::Other(other), Side::Tcp(tcp)) => Some((tcp, zero_copy(other)?, false)),
        _ => None,
    }
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
    let into_link = Leg::IntoLink { tcp, link };
    let out_of_link = Leg::OutOfLink {
        link,
        tcp,
        held: HeldHeader::default(),
    };
    if tcp_is_client {
        let up = std::pin::pin!(pump(into_link, upstream));
        let down = std::pin::pin!(pump(out_of_link, downstream));
        join(up, down, traffic).await
    } else {
        let up = std::pin::pin!(pump(out_of_link, upstream));
        let down = std::pin::pin!(pump(into_link, downstream));
        join(up, down, traffic).await
    }
}

/// One direction: socket → stream (the DMZ router's upstream, the LAN router's downstream)
/// or stream → socket.
enum Leg<'a> {
    /// Socket → stream; what moved sits in the stream's pipe (at most the relay buffer).
    IntoLink {
        tcp: &'a TcpStream,
        link: &'a LinkStream,
    },
    /// Stream → socket; `held`: a frame header read out of the pipe, not yet written.
    OutOfLink {
        link: &'a LinkStream,
        tcp: &'a TcpStream,
        held: HeldHeader,
    },
}

impl Leg<'_> {
    /// Where pending bytes and the notice go.
    fn write_end(&self) -> WriteEnd<'_> {
        match self {
            Leg::IntoLink { link, .. } => WriteEnd::Link(link),
            Leg::OutOfLink { tcp, .. } => WriteEnd::Tcp(tcp),
        }
    }

    /// Moves the next bytes, frame-aware with a tracker; with `to_boundary` never past the
    /// next frame boundary. `Ok(0)` is the end of the direction.
    async fn step(
        &mut self,
        tracker: Option<&mut FrameTracker>,
        to_boundary: bool,
        log: &Log<'_>,
    ) -> io::Result<usize> {
        match self {
            Leg::IntoLink { tcp, link } => {
                let n = link
                    .send_from_framed(tcp, log.buffer, tracker, to_boundary)
                    .await?;
                // Moved into the stream's pipe, which never holds more than the buffer.
                log.holding(n);
                Ok(n)
            }
            Leg::OutOfLink { link, tcp, held } => match tracker {
                Some(t) => link.recv_to_framed(tcp, t, held, to_boundary).await,
                None => link.recv_to(tcp).await,
            },
        }
    }

    /// Nothing of this direction's own is still to be written (a header read out of the
    /// stream's pipe).
    fn settled(&self) -> bool {
        match self {
            Leg::IntoLink { .. } => true,
            Leg::OutOfLink { held, .. } => held.is_empty(),
        }
    }

    /// Passes the end on: the stream's `FIN`, or the socket's write shutdown (the other
    /// direction keeps flowing).
    fn close(&self) {
        match self {
            Leg::IntoLink { link, .. } => link.finish(),
            Leg::OutOfLink { tcp, .. } => {
                let _ = socket2::SockRef::from(*tcp).shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

/// One direction until its end, a failure or an interrupt. `Err` carries the bytes passed
/// on before the failure. Towards an NI client the frame tracker sees every header.
async fn pump(mut leg: Leg<'_>, d: Direction<'_>) -> Result<Pumped, u64> {
    let Direction {
        pending,
        mut tracker,
        mut interrupts,
        notice,
        log,
    } = d;
    let mut bytes = match pass_pending(leg.write_end(), &pending, &mut interrupts, &log).await {
        Ok(bytes) => bytes,
        Err(ended) => return ended,
    };
    if let Some(t) = tracker.as_mut() {
        t.feed(&pending);
    }
    drop(pending);
    let stop = loop {
        tokio::select! {
            r = leg.step(tracker.as_mut(), false, &log) => match r {
                Ok(0) => break None,
                Ok(n) => {
                    bytes += n as u64;
                    log.relayed(n);
                }
                Err(_) => return Err(bytes),
            },
            why = interrupted(&mut interrupts) => break Some(why),
        }
    };
    // The partner's EOF can be this direction's first news of an interrupt (see `splice`).
    let Some(why) = stop.or(*interrupts.borrow()) else {
        leg.close();
        return Ok(Pumped {
            bytes,
            interrupted: None,
        });
    };
    // Rare: boxed, so it does not enlarge every session's task.
    bytes += Box::pin(finish(&mut leg, tracker.as_mut(), notice(why), &log)).await;
    Ok(Pumped {
        bytes,
        interrupted: Some(why),
    })
}

/// The end of an interrupted direction: towards an NI client the frame in flight completes
/// (within [`BOUNDARY_GRACE`]), then the notice; then the end is passed on. Returns the
/// bytes passed on.
async fn finish(
    leg: &mut Leg<'_>,
    tracker: Option<&mut FrameTracker>,
    notice: Option<Vec<u8>>,
    log: &Log<'_>,
) -> u64 {
    let mut bytes = 0u64;
    if let (Some(tracker), Some(notice)) = (tracker, notice) {
        let deadline = Instant::now() + BOUNDARY_GRACE;
        while !(tracker.at_boundary() && leg.settled()) {
            match timeout_at(deadline, leg.step(Some(&mut *tracker), true, log)).await {
                Ok(Ok(n)) if n > 0 => {
                    bytes += n as u64;
                    log.relayed(n);
                }
                _ => break,
            }
        }
        if tracker.at_boundary() && leg.settled() {
            let told = frame::frame(&notice);
            let _ = timeout_at(deadline, leg.write_end().write_all(&told)).await;
        }
    }
    leg.close();
    bytes
}

/// Where a direction writes: the stream (socket → stream) or the socket (stream → socket).
enum WriteEnd<'a> {
    Link(&'a LinkStream),
    Tcp(&'a TcpStream),
}

impl WriteEnd<'_> {
    /// Writes all of `buf`.
    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        let mut rest = buf;
        while !rest.is_empty() {
            let n = self.write_some(rest).await?;
            rest = &rest[n..];
        }
        Ok(())
    }

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
