//! One accepted connection, from its first byte to its end: read the first message within
//! the `-W` deadline, tell what it is ([`classify`]), then dispatch on that (route, admin,
//! control messages before the route); every refusal goes through [`refuse`], and the
//! session returns how it ended ([`SessionEnd`]) for the metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::time::{timeout_at, Instant};

use super::admin;
use super::admission::ClientSlot;
use super::conn::{Conn, Side};
use super::connlog::Event;
use super::errors::RouteFailure;
use super::limits::PendingPermit;
use super::refusal::Refusal;
use super::routing;
use super::state::Shared;
use crate::metrics::SessionEnd;
use crate::ni::control::{self, opcode};
use crate::ni::frame::{self, FrameTooBig, MAX_FIRST_FRAME, NI_PING};
use crate::ni::rterr::{RtErr, RtErrError, RTERR_EYECATCHER};
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

/// What a connection's first message (or a control message before its route) is, from its
/// bytes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `NI_ROUTE`: a route request.
    Route,
    /// `ROUTER_ADM`: an admin request (`-l`, `-n`, `-s`, ...).
    Admin,
    /// `NI_PING`: a keepalive.
    Ping,
    /// `NI_RTERR` asking for the router's NI version.
    VersionRequest,
    /// `NI_RTERR` carrying SAP's own SNC handshake (this opcode).
    SapSnc(u8),
    /// `NI_RTERR` with an opcode a client does not send before its route.
    UnknownControl(u8),
    /// `NI_RTERR` that does not decode.
    BadControl(RtErrError),
    /// None of these.
    Garbage,
}

impl Kind {
    /// Control messages: a client may send a few before its route
    /// ([`MAX_CONTROL_MESSAGES`]).
    pub fn is_control(&self) -> bool {
        !matches!(self, Kind::Route | Kind::Admin | Kind::Garbage)
    }
}

/// Tells what a message received before the route is, by its eyecatcher and, for control
/// messages, its opcode.
pub fn classify(payload: &[u8]) -> Kind {
    if payload.starts_with(ROUTE_EYECATCHER) {
        Kind::Route
    } else if payload.starts_with(ADMIN_EYECATCHER) {
        Kind::Admin
    } else if payload == NI_PING {
        Kind::Ping
    } else if payload.starts_with(RTERR_EYECATCHER) {
        match RtErr::decode(payload) {
            Ok(message) => match message.opcode {
                opcode::VERSION_REQUEST => Kind::VersionRequest,
                opcode::SNC_REQUEST | opcode::SNC_ACK => Kind::SapSnc(message.opcode),
                other => Kind::UnknownControl(other),
            },
            Err(err) => Kind::BadControl(err),
        }
    } else {
        Kind::Garbage
    }
}

/// The one way a session refuses its client: count the refusal towards the source's
/// penalty when it is the client's doing (`penalty` names why), answer with the refusal
/// (unless `client` is `None`: a client that is never answered), and say how the session
/// ended.
///
/// Boxed: a refusal is a rare end, and its state (the failure, the record being written)
/// would otherwise size the task of every session, refused or not.
pub fn refuse<'a, C: Conn + ?Sized>(
    shared: &'a Shared,
    client: Option<&'a mut C>,
    peer: SocketAddr,
    refusal: Refusal,
    penalty: Option<&'static str>,
) -> Pin<Box<dyn Future<Output = SessionEnd> + Send + 'a>> {
    if let Some(why) = penalty {
        shared.penalise(peer.ip(), why);
    }
    Box::pin(async move {
        match (&refusal, client) {
            (Refusal::Failure(failure), Some(client)) => {
                send_failure(shared, client, failure).await
            }
            (Refusal::Forward(answer), Some(client)) => send_frame(client, answer).await,
            // A client that hears nothing of its refusal ends as if it had closed; a
            // downstream router's refusal is counted as what it is all the same.
            (Refusal::Failure(_), None) => return SessionEnd::Closed,
            (Refusal::Forward(_), None) => {}
        }
        refusal.end()
    })
}

