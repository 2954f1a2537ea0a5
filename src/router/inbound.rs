//! An accepted TCP connection before its session starts: a first byte 0x16 (a TLS
//! handshake record) means SNC as TLS, handshaken here within the `-W` deadline; the
//! session then runs over the TLS stream with the peer's authenticated SNC name. Anything
//! else goes to the session as it is. A failed handshake closes the connection: there is
//! no fallback to plaintext.
//!
//! A connection from a `--proxy-from` balancer first has its PROXY protocol header read
//! (see [`super::proxy`]); the client it names is the peer from then on, and the TLS
//! handshake, if any, follows the header.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::admission::ClientSlot;
use super::conn::Side;
use super::limits::PendingPermit;
use super::session::{self, PreRoute};
use super::state::Shared;
use crate::metrics::SessionEnd;

/// Content type of a TLS handshake record, the first byte of every ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// Runs one accepted connection to its end and returns how it ended. `permit` is its client-table slot; `pending`
/// its place in the route phase, `None` for a balancer's connection (the place is taken
/// for the client its header names).
pub async fn run(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    permit: ClientSlot,
    pending: Option<PendingPermit>,
) -> SessionEnd {
    // One deadline for the whole phase before the route: PROXY header, handshake and first
    // message.
    let deadline = Instant::now() + shared.config().timeout;
    let (peer, pending) = match pending {
        Some(pending) => (peer, pending),
        // Boxed: the header read's state stays out of the tasks of direct connections.
        None => match Box::pin(super::proxy::admit(&shared, &mut stream, peer, deadline)).await {
            Ok(client) => client,
            Err(end) => return end,
        },
    };
    // Port-forwarder: the client speaks its own protocol (HTTPS starts with 0x16 too).
    let snc = match shared.fixed_route() {
        Some(_) => None,
        None => tls_wanted(&shared, &stream, peer, deadline).await,
    };
    // Both sessions are boxed: nested async functions store what they pass down more than
    // once, so a task that holds the session inline is several times its size.
    match snc {
        None => {
            let pre = PreRoute {
                deadline,
                snc_name: None,
                pending: Some(pending),
            };
            // Plain TCP: the relay may move its bytes zero-copy.
            let stream = Side::Tcp(stream);
            Box::pin(session::run_with(shared, stream, peer, local, permit, pre)).await
        }
        Some(snc) => {
            Box::pin(tls_session(
                shared, stream, peer, local, permit, pending, snc, deadline,
            ))
            .await
        }
    }
}

/// The router's SNC identity when the connection starts with a TLS handshake and SNC is on.
async fn tls_wanted(
    shared: &Shared,
    stream: &TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<crate::tls::SncTls> {
    let mut first = [0u8; 1];
    let peeked = timeout_at(deadline, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) || first[0] != TLS_HANDSHAKE {
        return None;
    }
    if shared.config().snc.is_none() {
        crate::gated!(shared.refusal_log(), info, %peer, "TLS handshake on a router without -K (SNC off): treated as a plain NI message");
    }
    shared.config().snc.clone()
}

/// Handshakes TLS and runs the session over it.
#[allow(clippy::too_many_arguments)]
async fn tls_session(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    permit: ClientSlot,
    pending: PendingPermit,
    snc: crate::tls::SncTls,
    deadline: Instant,
) -> SessionEnd {
    match snc.accept(stream, deadline).await {
        Ok((tls, name)) => {
            tracing::info!(%peer, snc_name = %name, "TLS peer authenticated");
            let pre = PreRoute {
                deadline,
                snc_name: Some(name),
                pending: Some(pending),
            };
            let tls = Side::stream(tls);
            session::run_with(shared, tls, peer, local, permit, pre).await
        }
        Err(why) => {
            crate::gated!(shared.refusal_log(), warn, %peer, %why, "TLS handshake failed; connection closed");
            shared.penalise(peer.ip(), "TLS handshake failed");
            drop(permit);
            SessionEnd::Closed
        }
    }
}
