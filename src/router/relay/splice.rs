//! The zero-copy relay between two TCP connections: `splice(2)` moves bytes socket → pipe
//! → socket inside the kernel. Same contract as the copy relay (see the module header of
//! `relay`), with two differences in how, not what:
//!
//! - No buffer and no pipe is held while a direction waits for data; a pipe is taken from a
//!   per-thread pool when bytes arrive and given back once they are passed on.
//! - Towards an NI client the frame tracker must see every frame header (`splice_ni`).
//!
//! When no pipe can be had (descriptor limit), or the sockets refuse `splice(2)`, the
//! direction carries on with the copy relay's pump over the same sockets.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::pipe::{self, no_splice, Pipe};
use super::{copy, interrupted, join, Direction, Outcome, Pipes, Pumped, BOUNDARY_GRACE};
use crate::ni::frame::FrameTracker;
use crate::router::clients::{Interrupt, Traffic};

/// Bytes moved per splice into a pipe, at most (what a pipe holds).
const CHUNK: usize = pipe::SIZE;
/// The stack buffer for small messages.
const STACK: usize = 8 * 1024;
/// Buffer for the rare end of an interrupted NI stream.
const FINISH_BUFFER: usize = 8 * 1024;

/// Relays between two TCP connections; see the module header.
pub(super) async fn run(
    client: &TcpStream,
    server: &TcpStream,
    upstream: Direction<'_>,
    downstream: Direction<'_>,
    traffic: &Traffic,
    pipes: &Pipes,
) -> Outcome {
    let upstream = pump(client, server, upstream, pipes);
    let downstream = pump(server, client, downstream, pipes);
    tokio::pin!(upstream, downstream);
    join(upstream, downstream, traffic).await
}

/// Why the splice loop of one direction stopped.
enum Stop {
    /// An interrupt arrived; the frame in flight and the notice are still to be sent.
    Interrupted(Interrupt),
    /// An interrupt arrived while the peer was not reading, and it did not read in time.
    Abandoned(Interrupt),
    /// EOF passed on.
    Eof,
    /// Reading or writing failed.
    Failed,
    /// No pipe to be had: carry on buffered.
    NoPipe,
}

/// One direction, `from` → `to`. Same results as `copy::pump`.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    direction: Direction<'_>,
    pipes: &Pipes,
) -> Result<Pumped, u64> {
    let Direction {
        pending,
        mut tracker,
        mut interrupts,
        notice,
        log,
    } = direction;
    let mut bytes = 0u64;
    if !pending.is_empty() {
        TcpRef(to).write_all(&pending).await.map_err(|_| 0u64)?;
        if let Some(t) = tracker.as_mut() {
            t.feed(&pending);
        }
        bytes += pending.len() as u64;
        log.relayed(pending.len());
    }
    drop(pending);
    // What this direction may hold in flight: the pipe, bounded by the relay buffer that
    // -B/-Q/-C give each client.
    let limit = CHUNK.min(log.buffer.max(1));
    let mut long_frames = false;
    let stop = {
        let wait = interrupted(&mut interrupts);
        tokio::pin!(wait);
        'relay: loop {
            tokio::select! {
                biased;
                why = &mut wait => break Stop::Interrupted(why),
                ready = from.readable() => if ready.is_err() { break Stop::Failed },
            }
            let mut pipe = match pipes.take() {
                Ok(pipe) => pipe,
                Err(_) => break Stop::NoPipe,
            };
            let moved = match fill(
                from,
                to,
                &mut pipe,
                tracker.as_mut(),
                &mut long_frames,
                limit,
            ) {
                Ok(0) => {
                    pipe::give_back(pipe);
                    break Stop::Eof;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pipe::give_back(pipe);
                    continue;
                }
                // splice(2) not available for these descriptors: nothing moved, go buffered.
                Err(e) if no_splice(&e) => {
                    pipe::give_back(pipe);
                    break Stop::NoPipe;
                }
                Err(_) => break Stop::Failed,
            };
            log.holding(moved);
            while pipe.held > 0 {
                tokio::select! {
                    biased;
                    ready = to.writable() => if ready.is_err() {
                        // What left the pipe before the failure did reach the peer.
                        let passed = moved.saturating_sub(pipe.held);
                        bytes += passed as u64;
                        log.relayed(passed);
                        break 'relay Stop::Failed;
                    },
                    why = &mut wait => {
                        // The peer is not reading; give it a moment, then tell what we can.
                        match timeout(BOUNDARY_GRACE, drain(to, &mut pipe)).await {
                            Ok(Ok(())) => {
                                bytes += moved as u64;
                                log.relayed(moved);
                                break 'relay Stop::Interrupted(why);
                            }
                            _ => break 'relay Stop::Abandoned(why),
                        }
                    }
                }
                match to.try_io(Interest::WRITABLE, || pipe.drain_to(to)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        let passed = moved.saturating_sub(pipe.held);
                        bytes += passed as u64;
                        log.relayed(passed);
                        break 'relay Stop::Failed;
                    }
                }
            }
            pipe::give_back(pipe);
            bytes += moved as u64;
            log.relayed(moved);
        }
    };
    // The partner's EOF can be this direction's first news of an interrupt: the other
    // direction, told first, shut the partner's side down and the partner closed. The
    // client is told all the same.
    let stop = match stop {
        Stop::Eof => match *interrupts.borrow() {
            Some(why) => Stop::Interrupted(why),
            None => Stop::Eof,
        },
        other => other,
    };
    match stop {
        Stop::Eof => {
            // Half-close: pass the FIN on and let the other direction run on.
            let _ = TcpRef(to).shutdown().await;
            Ok(Pumped {
                bytes,
                interrupted: None,
            })
        }
        Stop::Failed => Err(bytes),
        Stop::Abandoned(why) => Ok(Pumped {
            bytes,
            interrupted: Some(why),
        }),
        Stop::Interrupted(why) => {
            let mut buf = vec![0u8; FINISH_BUFFER.min(limit)];
            let (mut reader, mut writer) = (TcpRef(from), TcpRef(to));
            // Boxed, like the fallback below: rare paths must not enlarge every session.
            bytes += Box::pin(copy::finish(
                &mut reader,
                &mut writer,
                &mut buf,
                tracker.as_mut(),
                notice(why),
                &log,
            ))
            .await;
            Ok(Pumped {
                bytes,
                interrupted: Some(why),
            })
        }
        Stop::NoPipe => {
            // The copy pump takes over from where this direction stood.
            let rest = Direction {
                pending: Bytes::new(),
                tracker,
                interrupts,
                notice,
                log,
            };
            match Box::pin(copy::pump(TcpRef(from), TcpRef(to), rest)).await {
                Ok(p) => Ok(Pumped {
                    bytes: bytes + p.bytes,
                    interrupted: p.interrupted,
                }),
                Err(b) => Err(bytes + b),
            }
        }
    }
}