/// Runs one connection to its end, with what is known of it before its first message;
/// returns how it ended.
pub async fn run_with(
    shared: Arc<Shared>,
    mut stream: Side,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    permit: ClientSlot,
    pre: PreRoute,
) -> SessionEnd {
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

    let end = if let Some(route) = shared.fixed_route() {
        // Port-forwarder: no first message to wait for; the fixed route stands in for it.
        let route = route.clone();
        routing::run_fixed_route(&shared, stream, peer, &client, &route).await
    } else {
        let deadline = pre.deadline;
        let mut buf = BytesMut::with_capacity(1024);
        let mut controls = 0;
        loop {
            let payload = match read_first_frame(&mut stream, &mut buf, deadline).await {
                FirstRead::Frame(payload) => payload,
                FirstRead::TooBig(too_big) => {
                    crate::gated!(shared.refusal_log(), info, id = client.id, %peer, length = too_big.length, "first message too big");
                    let failure = RouteFailure::too_big(&too_big);
                    let penalty = Some("first message too big");
                    break refuse(&shared, Some(&mut stream), peer, failure.into(), penalty).await;
                }
                FirstRead::Timeout => {
                    crate::gated!(shared.refusal_log(), info, id = client.id, %peer, "no route received in time");
                    let secs = fmt_secs(shared.config().timeout.as_secs_f64());
                    let failure = RouteFailure::no_route_in_time(&secs);
                    let penalty = Some("no route in time");
                    break refuse(&shared, Some(&mut stream), peer, failure.into(), penalty).await;
                }
                FirstRead::Closed => break SessionEnd::Closed,
            };
            let kind = classify(&payload);
            if kind.is_control() {
                controls += 1;
                if controls > MAX_CONTROL_MESSAGES {
                    let failure = RouteFailure::control_flood();
                    let penalty = Some("too many control messages");
                    break refuse(&shared, Some(&mut stream), peer, failure.into(), penalty).await;
                }
            }
            let failure = match kind {
                Kind::Route => {
                    // Hand over what followed the route and release the read buffer with it.
                    let leftover = std::mem::take(&mut buf).freeze();
                    let snc_name = pre.snc_name.as_deref();
                    break routing::run(
                        &shared, stream, peer, &client, payload, leftover, snc_name,
                    )
                    .await;
                }
                Kind::Admin => {
                    // Boxed: the admin exchange's state stays out of every routed session's task.
                    Box::pin(admin::run(&shared, &mut stream, peer, local, &payload)).await;
                    break SessionEnd::Admin;
                }
                // Keepalives before the route are ignored (NI_ROUT_IO semantics); they do not
                // extend the route deadline.
                Kind::Ping => continue,
                Kind::VersionRequest => {
                    send_frame(&mut stream, &control::version_response(NI_VERSION).encode()).await;
                    continue;
                }
                Kind::SapSnc(opcode) => {
                    tracing::info!(
                        opcode,
                        "SAP SNC handshake refused: this router speaks SNC as TLS"
                    );
                    RouteFailure::sap_snc()
                }
                Kind::UnknownControl(opcode) => RouteFailure::unknown_opcode(opcode),
                Kind::BadControl(err) => RouteFailure::bad_control(&err.to_string()),
                Kind::Garbage => {
                    if let Some(log) = shared.connlog() {
                        log.write(Event::InvalData, &handles, "route expected");
                    }
                    let failure = RouteFailure::route_expected();
                    let penalty = Some("not a route message");
                    break refuse(&shared, Some(&mut stream), peer, failure.into(), penalty).await;
                }
            };
            // A control message this router does not take ends the connection.
            break refuse(&shared, Some(&mut stream), peer, failure.into(), None).await;
        }
    };
    if let Some(log) = shared.connlog() {
        log.write(
            Event::Disconnect,
            &handles,
            &format!("host {}/{}", peer.ip(), peer.port()),
        );
    }
    drop(permit);
    end
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ni::route::RouteRequest;
    use crate::ni::rterr::rc;
    use tokio::io::DuplexStream;

    /// A router whose first refusal penalises (so a test sees whether one was counted).
    fn shared() -> Arc<Shared> {
        let config = super::super::RouterConfig {
            penalty: Some(super::super::penalty::PenaltyPolicy::parse("1/60").unwrap()),
            ..Default::default()
        };
        Shared::for_tests(config)
    }

    /// The payloads of the frames a client received.
    async fn received(mut far: DuplexStream) -> Vec<Bytes> {
        let mut bytes = Vec::new();
        far.read_to_end(&mut bytes).await.unwrap();
        let mut buf = BytesMut::from(&bytes[..]);
        let mut frames = Vec::new();
        while let Ok(Some(payload)) = frame::split_frame(&mut buf, 1 << 20) {
            frames.push(payload);
        }
        frames
    }

    #[tokio::test]
    async fn a_refusal_is_penalised_answered_and_the_end() {
        let shared = shared();
        let peer: SocketAddr = "192.0.2.9:1000".parse().unwrap();
        let (mut near, far) = tokio::io::duplex(64 * 1024);
        let failure = RouteFailure::route_expected();
        let penalty = Some("not a route message");
        let end = refuse(&shared, Some(&mut near), peer, failure.into(), penalty).await;
        assert_eq!(end, SessionEnd::Failed(rc::NIEROUT_INTERN));
        assert!(shared.turned_away(peer), "penalised");
        drop(near);
        let frames = received(far).await;
        assert_eq!(frames.len(), 1);
        let answer = RtErr::decode(&frames[0]).unwrap();
        assert_eq!(answer.return_code, rc::NIEROUT_INTERN);
    }

    #[tokio::test]
    async fn an_unanswered_refusal_ends_as_closed() {
        let shared = shared();
        let peer: SocketAddr = "192.0.2.10:1000".parse().unwrap();
        let failure = RouteFailure::table_full(1);
        let end = refuse::<DuplexStream>(&shared, None, peer, failure.into(), None).await;
        assert_eq!(end, SessionEnd::Closed);
        assert!(!shared.turned_away(peer), "no penalty asked for");
    }

    #[tokio::test]
    async fn a_downstream_refusal_goes_on_as_it_is() {
        let shared = shared();
        let peer: SocketAddr = "192.0.2.11:1000".parse().unwrap();
        let downstream = RtErr::error(40, rc::NIEROUT_PERM_DENIED, &Default::default()).encode();
        let forward = || Refusal::Forward(Bytes::from(downstream.clone()));
        // Not answered (a port-forwarded client), it still counts as what it was.
        let end = refuse::<DuplexStream>(&shared, None, peer, forward(), None).await;
        assert_eq!(end, SessionEnd::Failed(rc::NIEROUT_PERM_DENIED));
        let (mut near, far) = tokio::io::duplex(64 * 1024);
        let end = refuse(&shared, Some(&mut near), peer, forward(), None).await;
        assert_eq!(end, SessionEnd::Failed(rc::NIEROUT_PERM_DENIED));
        drop(near);
        assert_eq!(received(far).await, vec![Bytes::from(downstream)]);
    }

    /// An `NI_RTERR` header: NI version 40, `opcode`, rc 0, no text, then `trailer`.
    fn rterr(opcode: u8, trailer: &[u8]) -> Vec<u8> {
        let mut out = b"NI_RTERR\0".to_vec();
        out.extend_from_slice(&[40, opcode, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(trailer);
        out
    }

    #[test]
    fn a_route_request() {
        // Info version 2, NI 40, 2 entries, talk mode 0, 2 unused, rest 1, length 30,
        // offset 15, then `10.0.0.1 3299` and `10.0.0.2 3200` without passwords.
        let mut route = b"NI_ROUTE\0\x02\x28\x02\x00\x00\x00\x01".to_vec();
        route.extend_from_slice(&30u32.to_be_bytes());
        route.extend_from_slice(&15u32.to_be_bytes());
        route.extend_from_slice(b"10.0.0.1\x003299\x00\x0010.0.0.2\x003200\x00\x00");
        assert!(
            RouteRequest::decode(&route).is_ok(),
            "the bytes are a route"
        );
        assert_eq!(classify(&route), Kind::Route);
        // A route that does not validate is still a route: its refusal says why.
        assert_eq!(classify(b"NI_ROUTE\0\x02"), Kind::Route);
    }

    #[test]
    fn an_admin_request() {
        // Version 40, command 2 (info), as `saprouter -l` sends it.
        assert_eq!(classify(b"ROUTER_ADM\0\x28\x02\0"), Kind::Admin);
        assert_eq!(classify(b"ROUTER_ADM\0"), Kind::Admin);
    }

    #[test]
    fn a_keepalive() {
        assert_eq!(classify(b"NI_PING\0"), Kind::Ping);
        // Only the exact message is a keepalive.
        assert_eq!(classify(b"NI_PING\0\0"), Kind::Garbage);
        assert_eq!(classify(b"NI_PING"), Kind::Garbage);
    }

    #[test]
    fn a_version_request() {
        // pysap and `saprouter -l` send the trailer `*ERR`; a missing trailer is tolerated.
        assert_eq!(classify(&rterr(1, b"*ERR")), Kind::VersionRequest);
        assert_eq!(classify(&rterr(1, b"")), Kind::VersionRequest);
        assert_eq!(
            classify(&control::version_request(40).encode()),
            Kind::VersionRequest
        );
    }

    #[test]
    fn sap_snc_frames() {
        assert_eq!(classify(&rterr(70, b"\0\0\0\0SNCFRAME")), Kind::SapSnc(70));
        assert_eq!(classify(&rterr(71, b"\0\0\0\0")), Kind::SapSnc(71));
    }

    #[test]
    fn other_control_messages() {
        // A version response or error information is not something a client asks.
        assert_eq!(classify(&rterr(2, b"")), Kind::UnknownControl(2));
        assert_eq!(classify(&rterr(0, b"")), Kind::UnknownControl(0));
        assert_eq!(classify(&rterr(9, b"")), Kind::UnknownControl(9));
    }

    #[test]
    fn a_broken_control_message() {
        let truncated = b"NI_RTERR\0\x28\x01";
        assert!(matches!(classify(truncated), Kind::BadControl(_)));
        // A text length beyond the bytes present.
        let mut long = rterr(1, b"");
        long[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert!(matches!(classify(&long), Kind::BadControl(_)));
    }

    #[test]
    fn garbage() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n\r\n"), Kind::Garbage);
        assert_eq!(classify(b""), Kind::Garbage);
        assert_eq!(classify(b"NI_ROUT"), Kind::Garbage);
    }

    #[test]
    fn control_messages_count_towards_the_flood_limit() {
        let controls = [
            Kind::Ping,
            Kind::VersionRequest,
            Kind::SapSnc(70),
            Kind::UnknownControl(2),
            Kind::BadControl(RtErrError::NotRtErr),
        ];
        assert!(controls.iter().all(Kind::is_control));
        assert!(![Kind::Route, Kind::Admin, Kind::Garbage]
            .iter()
            .any(Kind::is_control));
    }
}
