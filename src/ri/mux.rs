//! One link's yamux session after the handshake, shared by both sides: a driver task owns
//! the `yamux::Connection` (yamux makes progress only while someone polls it), serves
//! stream-open requests from a bounded queue, hands inbound streams to a callback, and
//! ends the link when the peer is silent for [`DEAD_AFTER`](super::link::DEAD_AFTER).
//!
//! Liveness is measured at the socket: any byte read counts, so a link busy with a large
//! transfer is never declared dead because a heartbeat queued behind the data. The
//! heartbeats on the control stream ([`run_control`]) guarantee bytes on an idle link.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::sync::CancellationToken;

use super::control::{self, Control};
use super::link::{DEAD_AFTER, HEARTBEAT_INTERVAL, LIVENESS_CHECK, MAX_CONTROL_FRAME};
use crate::ni::frame;

/// Streams yamux keeps on one link (either end). A peer that opens one more gets the whole
/// link closed, with every stream on it, so the opening side must stay well below this.
///
/// A stream stays in the count of an end until that end's own handle is gone: after the
/// DMZ router dropped a stream, the LAN router still counts it until its session has
/// noticed. The opener's cap ([`SESSIONS_PER_LINK`]) therefore stays far below this limit.
pub const MAX_STREAMS_PER_LINK: usize = 1024;
/// What earlier builds of this project accept per link (yamux's default of 512).
pub const EARLIER_MAX_STREAMS_PER_LINK: usize = 512;
/// Streams reserved below [`EARLIER_MAX_STREAMS_PER_LINK`] for streams the peer still holds
/// after this side dropped them.
const STREAM_RESERVE: usize = 63;
/// Sessions (streams) the DMZ router opens on one link at most: the limit of an earlier
/// peer, less the control stream and [`STREAM_RESERVE`]. With a peer of this build (which
/// accepts [`MAX_STREAMS_PER_LINK`]) the margin is 575 streams.
pub const SESSIONS_PER_LINK: usize = EARLIER_MAX_STREAMS_PER_LINK - 1 - STREAM_RESERVE;
/// With `conn_on_demand`, the LAN router opens its next link once its busiest link carries
/// this many sessions: half of [`SESSIONS_PER_LINK`], so the new link is up long before the
/// busy one is full.
pub const GROW_AT: usize = SESSIONS_PER_LINK / 2;
/// Receive buffer of one link across its streams (yamux's bound on auto-tuned windows): the
/// 256 KiB every stream is guaranteed, plus 128 MiB shared by auto-tuned windows.
const MAX_LINK_RECEIVE_WINDOW: usize = MAX_STREAMS_PER_LINK * (256 << 10) + (128 << 20);
/// Read and write buffer of a link's socket: yamux reads a 12-byte header, then the body,
/// and writes them apart; buffered, a frame (or many) is one system call, not two.
const LINK_BUFFER: usize = 64 * 1024;

/// A link's socket as yamux sees it: buffered both ways, reads watched for liveness.
type Link<S> = BufStream<Watched<S>>;

/// Open requests queued for one link's driver.
const OPEN_QUEUE: usize = 64;

/// The yamux settings of every link.
pub fn yamux_config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    // Window first: yamux checks that it covers 256 KiB for every stream allowed.
    cfg.set_max_connection_receive_window(Some(MAX_LINK_RECEIVE_WINDOW));
    cfg.set_max_num_streams(MAX_STREAMS_PER_LINK);
    cfg
}

/// When a socket last delivered bytes.
#[derive(Debug, Clone)]
pub struct Activity {
    base: Instant,
    last_read_ms: Arc<AtomicU64>,
}

impl Activity {
    /// Starts counting now.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            last_read_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last byte arrived.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// A socket that reports reads to an [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type OpenReply = oneshot::Sender<Result<yamux::Stream, String>>;

/// Counts one link's open streams; a stream holds a [`StreamGuard`].
#[derive(Debug, Clone, Default)]
pub struct StreamCount {
    open: Arc<AtomicUsize>,
    total: Arc<AtomicU64>,
}

impl StreamCount {
    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
    /// Streams ever carried.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    /// Counts a new stream until the guard is dropped.
    pub fn guard(&self) -> StreamGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        StreamGuard(Arc::clone(&self.open))
    }
}

