//! One stream of a linkmux link as the application sees it: a tokio byte stream
//! (`AsyncRead`/`AsyncWrite`, bytes through user-space buffers, for any link), and on a
//! plain TCP link the zero-copy pair [`LinkStream::send_from`] / [`LinkStream::recv_to`]
//! that move bytes socket → pipe → link and link → pipe → socket with `splice(2)`.
//!
//! Each stream keeps its bytes in a [`Store`]: what the application handed over and the
//! writer has not sent yet (a buffer or a pipe, never both at once, so their order is
//! never in doubt), and what the reader received and the application has not taken yet
//! (a pipe, then a buffer for what did not fit in the pipe: the pipe's bytes always come
//! first). The stream's flow control bounds both to one window.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::driver::Shared;
use super::frame::MAX_WINDOW;
use super::machine::RecvEnd;
// The router's pipe pool (the one place this module names it).
pub(super) use crate::router::relay::pipe::{give_back, take, Pipe};

/// Bytes one stream may hand over before the writer has sent them: one window, so a
/// stream out of credit holds no more than what its peer would accept next.
pub const TX_LIMIT: usize = MAX_WINDOW as usize;

/// A stream's bytes and wakers, kept in the link's state under its lock.
#[derive(Default)]
pub struct Store {
    /// Received bytes that came after the pipe's (or all of them, in buffered mode).
    pub(super) rx_buf: BytesMut,
    /// Received bytes, in zero-copy mode.
    pub(super) rx_pipe: Option<Pipe>,
    /// The consumer moves bytes with [`LinkStream::recv_to`]: the reader may splice.
    pub(super) rx_spliced: bool,
    pub(super) rx_waker: Option<Waker>,
    /// Handed-over bytes, buffered mode.
    pub(super) tx_buf: BytesMut,
    /// Handed-over bytes, zero-copy mode.
    pub(super) tx_pipe: Option<Pipe>,
    /// The writer holds `tx_pipe` while it splices a body out of it.
    pub(super) tx_lent: bool,
    pub(super) tx_waker: Option<Waker>,
}

impl Store {
    pub(super) fn wake_rx(&mut self) {
        if let Some(w) = self.rx_waker.take() {
            w.wake();
        }
    }

    pub(super) fn wake_tx(&mut self) {
        if let Some(w) = self.tx_waker.take() {
            w.wake();
        }
    }

    fn tx_pipe_held(&self) -> usize {
        self.tx_pipe.as_ref().map_or(0, |p| p.held)
    }

    fn rx_pipe_held(&self) -> usize {
        self.rx_pipe.as_ref().map_or(0, |p| p.held)
    }
}

fn link_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "reverse-invoke link closed")
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "stream reset by the peer")
}

/// One stream of a link. Dropping it releases the stream: bytes handed over still go
/// out (with the `FIN` if one was asked for), a direction left open is reset.
pub struct LinkStream {
    pub(super) id: u32,
    pub(super) shared: Arc<Shared>,
}

impl LinkStream {
    /// The stream id on the link.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether the link can move this stream's bytes with `splice(2)` (a plain TCP link).
    pub fn zero_copy(&self) -> bool {
        self.shared.spliceable
    }

    /// Moves bytes from socket `from` into this stream without copying them through user
    /// space; `Ok(0)` when `from` reached its end (then [`AsyncWrite::poll_shutdown`]
    /// sends the `FIN`). Only on a link where [`zero_copy`](Self::zero_copy) holds.
    pub async fn send_from(&self, from: &TcpStream) -> io::Result<usize> {
        self.send_from_bounded(from, TX_LIMIT).await
    }

