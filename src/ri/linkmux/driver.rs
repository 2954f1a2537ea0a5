//! The I/O of one linkmux link: the link's state ([`super::machine`]) under one lock, a
//! writer that owns the sending half and sends what the state machine orders, a reader
//! that owns the receiving half and puts each body where its stream keeps received bytes,
//! and the liveness check of the yamux driver (any byte read counts).
//!
//! On a plain TCP link a `DATA` body goes from a stream's pipe to the link socket with
//! `splice(2)` after its header (written with `MSG_MORE`, so header and body leave in one
//! segment), and from the link socket into the receiving stream's pipe; any other link
//! (TLS) carries the same frames through user-space buffers.

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, HEADER_LEN, MAX_BODY};
use super::machine::{Core, Event, OpenError, Role};
use super::stream::{give_back, read_some, take, LinkStream, Pipe, Store};
use crate::ri::link::{DEAD_AFTER, LIVENESS_CHECK};
use crate::ri::mux::{Activity, LinkEnd, Watched, MAX_STREAMS_PER_LINK};
use crate::router::conn::BoxConn;

/// Frames gathered before one write (headers and buffered bodies).
const OUT_BATCH: usize = 64 * 1024;
/// Buffer of the reader on a user-space link.
const READ_BUFFER: usize = 64 * 1024;

/// The link's state shared by its driver and streams.
pub(crate) struct State {
    pub(super) machine: Core<Store>,
    /// Set once the link ended: why.
    pub(super) dead: Option<String>,
}

/// What a link's driver and its streams share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: a frame may be due.
    pub(super) writer: Notify,
    /// Bodies may move with `splice(2)` (a plain TCP link).
    pub(super) spliceable: bool,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the link for every stream: their next call fails, their wakers run.
    fn kill(&self, why: &str) {
        let mut state = self.lock();
        if state.dead.is_none() {
            state.dead = Some(why.to_string());
        }
        for id in state.machine.ids() {
            if let Some(store) = state.machine.io_mut(id) {
                store.wake_rx();
                store.wake_tx();
            }
        }
    }
}

/// Opens streams on a link.
#[derive(Clone)]
pub struct Opener {
    shared: Arc<Shared>,
}

impl Opener {
    /// A new stream (its `OPEN` is the next frame out).
    pub fn open(&self) -> io::Result<LinkStream> {
        let mut state = self.shared.lock();
        if let Some(why) = &state.dead {
            return Err(io::Error::new(io::ErrorKind::NotConnected, why.clone()));
        }
        let id = state
            .machine
            .open(Store::default())
            .map_err(|e: OpenError| io::Error::other(e.to_string()))?;
        drop(state);
        self.shared.writer.notify_one();
        Ok(LinkStream {
            id,
            shared: Arc::clone(&self.shared),
        })
    }
}

/// The link's socket: plain TCP (zero-copy bodies) or anything else.
enum Io {
    Tcp(TcpStream),
    Other(BoxConn),
}

/// A link past its handshake, ready to be driven.
pub struct Link {
    shared: Arc<Shared>,
    io: Io,
    activity: Activity,
}

impl Link {
    /// A link over a plain TCP connection: bodies move with `splice(2)` (Linux; elsewhere
    /// through user-space buffers, as on any other link).
    pub fn tcp(socket: TcpStream, role: Role) -> (Link, Opener) {
        Self::new(Io::Tcp(socket), role, cfg!(target_os = "linux"))
    }

    /// A link over any other connection (TLS): bodies through user-space buffers.
    pub fn other(socket: BoxConn, role: Role) -> (Link, Opener) {
        Self::new(Io::Other(socket), role, false)
    }