/// Holds one count in a [`StreamCount`].
#[derive(Debug)]
pub struct StreamGuard(Arc<AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A yamux stream as a tokio byte stream, counted while it lives.
pub struct MuxStream {
    inner: Compat<yamux::Stream>,
    _guard: StreamGuard,
}

impl MuxStream {
    /// Wraps `stream`, counted in `count`.
    pub fn new(stream: yamux::Stream, count: &StreamCount) -> Self {
        Self::with_guard(stream, count.guard())
    }

    /// Wraps `stream`, counted by a guard taken before it was opened.
    pub fn with_guard(stream: yamux::Stream, guard: StreamGuard) -> Self {
        Self {
            inner: stream.compat(),
            _guard: guard,
        }
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Opens streams on a link whose driver runs elsewhere.
#[derive(Debug, Clone)]
pub struct Opener {
    requests: mpsc::Sender<OpenReply>,
}

impl Opener {
    /// A new stream, or why not. The caller bounds the wait.
    pub async fn open(&self) -> io::Result<yamux::Stream> {
        let (tx, rx) = oneshot::channel();
        let gone = || io::Error::new(io::ErrorKind::NotConnected, "reverse-invoke link closed");
        self.requests.send(tx).await.map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(why)) => Err(io::Error::other(why)),
            Err(_) => Err(gone()),
        }
    }
}

/// Why a link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// The peer closed the session or the TCP connection.
    Closed,
    /// Nothing arrived for [`DEAD_AFTER`].
    Silent,
    /// Ended from this side (replaced, shut down, protocol violation by the peer).
    Cancelled,
    /// yamux reported an error.
    Error(String),
}

impl std::fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkEnd::Closed => f.write_str("closed by the peer"),
            LinkEnd::Silent => write!(f, "no heartbeat for {}s", DEAD_AFTER.as_secs()),
            LinkEnd::Cancelled => f.write_str("closed by this router"),
            LinkEnd::Error(e) => write!(f, "link error: {e}"),
        }
    }
}

/// The receiving end of an [`Opener`]: handed to [`session`] when the link starts.
pub struct OpenRequests(mpsc::Receiver<OpenReply>);

/// A new open-request queue. The opener may be handed out (and used) before the link's
/// session starts; requests wait in the bounded queue until the driver runs.
pub fn open_channel() -> (Opener, OpenRequests) {
    let (tx, rx) = mpsc::channel(OPEN_QUEUE);
    (Opener { requests: tx }, OpenRequests(rx))
}

/// A link ready to be driven: its connection, open-request queue and activity clock.
pub struct Session<S> {
    conn: yamux::Connection<Compat<Link<S>>>,
    requests: mpsc::Receiver<OpenReply>,
    activity: Activity,
}

/// Starts the yamux session over `socket` (already past the handshake).
pub fn session<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    socket: S,
    mode: yamux::Mode,
    requests: OpenRequests,
) -> Session<S> {
    let activity = Activity::new();
    let conn = yamux::Connection::new(
        BufStream::with_capacity(
            LINK_BUFFER,
            LINK_BUFFER,
            Watched::new(socket, activity.clone()),
        )
        .compat(),
        yamux_config(),
        mode,
    );
    Session {
        conn,
        requests: requests.0,
        activity,
    }
}

enum Event {
    Inbound(yamux::Stream),
    End(LinkEnd),
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Session<S> {
    /// Drives the link until it ends. `inbound` gets every stream the peer opens and
    /// returns false to end the link (a stream the protocol does not allow).
    pub async fn drive(
        mut self,
        mut inbound: impl FnMut(yamux::Stream) -> bool,
        cancel: CancellationToken,
    ) -> LinkEnd {
        let mut pending: Option<OpenReply> = None;
        let mut check = tokio::time::interval(LIVENESS_CHECK);
        let end = loop {
            tokio::select! {
                _ = cancel.cancelled() => break LinkEnd::Cancelled,
                _ = check.tick() => {
                    if self.activity.idle() > DEAD_AFTER {
                        break LinkEnd::Silent;
                    }
                }
                event = poll_fn(|cx| poll_link(&mut self.conn, &mut self.requests, &mut pending, cx)) => {
                    match event {
                        Event::Inbound(stream) => {
                            if !inbound(stream) {
                                break LinkEnd::Cancelled;
                            }
                        }
                        Event::End(end) => break end,
                    }
                }
            }
        };
        // Tell the peer (GoAway) when the connection still works; never wait long for it.
        if matches!(end, LinkEnd::Cancelled) {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                poll_fn(|cx| self.conn.poll_close(cx)),
            )
            .await;
        }
        end
    }
}

