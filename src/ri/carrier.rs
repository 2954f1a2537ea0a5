//! The multiplexer a registered link runs, behind one small type: the handshake decides
//! it (link protocol version 1: yamux, [`super::mux`]; version 2: linkmux,
//! [`super::linkmux`]) and from then on the registry, the DMZ side ([`super::client`]) and
//! the LAN side ([`super::server`]) only open, accept, count and drive streams through
//! this module, whichever multiplexer carries them.
//!
//! What both carriers share is kept in one place here: the liveness rule (any byte read
//! counts, silent for [`DEAD_AFTER`](super::link::DEAD_AFTER) is dead), the control
//! stream's heartbeats ([`super::mux::run_control`]), stream counting with
//! [`StreamGuard`]s, and the DMZ router's per-link cap
//! ([`SESSIONS_PER_LINK`](super::mux::SESSIONS_PER_LINK)), which the registry enforces
//! before it opens a stream on either.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};
use tokio_util::sync::CancellationToken;

use super::link::{LINKMUX_VERSION, YAMUX_VERSION};
use super::linkmux::{self, LinkStream};
use super::mux::{self, LinkEnd, StreamGuard};
use crate::router::conn::Side;

/// Which multiplexer a link runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Link protocol version 1.
    Yamux,
    /// Link protocol version 2.
    Linkmux,
}

impl Kind {
    /// The multiplexer of link protocol `version`, if this build speaks it.
    pub fn of_version(version: u8) -> Option<Kind> {
        match version {
            YAMUX_VERSION => Some(Kind::Yamux),
            LINKMUX_VERSION => Some(Kind::Linkmux),
            _ => None,
        }
    }

    /// Its link protocol version.
    pub fn version(self) -> u8 {
        match self {
            Kind::Yamux => YAMUX_VERSION,
            Kind::Linkmux => LINKMUX_VERSION,
        }
    }

    /// Its name in `-l` and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Yamux => "yamux",
            Kind::Linkmux => "linkmux",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which end of the link this router is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The DMZ router (SAP's client mode): opens one stream per routed session.
    Dmz,
    /// The LAN router (SAP's server mode): opens the control stream only.
    Lan,
}

/// A linkmux link's opener, once its driver has started (the registry holds the opener
/// from the registration on, before the link is driven, as it does with yamux).
#[derive(Clone)]
enum Pending {
    Waiting,
    Ready(linkmux::Opener),
}

/// Opens streams on a link whose driver runs elsewhere.
#[derive(Clone)]
pub struct Opener(OpenerKind);

#[derive(Clone)]
enum OpenerKind {
    Yamux(mux::Opener),
    Linkmux(watch::Receiver<Pending>),
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            OpenerKind::Yamux(_) => f.write_str("Opener(yamux)"),
            OpenerKind::Linkmux(_) => f.write_str("Opener(linkmux)"),
        }
    }
}

impl From<mux::Opener> for Opener {
    fn from(opener: mux::Opener) -> Self {
        Opener(OpenerKind::Yamux(opener))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "reverse-invoke link closed")
}

impl Opener {
    /// A new stream, or why not. The caller bounds the wait (a link not driven yet makes
    /// it wait until it is, as yamux's request queue does).
    pub async fn open(&self) -> io::Result<RawStream> {
        match &self.0 {
            OpenerKind::Yamux(opener) => opener.open().await.map(RawStream::Yamux),
            OpenerKind::Linkmux(rx) => {
                let mut rx = rx.clone();
                let ready = rx
                    .wait_for(|p| matches!(p, Pending::Ready(_)))
                    .await
                    .map_err(|_| gone())?;
                let opener = match &*ready {
                    Pending::Ready(opener) => opener.clone(),
                    Pending::Waiting => return Err(gone()),
                };
                drop(ready);
                opener.open().map(RawStream::Linkmux)
            }
        }
    }
}

/// The link side of an [`Opener`], handed to [`drive`] with the socket.
pub struct Requests(RequestsKind);

enum RequestsKind {
    Yamux(mux::OpenRequests),
    Linkmux(watch::Sender<Pending>),
}