    fn new(io: Io, role: Role, spliceable: bool) -> (Link, Opener) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                machine: Core::new(role, MAX_STREAMS_PER_LINK),
                dead: None,
            }),
            writer: Notify::new(),
            spliceable,
        });
        let opener = Opener {
            shared: Arc::clone(&shared),
        };
        let link = Link {
            shared,
            io,
            activity: Activity::new(),
        };
        (link, opener)
    }

    /// Drives the link until it ends. `inbound` gets every stream the peer opens and
    /// returns false to end the link.
    pub async fn drive(
        self,
        mut inbound: impl FnMut(LinkStream) -> bool,
        cancel: CancellationToken,
    ) -> LinkEnd {
        let Link {
            shared,
            io,
            activity,
        } = self;
        let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<u32>();
        let mut check = tokio::time::interval(LIVENESS_CHECK);
        let end = {
            let io_task = run_io(&shared, io, &activity, opened_tx);
            tokio::pin!(io_task);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break LinkEnd::Cancelled,
                    _ = check.tick() => {
                        if activity.idle() > DEAD_AFTER {
                            break LinkEnd::Silent;
                        }
                    }
                    Some(id) = opened_rx.recv() => {
                        let stream = LinkStream { id, shared: Arc::clone(&shared) };
                        if !inbound(stream) {
                            break LinkEnd::Cancelled;
                        }
                    }
                    end = &mut io_task => break end,
                }
            }
        };
        shared.kill(&end.to_string());
        end
    }
}

/// Runs reader and writer until one of them ends the link.
async fn run_io(
    shared: &Shared,
    io: Io,
    activity: &Activity,
    opened: mpsc::UnboundedSender<u32>,
) -> LinkEnd {
    let result = match io {
        Io::Tcp(tcp) => {
            tokio::select! {
                r = read_tcp(shared, &tcp, activity, &opened) => r,
                r = write_tcp(shared, &tcp) => r,
            }
        }
        Io::Other(conn) => {
            let (r, w) = tokio::io::split(Watched::new(conn, activity.clone()));
            tokio::select! {
                r = read_other(shared, BufReader::with_capacity(READ_BUFFER, r), &opened) => r,
                r = write_other(shared, w) => r,
            }
        }
    };
    match result {
        Ok(()) => LinkEnd::Closed,
        Err(e) => LinkEnd::Error(e.to_string()),
    }
}

fn protocol(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("link protocol: {e}"))
}

/// Applies a received header; returns what to do with its body.
fn on_header(
    shared: &Shared,
    head: &[u8; HEADER_LEN],
    opened: &mpsc::UnboundedSender<u32>,
) -> io::Result<Event> {
    let frame = Frame::decode(head).map_err(protocol)?;
    let mut state = shared.lock();
    let event = state.machine.receive(frame).map_err(protocol)?;
    match event {
        Event::Opened(id) => {
            let _ = opened.send(id);
        }
        Event::Wake(id) => {
            if let Some(store) = state.machine.io_mut(id) {
                store.wake_rx();
                store.wake_tx();
            }
        }
        Event::Data { .. } | Event::Discard { .. } | Event::Nothing => {}
    }
    if state.machine.has_output() {
        shared.writer.notify_one();
    }
    Ok(event)
}

// --- Plain TCP ---