/// One step of the driver: let yamux read, serve open requests, then let yamux read and
/// write again.
fn poll_link<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut yamux::Connection<Compat<Link<S>>>,
    requests: &mut mpsc::Receiver<OpenReply>,
    pending: &mut Option<OpenReply>,
    cx: &mut Context<'_>,
) -> Poll<Event> {
    // Read first: when the peer is gone (its FIN already here), the link ends and a waiting
    // open fails, so the registry gives the session to another link or LAN router instead
    // of a stream on a dead link.
    if let Poll::Ready(event) = poll_inbound(conn, cx) {
        return Poll::Ready(event);
    }
    loop {
        if pending.is_none() {
            match requests.poll_recv(cx) {
                Poll::Ready(Some(reply)) => *pending = Some(reply),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        let Some(reply) = pending.take() else { break };
        if reply.is_closed() {
            continue; // the caller gave up waiting
        }
        match conn.poll_new_outbound(cx) {
            Poll::Ready(Ok(stream)) => {
                let _ = reply.send(Ok(stream));
            }
            Poll::Ready(Err(err)) => {
                // Too many streams leaves the link usable; anything else surfaces below.
                let _ = reply.send(Err(err.to_string()));
            }
            Poll::Pending => {
                *pending = Some(reply);
                break;
            }
        }
    }
    poll_inbound(conn, cx)
}

fn poll_inbound<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut yamux::Connection<Compat<Link<S>>>,
    cx: &mut Context<'_>,
) -> Poll<Event> {
    match conn.poll_next_inbound(cx) {
        Poll::Ready(Some(Ok(stream))) => Poll::Ready(Event::Inbound(stream)),
        Poll::Ready(Some(Err(err))) => Poll::Ready(Event::End(LinkEnd::Error(err.to_string()))),
        Poll::Ready(None) => Poll::Ready(Event::End(LinkEnd::Closed)),
        Poll::Pending => Poll::Pending,
    }
}

/// The control stream: send a heartbeat every [`HEARTBEAT_INTERVAL`], read the peer's and
/// echo their tokens; time our own heartbeats by their echoes ([`super::control`]). Returns
/// when the stream fails or the peer breaks the protocol; the caller then ends the link
/// (liveness itself is the driver's job).
/// It runs the same on a stream of either multiplexer ([`super::carrier::run_control`]).
pub async fn run_control<S: AsyncRead + AsyncWrite>(stream: S, cancel: CancellationToken) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Tokens to echo, from the reading half to the writing half; a peer sending faster than
    // we echo loses echoes, never memory.
    let (echo_tx, mut echo_rx) = mpsc::channel::<u64>(4);
    // Our last heartbeat's token and when it left, to time its echo.
    let last_beat = std::sync::Mutex::new(None::<(u64, Instant)>);
    let sender = async {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut token = 0u64;
        loop {
            let message = tokio::select! {
                _ = tick.tick() => {
                    token = token.wrapping_add(1);
                    *last_beat.lock().unwrap_or_else(|p| p.into_inner()) = Some((token, Instant::now()));
                    control::heartbeat(token)
                }
                Some(peer_token) = echo_rx.recv() => control::echo(peer_token),
            };
            let bytes = frame::frame(&message);
            match tokio::time::timeout(HEARTBEAT_INTERVAL, writer.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                // A heartbeat that cannot leave within an interval: the driver's silence
                // check on the other side will notice; here the stream is done.
                _ => return "heartbeat not sent",
            }
        }
    };
    let receiver = async {
        let mut buf = BytesMut::with_capacity(2 * MAX_CONTROL_FRAME);
        loop {
            match frame::split_frame(&mut buf, MAX_CONTROL_FRAME) {
                // Unknown short control messages are accepted and dropped.
                Ok(Some(payload)) => {
                    match control::decode(&payload) {
                        Control::Heartbeat(Some(t)) => {
                            let _ = echo_tx.try_send(t);
                        }
                        Control::Echo(t) => {
                            let mut last = last_beat.lock().unwrap_or_else(|p| p.into_inner());
                            if let Some((sent, at)) = *last {
                                if sent == t {
                                    crate::metrics::ri::heartbeat_rtt(at.elapsed());
                                    *last = None;
                                }
                            }
                        }
                        Control::Heartbeat(None) | Control::Other => {}
                    }
                    continue;
                }
                Ok(None) => {}
                Err(_) => return "oversized control message",
            }
            if buf.len() >= 2 * MAX_CONTROL_FRAME {
                return "control stream overflow";
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return "control stream closed",
                Ok(_) => {}
            }
        }
    };
    let why = tokio::select! {
        why = sender => why,
        why = receiver => why,
        _ = cancel.cancelled() => return,
    };
    tracing::debug!(why, "reverse-invoke control stream ended");
}

#[cfg(test)]
#[path = "mux_tests.rs"]
mod tests;
