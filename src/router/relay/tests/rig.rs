//! The rig of the relay's contract tests: the paths bytes can take, a relay running
//! between a client's and a server's loopback socket on one of them, and the programs'
//! reads and writes around it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::super::{run_with, Outcome, Pipes, Relay};
use crate::router::clients::{Interrupt, Traffic};
use crate::router::conn::{BoxConn, Side};

/// The ways bytes can go.
#[derive(Debug, Clone, Copy)]
pub(super) enum Path {
    /// Both ends other streams (TLS, reverse invoke): the copy relay.
    Copy,
    /// The client plain TCP, the server another stream (an SNC hop): the copy relay.
    Mixed,
    /// Both plain TCP: zero-copy, NI-aware towards an NI client.
    Splice,
    /// Both plain TCP, but no pipe to be had: the copy relay over the sockets from the start.
    NoPipe,
    /// Both plain TCP, pipes run out after a few chunks: the copy relay takes over midway.
    RunsDry,
    /// The client plain TCP, the server a linkmux stream (the DMZ router's side).
    LinkServer,
    /// The client a linkmux stream, the server plain TCP (the LAN router's side).
    LinkClient,
    /// [`Path::LinkServer`] with no pipe to be had: through the streams' buffers.
    LinkServerNoPipe,
    /// [`Path::LinkClient`] with no pipe to be had: through the streams' buffers.
    LinkClientNoPipe,
}

pub(super) const PATHS: [Path; 9] = [
    Path::Copy,
    Path::Mixed,
    Path::Splice,
    Path::NoPipe,
    Path::RunsDry,
    Path::LinkServer,
    Path::LinkClient,
    Path::LinkServerNoPipe,
    Path::LinkClientNoPipe,
];

/// One stream of a linkmux link over loopback TCP: the DMZ end's (opened) and the LAN
/// end's (accepted). The link runs until the test's runtime ends.
pub(super) async fn link_streams() -> (BoxConn, BoxConn) {
    use crate::ri::carrier::{drive, open_channel, End, Kind, RawStream};
    use crate::ri::mux::StreamCount;
    let (a, b) = connected().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (opener, requests) = open_channel(Kind::Linkmux);
    let (_lan_opener, lan_requests) = open_channel(Kind::Linkmux);
    let (tx, rx) = tokio::sync::oneshot::channel::<RawStream>();
    let mut tx = Some(tx);
    tokio::spawn(drive(
        Side::Tcp(a),
        End::Dmz,
        requests,
        |_| true,
        cancel.clone(),
    ));
    tokio::spawn(drive(
        Side::Tcp(b),
        End::Lan,
        lan_requests,
        move |s| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(s);
            }
            true
        },
        cancel,
    ));
    let count = StreamCount::default();
    let dmz = opener.open().await.unwrap().counted(count.guard());
    let lan = rx.await.unwrap().counted(count.guard());
    (Box::new(dmz), Box::new(lan))
}

/// Passes bytes between a stream and a socket both ways, half-closes included; a failure
/// on either drops both (a reset on the socket resets the stream).
pub(super) fn bridge(stream: BoxConn, tcp: TcpStream) {
    tokio::spawn(async move {
        let (mut stream, mut tcp) = (stream, tcp);
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
    });
}

/// The route's talk mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Raw,
    Ni,
}

/// The notice an NI client gets on interrupt (its content is the caller's business).
pub(super) fn notice(why: Interrupt) -> Vec<u8> {
    format!("NI_RTERR {}", why.return_code()).into_bytes()
}

/// A connected pair of loopback sockets.
pub(super) async fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

/// The client program's socket and the server program's socket.
pub(super) struct Ends {
    pub(super) client: TcpStream,
    pub(super) server: TcpStream,
}

/// The relay running between them, and its controls.
pub(super) struct Running {
    pub(super) interrupt: watch::Sender<Option<Interrupt>>,
    pub(super) traffic: Arc<Traffic>,
    pub(super) relay: JoinHandle<Outcome>,
}

pub(super) async fn rig(
    path: Path,
    mode: Mode,
    pending: (Vec<u8>, Vec<u8>),
    buffer: usize,
) -> (Ends, Running) {
    let (client, client_end) = connected().await;
    let (server_end, server) = connected().await;
    let (client_side, server_side) = match path {
        Path::Copy => (Side::stream(client_end), Side::stream(server_end)),
        Path::Mixed => (Side::Tcp(client_end), Side::stream(server_end)),
        Path::Splice | Path::NoPipe | Path::RunsDry => {
            (Side::Tcp(client_end), Side::Tcp(server_end))
        }
        Path::LinkServer | Path::LinkServerNoPipe => {
            let (dmz, lan) = link_streams().await;
            bridge(lan, server_end);
            (Side::Tcp(client_end), Side::Other(dmz))
        }
        Path::LinkClient | Path::LinkClientNoPipe => {
            let (dmz, lan) = link_streams().await;
            bridge(dmz, client_end);
            (Side::Other(lan), Side::Tcp(server_end))
        }
    };
    // Tests run on one thread: the link's tasks see the same pool as the relay.
    super::super::pipe::none_left(matches!(
        path,
        Path::LinkServerNoPipe | Path::LinkClientNoPipe
    ));
    let pipes = match path {
        Path::NoPipe => Pipes::RunsDry(0.into()),
        Path::RunsDry => Pipes::RunsDry(3.into()),
        _ => Pipes::Pool,
    };
    let (interrupt, interrupts) = watch::channel(None);
    let traffic = Arc::new(Traffic::default());
    let relay = Relay {
        ni_mode: mode == Mode::Ni,
        client_pending: pending.0.into(),
        server_pending: pending.1.into(),
        interrupts,
        traced: false,
        id: 1,
        traffic: Arc::clone(&traffic),
        buffer,
    };
    let relay =
        tokio::spawn(async move { run_with(client_side, server_side, relay, notice, pipes).await });
    let running = Running {
        interrupt,
        traffic,
        relay,
    };
    (Ends { client, server }, running)
}

/// Everything until EOF (or a reset), within a deadline.
pub(super) async fn read_all<R: AsyncRead + Unpin>(reader: &mut R) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(Duration::from_secs(10), read)
        .await
        .expect("the stream ends");
    got
}

/// Exactly `n` bytes, within a deadline.
pub(super) async fn read_n(reader: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    timeout(Duration::from_secs(10), reader.read_exact(&mut got))
        .await
        .expect("the bytes arrive")
        .expect("the stream stays open");
    got
}

/// Closes with a reset (RST) instead of a FIN.
pub(super) fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Both programs send their bytes and close, while both read until EOF. Returns what the
/// server and the client received.
pub(super) async fn exchange(ends: &mut Ends, up: &[u8], down: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut client_read, mut client_write) = ends.client.split();
    let (mut server_read, mut server_write) = ends.server.split();
    let (_, _, at_server, at_client) = tokio::join!(
        async {
            client_write.write_all(up).await.unwrap();
            client_write.shutdown().await.unwrap();
        },
        async {
            server_write.write_all(down).await.unwrap();
            server_write.shutdown().await.unwrap();
        },
        read_all(&mut server_read),
        read_all(&mut client_read),
    );
    (at_server, at_client)
}
