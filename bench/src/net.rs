//! Sockets for the bench: listeners with a deep backlog, free ports, and the one way every
//! client reaches the sink: a [`Hop`] (connect here, then maybe ask a router for the route).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire;

/// Deadline of every blocking step of a client.
pub const STEP: Duration = Duration::from_secs(30);

/// A listening socket with a backlog of 4096, non-blocking, for tokio.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// A port that was free on 127.0.0.1 a moment ago, below the ephemeral range (20000..32000),
/// so that no outgoing connection can take it before the process that is to listen on it
/// binds it (and no connection of an earlier run has left it in TIME_WAIT).
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(127)) % 12000) as u16;
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port in 20000..32000"))
}

/// `127.0.0.<n>`.
pub fn loopback(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)), port)
}

/// How a client reaches one sink service over one path.
#[derive(Clone, Debug)]
pub struct Hop {
    /// Where to connect.
    pub connect: SocketAddr,
    /// A framed `NI_ROUTE` to send first; the answer must be `NI_PONG`.
    pub route: Option<Vec<u8>>,
}

impl Hop {
    /// Connects and, through a router, establishes the route (blocking).
    pub fn open(&self) -> std::io::Result<TcpStream> {
        let mut s = TcpStream::connect_timeout(&self.connect, STEP)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(STEP))?;
        s.set_write_timeout(Some(STEP))?;
        if let Some(route) = &self.route {
            s.write_all(route)?;
            let mut answer = [0u8; 12];
            s.read_exact(&mut answer)?;
            check_pong(&answer)?;
        }
        Ok(s)
    }

    /// The same, for tokio; `source` binds the client to a loopback address first.
    pub async fn open_async(
        &self,
        source: Option<IpAddr>,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(ip) = source {
            // Ports of earlier runs' connections may still be in TIME_WAIT.
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let mut s = tokio::time::timeout(STEP, socket.connect(self.connect))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        s.set_nodelay(true)?;
        if let Some(route) = &self.route {
            let handshake = async {
                s.write_all(route).await?;
                let mut answer = [0u8; 12];
                s.read_exact(&mut answer).await?;
                check_pong(&answer)
            };
            tokio::time::timeout(STEP, handshake)
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
        }
        Ok(s)
    }
}

/// `NI_PONG` in its frame, or an error naming what came instead.
pub fn check_pong(answer: &[u8; 12]) -> std::io::Result<()> {
    if answer[..] == wire::frame(wire::NI_PONG)[..] {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "route refused (answer starts {:?})",
            String::from_utf8_lossy(&answer[4..])
        )))
    }
}