    /// [`send_from`](Self::send_from), the stream's pipe holding at most `limit` bytes
    /// (at most a window): the relay's `-B`/`-Q` bound on what a direction holds.
    pub async fn send_from_bounded(&self, from: &TcpStream, limit: usize) -> io::Result<usize> {
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
                    return Ok(Err(usize::MAX));
                }
                if store.tx_pipe.is_none() {
                    store.tx_pipe = Some(take()?);
                }
                let Some(pipe) = store.tx_pipe.as_mut() else {
                    return Err(link_gone());
                };
                match pipe.fill_from(from.as_fd(), room) {
                    Ok(n) => {
                        if n > 0 {
                            state.machine.queue(self.id, n);
                            self.shared.writer.notify_one();
                        }
                        Ok(Ok(n))
                    }
                    // A pipe holding bytes may be full (its slots, not its bytes): wait
                    // for the writer, without taking `from`'s readiness away.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && pipe.held > 0 => {
                        Ok(Err(pipe.held))
                    }
                    Err(e) => Err(e),
                }
            });
            match moved {
                Ok(Ok(n)) => return Ok(n),
                // The pipe is full or lent to the writer: wait until it comes back with
                // fewer bytes than `held` (any, when lent: `usize::MAX`).
                Ok(Err(held)) => {
                    std::future::poll_fn(|cx| self.poll_pipe_drained(cx, held)).await?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
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
        loop {
            std::future::poll_fn(|cx| self.poll_received(cx)).await?;
            to.writable().await?;
            let moved = to.try_io(Interest::WRITABLE, || {
                let mut state = self.shared.lock();
                let Some(store) = state.machine.io_mut(self.id) else {
                    return Err(link_gone());
                };
                let n = if let Some(pipe) = store.rx_pipe.as_mut().filter(|p| p.held > 0) {
                    pipe.drain_to(to.as_fd())?
                } else if !store.rx_buf.is_empty() {
                    let n = (&*socket2::SockRef::from(to)).write_some(&store.rx_buf)?;
                    store.rx_buf.advance(n);
                    n
                } else {
                    return Ok(None); // the end: nothing buffered
                };
                state.machine.taken(self.id, n);
                if state.machine.has_output() {
                    self.shared.writer.notify_one();
                }
                Ok(Some(n))
            });
            match moved {
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

/// `write` on a socket reference that may take only part.
trait WriteSome {
    fn write_some(self, buf: &[u8]) -> io::Result<usize>;
}

impl WriteSome for &socket2::Socket {
    fn write_some(self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut { self }, buf)
    }
}

/// Reads from a socket reference (the link reader's user-space path).
pub(super) fn read_some(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    (&*socket2::SockRef::from(tcp)).read(buf)
}

impl AsyncRead for LinkStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        let end = state.machine.stream(self.id).map(|s| s.recv_end());
        let dead = state.dead.is_some();
        let Some(store) = state.machine.io_mut(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        if store.rx_pipe_held() > 0 {
            return Poll::Ready(Err(io::Error::other(
                "stream bytes wait in a pipe: read them with recv_to",
            )));
        }
        if !store.rx_buf.is_empty() {
            let n = store.rx_buf.len().min(buf.remaining());
            buf.put_slice(&store.rx_buf[..n]);
            store.rx_buf.advance(n);
            state.machine.taken(self.id, n);
            if state.machine.has_output() {
                self.shared.writer.notify_one();
            }
            return Poll::Ready(Ok(()));
        }
        match end {
            Some(RecvEnd::Fin) => Poll::Ready(Ok(())),
            Some(RecvEnd::Reset) => Poll::Ready(Err(reset())),
            _ if dead => Poll::Ready(Err(link_gone())),
            _ => {
                store.rx_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl LinkStream {
    /// [`AsyncWrite::poll_write`] through a shared reference, so one task can hand bytes
    /// over while another moves the other direction with [`LinkStream::recv_to`].
    pub fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.shared.lock();
        if state.dead.is_some() {
            return Poll::Ready(Err(link_gone()));
        }
        match state.machine.stream(self.id) {
            Some(s) if s.writable() => {}
            Some(_) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "stream closed for writing",
                )))
            }
            None => return Poll::Ready(Err(link_gone())),
        }
        let Some(store) = state.machine.io_mut(self.id) else {
            return Poll::Ready(Err(link_gone()));
        };
        // Buffered bytes only behind buffered bytes: wait while the pipe still holds some.
        let pending = store.tx_buf.len() + store.tx_pipe_held();
        if store.tx_lent || store.tx_pipe_held() > 0 || pending >= TX_LIMIT {
            store.tx_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(TX_LIMIT - pending);
        store.tx_buf.extend_from_slice(&buf[..n]);
        state.machine.queue(self.id, n);
        self.shared.writer.notify_one();
        Poll::Ready(Ok(n))
    }

    /// Ends this side's direction: the `FIN` follows the bytes handed over
    /// ([`AsyncWrite::poll_shutdown`] through a shared reference).
    pub fn finish(&self) {
        let mut state = self.shared.lock();
        state.machine.close_write(self.id);
        self.shared.writer.notify_one();
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_shared(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Handed-over bytes leave in order as credit allows; nothing to push.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finish();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LinkStream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.machine.release(self.id);
        if let Some(store) = state.machine.io_mut(self.id) {
            // Received bytes nobody will take: their pipe is closed, not pooled.
            store.rx_buf.clear();
            store.rx_pipe = None;
        }
        self.shared.writer.notify_one();
    }
}
