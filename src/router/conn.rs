//! The connections a router talks over: TCP from its listener, and other byte streams (a
//! reverse-invoke stream, a TLS session) that behave the same once open.
//!
//! Where a connection is accepted or connected, its kind is known, and it is kept in a
//! [`Side`]: plain TCP, which the relay can move zero-copy, or any other stream.

use std::future::Future;
use std::io;
use std::io::IoSlice;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Any bidirectional byte stream a session can run over.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The stream itself, so the relay can recognise one it moves zero-copy (a
    /// reverse-invoke stream on a plain TCP link). Call it on the boxed value
    /// (`(*conn).as_any()`): a `BoxConn` is a `Conn` too, and answers as the box.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A connection of any kind.
pub type BoxConn = Box<dyn Conn>;

/// One end of a session or route, as the router holds it. The kind is decided where the
/// connection is made (accepted on the listener, TLS handshaken, connected to a next hop,
/// opened over a reverse-invoke link) and decides how the relay moves its bytes.
pub enum Side {
    /// A plain TCP connection, bytes on the wire as the peer sends them: the relay may move
    /// them socket to socket in the kernel (Linux `splice(2)`).
    Tcp(TcpStream),
    /// Any other byte stream (a TLS session, a reverse-invoke stream): the bytes the peer
    /// means are not the bytes on a socket, so the relay copies them through user space.
    Other(BoxConn),
}

impl Side {
    /// Any stream other than plain TCP. (A plain `TcpStream` given here is relayed by copy.)
    pub fn stream(conn: impl Conn) -> Self {
        Side::Other(Box::new(conn))
    }
}

impl AsyncRead for Side {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Side::Other(conn) => Pin::new(conn).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Side {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Side::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Side::Other(conn) => Pin::new(conn).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Side::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Side::Other(conn) => Pin::new(conn).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Side::Tcp(tcp) => tcp.is_write_vectored(),
            Side::Other(conn) => conn.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Side::Other(conn) => Pin::new(conn).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Side::Other(conn) => Pin::new(conn).poll_shutdown(cx),
        }
    }
}

/// A boxed future, for the object-safe traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Next hops that are reached over registered reverse-invoke links instead of TCP.
///
/// The DMZ router (reverse-invoke client mode) puts one of these into its shared state; the
/// routing code asks it before resolving a next hop through DNS.
pub trait RegisteredHops: Send + Sync {
    /// The registered address matching a route's next hop (host as written in the route,
    /// resolved port), if a LAN router registered it.
    fn lookup(&self, host: &str, port: u16) -> Option<IpAddr>;

    /// The authenticated SNC name of the LAN router owning `addr:port`, when its links are
    /// TLS (`-K`); `None` for plain links.
    fn peer_snc_name(&self, _addr: IpAddr, _port: u16) -> Option<String> {
        None
    }

    /// Opens a new stream to the registration owning `addr:port`.
    fn open(&self, addr: IpAddr, port: u16) -> BoxFuture<'_, io::Result<BoxConn>>;
}
