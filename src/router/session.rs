//! One accepted connection, from its first byte to its end: read the first message within
//! the `-W` deadline, then dispatch on its eyecatcher (route, admin, version request).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::time::{timeout_at, Instant};

use super::admin;
use super::admission::ClientSlot;
use super::conn::Conn;
use super::connlog::Event;
use super::errors::RouteFailure;
use super::limits::PendingPermit;
use super::routing;
use super::state::Shared;
use crate::ni::control::{self, opcode};
use crate::ni::frame::{self, FrameTooBig, MAX_FIRST_FRAME, NI_PING};
use crate::ni::rterr::{rc, RtErr, RTERR_EYECATCHER};
use crate::ni::{admin::ADMIN_EYECATCHER, route::ROUTE_EYECATCHER, NI_VERSION};

/// Control messages (version requests, keepalives) a client may send before its route;
/// more is a flood (hostile input H43, docs/hardening.md).
const MAX_CONTROL_MESSAGES: usize = 8;

/// How the first-message read ended.
enum FirstRead {
    /// A complete frame; `rest` holds whatever followed it in the same reads.
    Frame(Bytes),
    /// The header announced more than the first-message limit.
    TooBig(FrameTooBig),
    /// The deadline passed first.
    Timeout,
    /// The client closed (or reset) before a whole frame arrived.
    Closed,
}