/// A new opener for a link of `kind` and its link side.
pub fn open_channel(kind: Kind) -> (Opener, Requests) {
    match kind {
        Kind::Yamux => {
            let (opener, requests) = mux::open_channel();
            (
                Opener(OpenerKind::Yamux(opener)),
                Requests(RequestsKind::Yamux(requests)),
            )
        }
        Kind::Linkmux => {
            let (tx, rx) = watch::channel(Pending::Waiting);
            (
                Opener(OpenerKind::Linkmux(rx)),
                Requests(RequestsKind::Linkmux(tx)),
            )
        }
    }
}

impl Requests {
    /// The multiplexer these requests are for.
    pub fn kind(&self) -> Kind {
        match self.0 {
            RequestsKind::Yamux(_) => Kind::Yamux,
            RequestsKind::Linkmux(_) => Kind::Linkmux,
        }
    }
}

/// A stream as its multiplexer hands it out, not counted yet.
pub enum RawStream {
    /// A yamux stream.
    Yamux(yamux::Stream),
    /// A linkmux stream.
    Linkmux(LinkStream),
}

impl RawStream {
    /// As a tokio byte stream, counted by `guard` while it lives.
    pub fn counted(self, guard: StreamGuard) -> Stream {
        let inner = match self {
            RawStream::Yamux(s) => Inner::Yamux(s.compat()),
            RawStream::Linkmux(s) => Inner::Linkmux(s),
        };
        Stream {
            inner,
            _guard: guard,
        }
    }
}

/// A stream of a link as a tokio byte stream, counted while it lives.
pub struct Stream {
    inner: Inner,
    _guard: StreamGuard,
}

enum Inner {
    Yamux(Compat<yamux::Stream>),
    Linkmux(LinkStream),
}

impl Stream {
    /// The linkmux stream, when the link runs linkmux.
    pub fn as_link_stream(&self) -> Option<&LinkStream> {
        match &self.inner {
            Inner::Linkmux(s) => Some(s),
            Inner::Yamux(_) => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Yamux(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Linkmux(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Yamux(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Linkmux(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Yamux(s) => Pin::new(s).poll_flush(cx),
            Inner::Linkmux(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Yamux(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Linkmux(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The control stream's heartbeats ([`mux::run_control`]) on a stream of either kind.
pub async fn run_control(stream: RawStream, cancel: CancellationToken) {
    match stream {
        RawStream::Yamux(s) => mux::run_control(s.compat(), cancel).await,
        RawStream::Linkmux(s) => mux::run_control(s, cancel).await,
    }
}

/// Drives a link (past its handshake) until it ends: `inbound` gets every stream the peer
/// opens and returns false to end the link. A linkmux link over plain TCP moves bodies
/// with `splice(2)`; any other socket (TLS) carries the same frames through buffers.
pub async fn drive(
    socket: Side,
    end: End,
    requests: Requests,
    mut inbound: impl FnMut(RawStream) -> bool,
    cancel: CancellationToken,
) -> LinkEnd {
    match requests.0 {
        RequestsKind::Yamux(requests) => {
            let mode = match end {
                End::Dmz => yamux::Mode::Client,
                End::Lan => yamux::Mode::Server,
            };
            mux::session(socket, mode, requests)
                .drive(move |s| inbound(RawStream::Yamux(s)), cancel)
                .await
        }
        RequestsKind::Linkmux(ready) => {
            let role = match end {
                End::Dmz => linkmux::Role::Dmz,
                End::Lan => linkmux::Role::Lan,
            };
            let (link, opener) = match socket {
                Side::Tcp(tcp) => linkmux::Link::tcp(tcp, role),
                Side::Other(conn) => linkmux::Link::other(conn, role),
            };
            // Openers waiting since the registration go ahead now; when the link ends,
            // `ready` is dropped and later opens fail at once (the opener itself then
            // reports the link's end).
            ready.send_replace(Pending::Ready(opener));
            link.drive(move |s| inbound(RawStream::Linkmux(s)), cancel)
                .await
        }
    }
}

#[cfg(test)]
#[path = "carrier_tests.rs"]
mod tests;
