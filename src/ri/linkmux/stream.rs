//! One stream of a linkmux link as the application sees it: a tokio byte stream
//! (`AsyncRead`/`AsyncWrite`, bytes through user-space buffers, for any link), and on a
//! plain TCP link the zero-copy pair [`LinkStream::send_from`] / [`LinkStream::recv_to`]
//! (in [`super::zero_copy`]) that move bytes socket → pipe → link and link → pipe → socket
//! with `splice(2)`.
//!
//! Each stream keeps its bytes in a [`Store`]: what the application handed over and the
//! writer has not sent yet (a buffer or a pipe, never both at once, so their order is
//! never in doubt), and what the reader received and the application has not taken yet
//! (a pipe, then a buffer for what did not fit in the pipe: the pipe's bytes always come
//! first). The stream's flow control bounds both to one window.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

    pub(super) fn tx_pipe_held(&self) -> usize {
        self.tx_pipe.as_ref().map_or(0, |p| p.held)
    }

    pub(super) fn rx_pipe_held(&self) -> usize {
        self.rx_pipe.as_ref().map_or(0, |p| p.held)
    }
}

pub(super) fn link_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "reverse-invoke link closed")
}

pub(super) fn reset() -> io::Error {
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
}

/// `write` on a socket reference that may take only part.
pub(super) trait WriteSome {
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