/// Reads one frame of at most [`MAX_FIRST_FRAME`] bytes before `deadline`; bytes after it
/// stay in `buf`.
async fn read_first_frame<C: Conn>(
    stream: &mut C,
    buf: &mut BytesMut,
    deadline: Instant,
) -> FirstRead {
    loop {
        match frame::split_frame(buf, MAX_FIRST_FRAME) {
            Ok(Some(payload)) => return FirstRead::Frame(payload),
            Ok(None) => {}
            Err(too_big) => return FirstRead::TooBig(too_big),
        }
        buf.reserve(4096);
        match timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return FirstRead::Timeout,
            Ok(Ok(0)) | Ok(Err(_)) => return FirstRead::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one NI frame and ignores the outcome: the client may already be gone, and there is
/// nothing more to tell it.
pub async fn send_frame<C: Conn + ?Sized>(stream: &mut C, payload: &[u8]) {
    let bytes = frame::frame(payload);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.write_all(&bytes)).await;
}

/// Sends an error to the client (generic when errors are hidden).
pub async fn send_failure<C: Conn + ?Sized>(
    shared: &Shared,
    stream: &mut C,
    failure: &RouteFailure,
) {
    crate::metrics::failure_sent(failure.rc);
    let payload = shared.errors().message(failure, shared.hide_errors());
    send_frame(stream, &payload).await;
}

/// After a refusal: stop sending, then read and discard what the peer still sends (at most
/// a second and 64 KiB), so that closing does not reset the connection before the peer has
/// read the reply.
pub async fn linger<C: Conn + ?Sized>(stream: &mut C) {
    let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

/// How long [`linger`] waits at most for each of its steps.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What is known of a connection before its first message.
pub struct PreRoute {
    /// Absolute deadline for the route (`-W` from the accept, TLS handshake included).
    pub deadline: Instant,
    /// The peer's authenticated SNC name (`p:<DN>`) when it came over TLS.
    pub snc_name: Option<String>,
    /// The connection's place in the route phase (see [`super::limits`]), given back when
    /// the route stands or the session ends.
    pub pending: Option<PendingPermit>,
}

/// Runs one connection to its end, with what is known of it before its first message.
pub async fn run_with<C: Conn>(
    shared: Arc<Shared>,
    mut stream: C,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    permit: ClientSlot,
    pre: PreRoute,
) {
    let client = shared.clients().register(peer);
    if let Some(pending) = pre.pending {
        client.hold_pending(pending);
    }
    if shared.peer_traced(peer.ip()) {
        shared.clients().set_traced(client.id, true);
    }
    let handles = format!("C{}/-", client.id);
    if let Some(log) = shared.connlog() {
        // SAP's log names the peer unless -D; the lookup is bounded so a slow DNS server
        // costs at most a second, and only when a connection log is kept.
        let name = if shared.config().no_dns {
            None
        } else {
            reverse_dns(peer.ip()).await
        };
        let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
        log.write(
            Event::ConnectFrom,
            &handles,
            &format!("host {}/{}{name}", peer.ip(), peer.port()),
        );
    }
    tracing::debug!(id = client.id, %peer, "connection accepted");

    if let Some(route) = shared.fixed_route() {
        // Port-forwarder: no first message to wait for; the fixed route stands in for it.
        let route = route.clone();
        routing::run_fixed_route(&shared, stream, peer, &client, &route).await;
        if let Some(log) = shared.connlog() {
            log.write(
                Event::Disconnect,
                &handles,
                &format!("host {}/{}", peer.ip(), peer.port()),
            );
        }
        drop(permit);
        return;
    }

    let deadline = pre.deadline;
    let mut buf = BytesMut::with_capacity(1024);
    let mut controls = 0;
    loop {
        let payload = match read_first_frame(&mut stream, &mut buf, deadline).await {
            FirstRead::Frame(payload) => payload,
            FirstRead::TooBig(too_big) => {
                crate::gated!(shared.refusal_log(), info, id = client.id, %peer, length = too_big.length, "first message too big");
                shared.penalise(peer.ip(), "first message too big");
                let failure = RouteFailure::new(
                    rc::NIEROUT_INTERN,
                    "Network packet too big",
                    format!("NiBufIIn: {too_big}"),
                    "router/session.rs",
                    line!(),
                );
                send_failure(&shared, &mut stream, &failure).await;
                break;
            }
            FirstRead::Timeout => {
                crate::gated!(shared.refusal_log(), info, id = client.id, %peer, "no route received in time");
                shared.penalise(peer.ip(), "no route in time");
                let secs = shared.config().timeout.as_secs_f64();
                let failure = RouteFailure::new(
                    rc::NIETIMEOUT,
                    "connection timed out",
                    format!(
                        "RTPENDLIST::timeoutPend: no route received within {}s (CONNECTED)",
                        fmt_secs(secs)
                    ),
                    "router/session.rs",
                    line!(),
                );
                send_failure(&shared, &mut stream, &failure).await;
                break;
            }
            FirstRead::Closed => break,
        };

        if payload.starts_with(ROUTE_EYECATCHER) {
            // Hand over what followed the route and release the read buffer with it.
            let leftover = std::mem::take(&mut buf).freeze();
            let snc_name = pre.snc_name.as_deref();
            routing::run(&shared, stream, peer, &client, payload, leftover, snc_name).await;
            break;
        } else if payload.starts_with(ADMIN_EYECATCHER) {
            // Boxed: the admin exchange's state stays out of every routed session's task.
            Box::pin(admin::run(&shared, &mut stream, peer, local, &payload)).await;
            break;
        } else if payload.starts_with(RTERR_EYECATCHER) || payload.as_ref() == NI_PING {
            controls += 1;
            if controls > MAX_CONTROL_MESSAGES {
                shared.penalise(peer.ip(), "too many control messages");
                let failure = RouteFailure::new(
                    rc::NIEROUT_INTERN,
                    "internal error",
                    "NiRClientHandle: too many control messages before the route",
                    "router/session.rs",
                    line!(),
                );
                send_failure(&shared, &mut stream, &failure).await;
                break;
            }
            if payload.as_ref() == NI_PING {
                // Keepalives before the route are ignored (NI_ROUT_IO semantics); they do
                // not extend the route deadline.
                continue;
            }
            if !answer_control(&shared, &mut stream, &payload).await {
                break;
            }
        } else {
            if let Some(log) = shared.connlog() {
                log.write(Event::InvalData, &handles, "route expected");
            }
            shared.penalise(peer.ip(), "not a route message");
            let failure = RouteFailure::new(
                rc::NIEROUT_INTERN,
                "internal error",
                "NiRClientHandle: route expected",
                "router/session.rs",
                line!(),
            );
            send_failure(&shared, &mut stream, &failure).await;
            break;
        }
    }
    if let Some(log) = shared.connlog() {
        log.write(
            Event::Disconnect,
            &handles,
            &format!("host {}/{}", peer.ip(), peer.port()),
        );
    }
    drop(permit);
}

/// Answers a control message received before the route. Returns true when the client may
/// go on (a version request), false when the connection ends.
async fn answer_control<C: Conn>(shared: &Shared, stream: &mut C, payload: &[u8]) -> bool {
    let message = match RtErr::decode(payload) {
        Ok(message) => message,
        Err(err) => {
            let failure = RouteFailure::new(
                rc::NIEROUT_INTERN,
                "internal error",
                format!("NiBufIProcMsg: {err}"),
                "router/session.rs",
                line!(),
            );
            send_failure(shared, stream, &failure).await;
            return false;
        }
    };
    match message.opcode {
        opcode::VERSION_REQUEST => {
            send_frame(stream, &control::version_response(NI_VERSION).encode()).await;
            true
        }
        opcode::SNC_REQUEST | opcode::SNC_ACK => {
            tracing::info!(
                opcode = message.opcode,
                "SAP SNC handshake refused: this router speaks SNC as TLS"
            );
            let failure = RouteFailure::new(
                rc::NIEROUT_SNC_FAILURE,
                "SNC not supported",
                "SAP SNC frames are not supported: this router speaks SNC as TLS 1.3 with X.509 certificates (p:<DN> names); connect with TLS and a client certificate",
                "router/session.rs",
                line!(),
            );
            send_failure(shared, stream, &failure).await;
            false
        }
        other => {
            let failure = RouteFailure::new(
                rc::NIEVERSION,
                "invalid client version",
                format!("NiBufIProcMsg: unknown opcode {other} received"),
                "router/session.rs",
                line!(),
            );
            send_failure(shared, stream, &failure).await;
            false
        }
    }
}

/// Seconds as SAP prints them in details: `5` for whole seconds, `2.5` otherwise.
pub fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs:.1}")
    }
}

/// The peer's host name by reverse DNS, within one second; `None` on any failure.
async fn reverse_dns(ip: std::net::IpAddr) -> Option<String> {
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip).ok());
    match tokio::time::timeout(std::time::Duration::from_secs(1), lookup).await {
        Ok(Ok(Some(name))) if name != ip.to_string() => Some(name),
        _ => None,
    }
}