/// Reads headers exactly (never a body byte, which stays in the socket to be spliced).
async fn read_tcp(
    shared: &Shared,
    tcp: &TcpStream,
    activity: &Activity,
    opened: &mpsc::UnboundedSender<u32>,
) -> io::Result<()> {
    let mut scratch = vec![0u8; 16 * 1024];
    loop {
        let mut head = [0u8; HEADER_LEN];
        let mut have = 0;
        while have < HEADER_LEN {
            tcp.readable().await?;
            match tcp.try_io(Interest::READABLE, || read_some(tcp, &mut head[have..])) {
                Ok(0) if have == 0 => return Ok(()),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    have += n;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        match on_header(shared, &head, opened)? {
            Event::Data { stream, len } => {
                body_tcp(
                    shared,
                    tcp,
                    activity,
                    Some(stream),
                    len as usize,
                    &mut scratch,
                )
                .await?
            }
            Event::Discard { len } => {
                body_tcp(shared, tcp, activity, None, len as usize, &mut scratch).await?
            }
            _ => {}
        }
    }
}

/// Moves `len` body bytes from the link into `stream`'s store (dropped when `None` or
/// the stream is gone): into its pipe when its consumer splices and no buffered bytes
/// wait, else (or when the pipe is full) into its buffer.
async fn body_tcp(
    shared: &Shared,
    tcp: &TcpStream,
    activity: &Activity,
    stream: Option<u32>,
    len: usize,
    scratch: &mut [u8],
) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        tcp.readable().await?;
        let moved = tcp.try_io(Interest::READABLE, || {
            let mut state = shared.lock();
            let store = stream.and_then(|id| state.machine.io_mut(id));
            let Some(store) = store else {
                let n = left.min(scratch.len());
                return read_some(tcp, &mut scratch[..n]);
            };
            if store.rx_spliced && store.rx_buf.is_empty() {
                if store.rx_pipe.is_none() {
                    store.rx_pipe = take().ok();
                }
                if let Some(pipe) = store.rx_pipe.as_mut() {
                    match pipe.fill_from(tcp.as_fd(), left) {
                        Ok(n) => {
                            store.wake_rx();
                            return Ok(n);
                        }
                        // The socket is empty, or the pipe full: the read below tells.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            let old = store.rx_buf.len();
            store.rx_buf.resize(old + left, 0);
            let got = read_some(tcp, &mut store.rx_buf[old..]);
            store.rx_buf.truncate(old + *got.as_ref().unwrap_or(&0));
            if matches!(got, Ok(n) if n > 0) {
                store.wake_rx();
            }
            got
        });
        match moved {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                left -= n;
                activity.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the writer sends next.
enum Job {
    /// Nothing due.
    Idle,
    /// The link ended.
    Dead,
    /// A header, and a body taken from a stream's buffer.
    Bytes([u8; HEADER_LEN], Option<Bytes>),
    /// A header, and `len` bytes of the pipe lent by `stream`.
    Pipe([u8; HEADER_LEN], u32, Pipe, usize),
}

/// The next frame and its body, taken out of the stream's store under the lock.
fn next_job(shared: &Shared) -> Job {
    let mut state = shared.lock();
    if state.dead.is_some() {
        return Job::Dead;
    }
    let Some(frame) = state.machine.next_frame() else {
        return Job::Idle;
    };
    let head = frame.encode();
    let Frame::Data { stream, len } = frame else {
        return Job::Bytes(head, None);
    };
    let len = len as usize;
    let Some(store) = state.machine.io_mut(stream) else {
        // Cannot happen: the machine frames only bytes of a live stream.
        state.dead = Some("data of a stream without bytes".into());
        return Job::Dead;
    };
    let job = if !store.tx_buf.is_empty() {
        Job::Bytes(
            head,
            Some(store.tx_buf.split_to(len.min(store.tx_buf.len())).freeze()),
        )
    } else if let Some(pipe) = store.tx_pipe.take() {
        store.tx_lent = true;
        Job::Pipe(head, stream, pipe, len)
    } else {
        state.dead = Some("data of a stream without bytes".into());
        return Job::Dead;
    };
    store.wake_tx();
    job
}

/// Adds a frame to the batch of the next write; true once the batch is due.
fn gather(out: &mut Vec<u8>, head: &[u8; HEADER_LEN], body: Option<&[u8]>) -> bool {
    out.extend_from_slice(head);
    out.extend_from_slice(body.unwrap_or_default());
    out.len() >= OUT_BATCH
}

async fn write_tcp(shared: &Shared, tcp: &TcpStream) -> io::Result<()> {
    let mut out: Vec<u8> = Vec::with_capacity(OUT_BATCH + HEADER_LEN + MAX_BODY as usize);
    loop {
        match next_job(shared) {
            Job::Dead => return Ok(()),
            Job::Idle => {
                if out.is_empty() {
                    shared.writer.notified().await;
                } else {
                    send_all(tcp, &out, false).await?;
                    out.clear();
                }
            }
            Job::Bytes(head, body) => {
                if gather(&mut out, &head, body.as_deref()) {
                    send_all(tcp, &out, false).await?;
                    out.clear();
                }
            }
            Job::Pipe(head, stream, mut pipe, len) => {
                out.extend_from_slice(&head);
                send_all(tcp, &out, true).await?;
                out.clear();
                let sent = splice_body(tcp, &mut pipe, len).await;
                let mut state = shared.lock();
                match state.machine.io_mut(stream) {
                    Some(store) => {
                        store.tx_pipe = Some(pipe);
                        store.tx_lent = false;
                        store.wake_tx();
                    }
                    None => give_back(pipe),
                }
                drop(state);
                sent?;
            }
        }
    }
}

/// "More follows" for `send(2)`: Linux joins a header and its body in one segment; other
/// systems have no such flag, and the header goes as it is.
#[cfg(target_os = "linux")]
const MSG_MORE: libc::c_int = libc::MSG_MORE;
#[cfg(not(target_os = "linux"))]
const MSG_MORE: libc::c_int = 0;

/// Writes all of `buf`; `more` tells the kernel a body follows (one segment for both).
async fn send_all(tcp: &TcpStream, mut buf: &[u8], more: bool) -> io::Result<()> {
    let flags = if more { MSG_MORE } else { 0 };
    while !buf.is_empty() {
        tcp.writable().await?;
        match tcp.try_io(Interest::WRITABLE, || {
            socket2::SockRef::from(tcp).send_with_flags(buf, flags)
        }) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Splices exactly `len` bytes from the front of `pipe` into the link.
async fn splice_body(tcp: &TcpStream, pipe: &mut Pipe, len: usize) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        tcp.writable().await?;
        match tcp.try_io(Interest::WRITABLE, || pipe.drain_at_most_to(tcp, left)) {
            Ok(0) => return Err(io::Error::other("stream pipe shorter than its frame")),
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// --- Any other link (TLS): the same frames through user-space buffers. ---

async fn read_other<R: AsyncRead + Unpin>(
    shared: &Shared,
    mut reader: BufReader<R>,
    opened: &mpsc::UnboundedSender<u32>,
) -> io::Result<()> {
    let mut body = vec![0u8; MAX_BODY as usize];
    loop {
        let mut head = [0u8; HEADER_LEN];
        match reader.read(&mut head[..1]).await? {
            0 => return Ok(()),
            _ => reader.read_exact(&mut head[1..]).await?,
        };
        let (stream, len) = match on_header(shared, &head, opened)? {
            Event::Data { stream, len } => (Some(stream), len as usize),
            Event::Discard { len } => (None, len as usize),
            _ => continue,
        };
        reader.read_exact(&mut body[..len]).await?;
        let mut state = shared.lock();
        if let Some(store) = stream.and_then(|id| state.machine.io_mut(id)) {
            store.rx_buf.extend_from_slice(&body[..len]);
            store.wake_rx();
        }
    }
}

async fn write_other<W: AsyncWrite + Unpin>(shared: &Shared, mut writer: W) -> io::Result<()> {
    let mut out: Vec<u8> = Vec::with_capacity(OUT_BATCH + HEADER_LEN + MAX_BODY as usize);
    loop {
        match next_job(shared) {
            Job::Dead => return Ok(()),
            Job::Idle => {
                if out.is_empty() {
                    shared.writer.notified().await;
                } else {
                    writer.write_all(&out).await?;
                    writer.flush().await?;
                    out.clear();
                }
            }
            Job::Bytes(head, body) => {
                if gather(&mut out, &head, body.as_deref()) {
                    writer.write_all(&out).await?;
                    out.clear();
                }
            }
            Job::Pipe(_, stream, pipe, _) => {
                // Streams of a user-space link never fill a pipe (send_from refuses).
                let mut state = shared.lock();
                if let Some(store) = state.machine.io_mut(stream) {
                    store.tx_pipe = Some(pipe);
                    store.tx_lent = false;
                }
                return Err(io::Error::other("zero-copy bytes on a user-space link"));
            }
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