/// Moves the next chunk from `from` into the (empty) pipe: plain streams by splice, NI
/// streams towards the client frame by frame (`splice_ni`). Returns the bytes taken from
/// `from`; 0 is EOF.
fn fill(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &mut Pipe,
    tracker: Option<&mut FrameTracker>,
    long_frames: &mut bool,
    limit: usize,
) -> io::Result<usize> {
    match tracker {
        None => fill_plain(from, to, pipe, long_frames, limit),
        Some(tracker) => super::splice_ni::fill(from, to, pipe, tracker, long_frames, limit),
    }
}

/// A plain stream: small messages go through the thread's stack (one read, one write: a
/// splice pair costs more for a few bytes), bulk by splice. `bulk` switches when a read
/// fills the stack buffer, and back when a splice moves little.
fn fill_plain(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &mut Pipe,
    bulk: &mut bool,
    limit: usize,
) -> io::Result<usize> {
    if *bulk {
        let n = from.try_io(Interest::READABLE, || pipe.fill_from(from, limit))?;
        if n > 0 && n < STACK / 2 {
            *bulk = false;
        }
        return Ok(n);
    }
    let mut stack = [0u8; STACK];
    let cap = STACK.min(limit);
    let n = from.try_read(&mut stack[..cap])?;
    if n == 0 {
        return Ok(0);
    }
    if n == cap {
        *bulk = true;
    }
    let sent = match to.try_write(&stack[..n]) {
        Ok(sent) => sent,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    pipe.put(&stack[sent..n])?;
    Ok(n)
}

/// Splices everything the pipe holds into `to`.
async fn drain(to: &TcpStream, pipe: &mut Pipe) -> io::Result<()> {
    while pipe.held > 0 {
        to.writable().await?;
        match to.try_io(Interest::WRITABLE, || pipe.drain_to(to)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A shared reference to a TCP stream as `AsyncRead + AsyncWrite`, so both directions can
/// use one stream at once, and the copy pump can take over a direction.
struct TcpRef<'a>(&'a TcpStream);

impl AsyncRead for TcpRef<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match self.0.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TcpRef<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(self.0).shutdown(std::net::Shutdown::Write))
    }
}
