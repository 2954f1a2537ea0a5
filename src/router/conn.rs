//! The connections a router talks over: TCP from its listener, and other byte streams (a
//! reverse-invoke stream, a TLS session) that behave the same once open.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream a session can run over.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// A connection of any kind.
pub type BoxConn = Box<dyn Conn>;

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
