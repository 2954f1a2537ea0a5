//! The zero-copy pair of a stream on a plain TCP link: [`LinkStream::send_from`] moves
//! bytes socket → the stream's pipe (the writer then splices them into the link), and
//! [`LinkStream::recv_to`] moves what the reader spliced into the stream's pipe on into a
//! socket, both with `splice(2)`, never through user space.
//!
//! The `_framed` variants do the same for an NI stream towards its client, where every
//! frame boundary must be known: headers are peeked on the socket (send) or read out of
//! the pipe (receive), bodies spliced up to their end. With no pipe to be had (descriptor
//! limit) a round goes through user space instead.

use std::io;
use std::os::fd::AsFd;
use std::task::{Context, Poll};

use bytes::Buf;
use rustix::net::{RecvFlags, SendFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::machine::RecvEnd;
use super::stream::{link_gone, reset, take, LinkStream, Store, WriteSome, TX_LIMIT};
use crate::ni::frame::{FrameTracker, HEADER_LEN};

/// Bytes one round moves through user space when no pipe can be had.
const THROUGH_BUFFER: usize = 64 * 1024;

/// Why a round of `send_from_framed` moved nothing.
enum Blocked {
    /// The pipe holds this many bytes and is full, or is lent (`usize::MAX`): wait for the
    /// writer.
    Pipe(usize),
    /// No pipe to be had.
    NoPipe,
}

impl LinkStream {
    /// Moves bytes from socket `from` into this stream without copying them through user
    /// space; `Ok(0)` when `from` reached its end (then [`tokio::io::AsyncWrite::poll_shutdown`]
    /// sends the `FIN`). Only on a link where [`zero_copy`](Self::zero_copy) holds.
    pub async fn send_from(&self, from: &TcpStream) -> io::Result<usize> {
        self.send_from_bounded(from, TX_LIMIT).await
    }

    /// [`send_from`](Self::send_from), the stream's pipe holding at most `limit` bytes
    /// (at most a window): the relay's `-B`/`-Q` bound on what a direction holds.
    pub async fn send_from_bounded(&self, from: &TcpStream, limit: usize) -> io::Result<usize> {
        self.send_from_framed(from, limit, None, false).await
    }

    /// [`send_from_bounded`](Self::send_from_bounded) for an NI stream: `tracker` sees
    /// every frame header (peeked, 4 bytes, before the frame is spliced), so the frame
    /// boundaries stay known though the bytes never pass through user space. A splice
    /// never goes past the end of the frame it starts in; with `to_boundary`, nothing past
    /// the next frame boundary is moved (the end of an interrupted stream).
    pub async fn send_from_framed(
        &self,
        from: &TcpStream,
        limit: usize,
        mut tracker: Option<&mut FrameTracker>,
        to_boundary: bool,
    ) -> io::Result<usize> {
        let limit = limit.clamp(1, TX_LIMIT);
        if !self.shared.spliceable {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "zero-copy needs a plain TCP link",
            ));
        }
        loop {
            // Room in the stream, and the pipe at hand (not lent to the writer, and no
            // buffered bytes ahead of it).
            let room = std::future::poll_fn(|cx| self.poll_pipe_room(cx, limit)).await?;
            from.readable().await?;
            let moved = from.try_io(Interest::READABLE, || {
                let mut state = self.shared.lock();
                if let Some(why) = &state.dead {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone()));
                }
                let Some(store) = state.machine.io_mut(self.id) else {
                    return Err(link_gone());
                };
                // The writer may have borrowed the pipe since the room was measured: wait
                // for it to come back (a second pipe would be overwritten on its return,
                // and its bytes lost).
                if store.tx_lent {
                    return Ok(Err(Blocked::Pipe(usize::MAX)));
                }
                if store.tx_pipe.is_none() {
                    match take() {
                        Ok(pipe) => store.tx_pipe = Some(pipe),
                        // No pipe to be had (descriptor limit): this round through user
                        // space; the next tries a pipe again.
                        Err(_) => return Ok(Err(Blocked::NoPipe)),
                    }
                }
                let Some(pipe) = store.tx_pipe.as_mut() else {
                    return Err(link_gone());
                };
                // Raw bytes: one splice. NI frames: frame after frame while they are there
                // and the pipe has room, each splice within its frame.
                let mut moved = 0usize;
                loop {
                    let mut head = [0u8; HEADER_LEN];
                    let step = next_splice(from, tracker.as_deref(), room - moved, &mut head);
                    let (len, peeked) = match step {
                        Ok(step) => step,
                        Err(_) if moved > 0 => break,
                        // Would block: clears the readiness, as a read does.
                        Err(e) => return Err(e),
                    };
                    match pipe.fill_from(from.as_fd(), len) {
                        Ok(0) if moved == 0 => return Ok(Ok(0)),
                        Ok(0) => break,
                        Ok(n) => {
                            moved += n;
                            let Some(t) = tracker.as_deref_mut() else {
                                break;
                            };
                            let fed = n.min(peeked);
                            t.feed(&head[..fed]);
                            t.skip_body((n - fed) as u64);
                            if n < len || moved >= room || (to_boundary && t.at_boundary()) {
                                break;
                            }
                        }
                        Err(_) if moved > 0 => break,
                        // A pipe holding bytes may be full (its slots, not its bytes):
                        // wait for the writer, without taking `from`'s readiness away.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && pipe.held > 0 => {
                            return Ok(Err(Blocked::Pipe(pipe.held)));
                        }
                        Err(e) => return Err(e),
                    }
                }
                state.machine.queue(self.id, moved);
                self.shared.writer.notify_one();
                Ok(Ok(moved))
            });
            match moved {
                Ok(Ok(n)) => return Ok(n),
                // The pipe is full or lent to the writer: wait until it comes back with
                // fewer bytes than `held` (any, when lent: `usize::MAX`).
                Ok(Err(Blocked::Pipe(held))) => {
                    std::future::poll_fn(|cx| self.poll_pipe_drained(cx, held)).await?;
                }
                Ok(Err(Blocked::NoPipe)) => {
                    return self.send_through_buffer(from, room, tracker).await;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One round of [`send_from_framed`](Self::send_from_framed) without a pipe: at most
    /// `room` bytes read into user space (frame-aware: never past the end of the frame
    /// they start in, so never past a boundary either) and handed over as by `AsyncWrite`.
    /// Rare: no pipe to be had.
    async fn send_through_buffer(
        &self,
        from: &TcpStream,
        room: usize,
        tracker: Option<&mut FrameTracker>,
    ) -> io::Result<usize> {
        let mut cap = room.clamp(1, THROUGH_BUFFER);
        if let Some(t) = tracker.as_deref() {
            let within = usize::try_from(t.body_left()).unwrap_or(usize::MAX);
            cap = if within > 0 {
                cap.min(within)
            } else {
                t.header_left()
            };
        }
        let mut buf = vec![0u8; cap];
        let n = loop {
            from.readable().await?;
            match from.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        };
        if let Some(t) = tracker {
            t.feed(&buf[..n]);
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let k = std::future::poll_fn(|cx| self.poll_write_shared(cx, rest)).await?;
            rest = &rest[k..];
        }
        Ok(n)
    }

    /// Ready with the bytes the pipe may take now.
    fn poll_pipe_room(&self, cx: &mut Context<'_>, limit: usize) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        if state.dead.is_some() {
            return Poll::Ready(Err(link_gone()));
        }
        let Some(s) = state.machine.stream(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        if !s.writable() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stream closed for writing",
            )));
        }
        let Some(store) = state.machine.io_mut(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        let held = store.tx_pipe_held();
        if store.tx_lent || !store.tx_buf.is_empty() || held >= limit {
            store.tx_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(limit - held))
    }

    /// Ready once the pipe holds fewer than `held` bytes (the writer spliced some out).
    /// Both the check and the writer's splice happen under the link's lock, and the
    /// writer wakes the stream after it, so no wake-up is lost.
    fn poll_pipe_drained(&self, cx: &mut Context<'_>, held: usize) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if state.dead.is_some() {
            return Poll::Ready(Err(link_gone()));
        }
        let Some(store) = state.machine.io_mut(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        if !store.tx_lent && store.tx_pipe_held() < held {
            return Poll::Ready(Ok(()));
        }
        store.tx_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Moves received bytes of this stream into socket `to` (by `splice(2)` for what the
    /// link's reader put into the stream's pipe); `Ok(0)` at the stream's clean end.
    pub async fn recv_to(&self, to: &TcpStream) -> io::Result<usize> {
        self.recv_into(to, None).await
    }

    /// [`recv_to`](Self::recv_to) for an NI stream towards its client: `tracker` sees every
    /// frame header, read out of the pipe (4 bytes) and written on through `held`, and a
    /// body is spliced at most to its end. With `to_boundary`, nothing past the next frame
    /// boundary is moved (the end of an interrupted stream). Returns the bytes written
    /// into `to`; `Ok(0)` at the stream's clean end, once `held` is empty.
    pub async fn recv_to_framed(
        &self,
        to: &TcpStream,
        tracker: &mut FrameTracker,
        held: &mut HeldHeader,
        to_boundary: bool,
    ) -> io::Result<usize> {
        let framing = Framing {
            tracker,
            held,
            to_boundary,
        };
        self.recv_into(to, Some(framing)).await
    }

    /// [`recv_to`](Self::recv_to), frame-aware with `framing`.
    async fn recv_into(
        &self,
        to: &TcpStream,
        mut framing: Option<Framing<'_>>,
    ) -> io::Result<usize> {
        loop {
            // A header held back goes first, whatever the stream has.
            if !framing.as_ref().is_some_and(|f| !f.held.is_empty()) {
                std::future::poll_fn(|cx| self.poll_received(cx)).await?;
            }
            to.writable().await?;
            let moved = to.try_io(Interest::WRITABLE, || {
                if let Some(f) = framing.as_mut().filter(|f| !f.held.is_empty()) {
                    let n = send(to, f.held.pending(), false)?;
                    f.held.advance(n);
                    return Ok(Some(n));
                }
                let mut state = self.shared.lock();
                let Some(store) = state.machine.io_mut(self.id) else {
                    return Err(link_gone());
                };
                let step = match framing.as_mut() {
                    Some(f) => move_framed(store, to, f)?,
                    None => move_plain(store, to)?,
                };
                let Some(Moved {
                    passed,
                    taken,
                    header_held_back,
                }) = step
                else {
                    return Ok(None); // the end: nothing buffered
                };
                state.machine.taken(self.id, taken);
                if state.machine.has_output() {
                    self.shared.writer.notify_one();
                }
                if header_held_back && passed == 0 {
                    // The header waits in `held`; the socket's readiness is cleared (with
                    // bytes passed on, they are told first; the next write clears it).
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(Some(passed))
            });
            match moved {
                Ok(Some(0)) => {}
                Ok(Some(n)) => return Ok(n),
                Ok(None) => return self.end_of_stream().map(|()| 0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Ready when bytes are there or the direction ended; switches the stream to
    /// zero-copy receiving on a link that can.
    fn poll_received(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        let spliceable = self.shared.spliceable;
        let end = state.machine.stream(self.id).map(|s| s.recv_end());
        let dead = state.dead.is_some();
        let Some(store) = state.machine.io_mut(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        store.rx_spliced |= spliceable;
        if store.rx_pipe_held() > 0 || !store.rx_buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match end {
            Some(RecvEnd::Open) if !dead => {
                store.rx_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(Ok(())),
        }
    }

    /// After the last received byte: a clean end, or why not.
    fn end_of_stream(&self) -> io::Result<()> {
        let state = self.shared.lock();
        match state.machine.stream(self.id).map(|s| s.recv_end()) {
            Some(RecvEnd::Fin) => Ok(()),
            Some(RecvEnd::Reset) => Err(reset()),
            _ => Err(link_gone()),
        }
    }
}

/// What frame-aware receiving keeps from call to call, and how far one call may go.
struct Framing<'a> {
    tracker: &'a mut FrameTracker,
    held: &'a mut HeldHeader,
    to_boundary: bool,
}

/// One move out of a stream's received bytes into a socket.
struct Moved {
    /// Bytes written into the socket.
    passed: usize,
    /// Bytes taken out of the stream (its credit).
    taken: usize,
    /// A header read out of the pipe waits in `held`: the socket took none of it.
    header_held_back: bool,
}

/// Moves what the stream holds (its pipe first) into `to`; `None` when it holds nothing.
fn move_plain(store: &mut Store, to: &TcpStream) -> io::Result<Option<Moved>> {
    let n = if let Some(pipe) = store.rx_pipe.as_mut().filter(|p| p.held > 0) {
        pipe.drain_to(to.as_fd())?
    } else if !store.rx_buf.is_empty() {
        let n = (&*socket2::SockRef::from(to)).write_some(&store.rx_buf)?;
        store.rx_buf.advance(n);
        n
    } else {
        return Ok(None);
    };
    Ok(Some(Moved {
        passed: n,
        taken: n,
        header_held_back: false,
    }))
}

/// [`move_plain`] frame by frame: from the pipe, each header through the stack (what `to`
/// does not take waits in `held`) and each body spliced up to its end, frame after frame
/// while the pipe has bytes and `to` takes them; from the buffer, as far as `to` takes
/// (only to the next boundary with `to_boundary`). `None` when the stream holds nothing.
fn move_framed(
    store: &mut Store,
    to: &TcpStream,
    f: &mut Framing<'_>,
) -> io::Result<Option<Moved>> {
    let Framing {
        tracker,
        held,
        to_boundary,
    } = f;
    if let Some(pipe) = store.rx_pipe.as_mut().filter(|p| p.held > 0) {
        let (mut passed, mut taken, mut header_held_back) = (0usize, 0usize, false);
        while pipe.held > 0 && !(*to_boundary && taken > 0 && tracker.at_boundary()) {
            if tracker.body_left() > 0 {
                let body = usize::try_from(tracker.body_left()).unwrap_or(usize::MAX);
                let n = match pipe.drain_at_most_to(to.as_fd(), body) {
                    Ok(n) => n,
                    Err(_) if taken > 0 => break,
                    Err(e) => return Err(e),
                };
                tracker.skip_body(n as u64);
                (passed, taken) = (passed + n, taken + n);
                if n < body {
                    break;
                }
                continue;
            }
            let mut head = [0u8; HEADER_LEN];
            let got = pipe.take_out(&mut head[..tracker.header_left()])?;
            tracker.feed(&head[..got]);
            // The body follows at once when it is there; then the header waits for it in
            // the socket (MSG_MORE), not alone on the wire.
            let more = tracker.body_left() > 0 && pipe.held > 0;
            let sent = match send(to, &head[..got], more) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    header_held_back = true;
                    0
                }
                Err(e) => return Err(e),
            };
            (passed, taken) = (passed + sent, taken + got);
            if sent < got {
                held.keep(&head[sent..got]);
                break;
            }
        }
        return Ok(Some(Moved {
            passed,
            taken,
            header_held_back,
        }));
    }
    if store.rx_buf.is_empty() {
        return Ok(None);
    }
    let len = if *to_boundary {
        tracker
            .boundary_within(&store.rx_buf)
            .unwrap_or(store.rx_buf.len())
    } else {
        store.rx_buf.len()
    };
    let n = (&*socket2::SockRef::from(to)).write_some(&store.rx_buf[..len])?;
    tracker.feed(&store.rx_buf[..n]);
    store.rx_buf.advance(n);
    Ok(Some(Moved {
        passed: n,
        taken: n,
        header_held_back: false,
    }))
}

/// How many bytes the next splice from `from` may take, within `room`, and how many header
/// bytes it peeked into `head` to know (they are fed to the tracker once moved). Raw
/// bytes: all the room. NI frames: the rest of the body, or a whole frame after a look at
/// its header, or the part of a header there is.
fn next_splice(
    from: &TcpStream,
    tracker: Option<&FrameTracker>,
    room: usize,
    head: &mut [u8; HEADER_LEN],
) -> io::Result<(usize, usize)> {
    let within = |len: u64| usize::try_from(len).map_or(room, |l| l.min(room));
    match tracker {
        None => Ok((room, 0)),
        Some(t) if t.body_left() > 0 => Ok((within(t.body_left()), 0)),
        Some(t) => {
            let want = t.header_left();
            let (k, _) = rustix::net::recv(from, &mut head[..want], RecvFlags::PEEK)?;
            if k == HEADER_LEN {
                let frame = u64::from(u32::from_be_bytes(*head)) + HEADER_LEN as u64;
                Ok((within(frame), k))
            } else {
                // Part of a header, or the end (k == 0: the splice then says EOF).
                Ok((k.clamp(1, room.max(1)), k))
            }
        }
    }
}

/// A frame header (or part of one) read out of a stream's receive pipe for the frame
/// tracker and not yet written to the socket: at most [`HEADER_LEN`] bytes.
#[derive(Debug, Default)]
pub struct HeldHeader {
    bytes: [u8; HEADER_LEN],
    start: usize,
    end: usize,
}

impl HeldHeader {
    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Holds `bytes` (only when empty; at most a header).
    fn keep(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(HEADER_LEN);
        self.bytes[..n].copy_from_slice(&bytes[..n]);
        (self.start, self.end) = (0, n);
    }
}

/// `send(2)` without blocking; `more`: further bytes follow at once (`MSG_MORE` on Linux,
/// the only system where the stream's pipe is ever filled).
fn send(to: &TcpStream, bytes: &[u8], more: bool) -> io::Result<usize> {
    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    #[cfg(target_os = "linux")]
    let flags = if more { flags | SendFlags::MORE } else { flags };
    #[cfg(not(target_os = "linux"))]
    let _ = more;
    Ok(rustix::net::send(to, bytes, flags)?)
}
