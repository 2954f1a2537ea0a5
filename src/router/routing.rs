//! A route request, from validation to the relay: resolve the next hop once, ask the table,
//! connect, hand the route on to a further router if one follows, answer `NI_PONG`, relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::conn::Conn;
use super::splice::{self, Side};
use tokio::time::Instant;

use super::clients::{ClientHandle, Partner};
use super::connlog::Event;
use super::errors::{RouteFailure, INVALID_ROUTE};
use super::nexthop::{connect, hand_on, open_registered, resolve_host, Refusal};
use super::relay::Relay;
use super::selfaddr;
use super::session::{send_failure, send_frame};
use super::state::Shared;
use crate::ni::frame::{self, NI_PONG};
use crate::ni::route::{talk_mode, RouteError, RouteHop, RouteRequest};
use crate::ni::rterr::rc;
use crate::routtab::{Decision, DenyReason, RouteQuery};

const MODULE: &str = "router/routing.rs";

/// Handles one `NI_ROUTE` message; `leftover` are client bytes that arrived behind it.
pub async fn run<C: Conn>(
    shared: &Arc<Shared>,
    client: C,
    peer: SocketAddr,
    handle: &ClientHandle,
    payload: Bytes,
    leftover: Bytes,
    snc_name: Option<&str>,
) {
    let origin = Origin::Ni { snc_name };
    route_and_relay(shared, client, peer, handle, payload, leftover, origin).await;
}

/// SAP's port-forwarder (reverse-invoke `route = ...`): the connection sent no route of
/// its own; `route` (talk mode raw, first hop this router) is taken as if it had, with the
/// client's address as the source the table sees. The client speaks some other protocol
/// (HTTP, DIAG), so it gets neither `NI_PONG` nor an `NI_RTERR`: a refused route closes it.
pub async fn run_fixed_route<C: Conn>(
    shared: &Arc<Shared>,
    client: C,
    peer: SocketAddr,
    handle: &ClientHandle,
    route: &RouteRequest,
) {
    let payload = Bytes::from(route.encode());
    route_and_relay(
        shared,
        client,
        peer,
        handle,
        payload,
        Bytes::new(),
        Origin::Forwarded,
    )
    .await;
}

/// Who sent a route: an NI client, answered with `NI_PONG` or the refusal and maybe
/// authenticated by TLS (`snc_name`), or a port-forwarded raw client, never answered.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Ni { snc_name: Option<&'a str> },
    Forwarded,
}

/// Establishes the route and relays; the client hears `NI_PONG` or the refusal (an NI
/// client) or nothing (a port-forwarded raw client).
async fn route_and_relay<C: Conn>(
    shared: &Arc<Shared>,
    mut client: C,
    peer: SocketAddr,
    handle: &ClientHandle,
    payload: Bytes,
    leftover: Bytes,
    origin: Origin<'_>,
) {
    let timer = crate::metrics::route_timer();
    let (answer, snc_name) = match origin {
        Origin::Ni { snc_name } => (true, snc_name),
        Origin::Forwarded => (false, None),
    };
    // Boxed: set-up state (name lookup, connect, TLS handshake, the next router's answer)
    // is freed once the route stands instead of sizing the task of every session.
    let established = Box::pin(establish(shared, peer, handle, &payload, snc_name)).await;
    // The route message shares its allocation with the first read; an idle session must
    // not keep it.
    drop(payload);
    match established {
        Ok(established) => {
            let Established {
                server,
                server_ip,
                server_leftover,
                route,
                partner,
                _slot,
            } = established;
            if answer && client.write_all(&frame::frame(NI_PONG)).await.is_err() {
                return;
            }
            crate::metrics::route_established(timer);
            let handles = format!("C{}/{}", handle.id, partner.handle);
            if let Some(log) = shared.connlog() {
                let native = if route.talk_mode == talk_mode::NI_RAW_IO {
                    ", *** NATIVE ROUTING ***"
                } else {
                    ""
                };
                log.write(
                    Event::ConnectTo,
                    &format!("S{}/{}", handle.id, partner.handle),
                    &format!(
                        "host {}/{} ({}){native}",
                        server_ip,
                        route.next_hop().service,
                        route.next_hop().host
                    ),
                );
            }
            handle.set_partner(partner);
            tracing::info!(id = handle.id, %peer, next = ?route.next_hop().host, service = ?route.next_hop().service, talk_mode = route.talk_mode, "route established");
            let relay = Relay {
                ni_mode: route.talk_mode != talk_mode::NI_RAW_IO,
                client_pending: leftover,
                server_pending: server_leftover,
                interrupts: handle.interrupts(),
                traced: handle.traced(),
                traffic: handle.traffic(),
                id: handle.id,
                buffer: shared.config().relay_buffer(),
            };
            let shared_for_errors = Arc::clone(shared);
            // Boxed for the same reason as the session (see inbound.rs).
            let outcome = Box::pin(splice::relay(Side::of(client), server, relay, move |why| {
                let failure = RouteFailure::new(
                    why.return_code(),
                    super::errors::standard_text(why.return_code()),
                    format!(
                        "NiRClientHandle: {}",
                        super::errors::standard_text(why.return_code())
                    ),
                    MODULE,
                    line!(),
                );
                shared_for_errors.errors().message(&failure, false)
            }))
            .await;
            crate::metrics::route_closed(&outcome);
            tracing::info!(id = handle.id, to_server = outcome.to_server, to_client = outcome.to_client, interrupted = ?outcome.interrupted, "route closed");
            if let Some(log) = shared.connlog() {
                log.write(
                    Event::Disconnect,
                    &handles,
                    &format!("host {}/{}", peer.ip(), peer.port()),
                );
            }
        }
        Err(Refusal::Failure(failure)) => {
            crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, rc = failure.rc, error = ?failure.error, detail = ?failure.detail, "route refused");
            if caused_by_client(failure.rc) {
                shared.penalise(peer.ip(), "route refused");
            }
            if answer {
                send_failure(shared, &mut client, &failure).await;
            }
        }
        Err(Refusal::Forward(refusal)) => {
            // A router further down refused: its NI_RTERR goes to the client as it is.
            crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, "downstream router refused the route");
            crate::metrics::downstream_refused(&refusal);
            if answer {
                send_frame(&mut client, &refusal).await;
            }
        }
    }
}

/// Refusals that the route itself earns (what the table denies, a talk mode it does not
/// allow, a host or service that does not exist): they count towards a per-source penalty,
/// as invalid routes do (counted where they are decoded). A partner that cannot be reached
/// or a full table is not the client's doing.
fn caused_by_client(code: i32) -> bool {
    matches!(
        code,
        rc::NIEROUT_PERM_DENIED
            | rc::NIEROUT_MODE_DENIED
            | rc::NIEROUT_HOST_UNKNOWN
            | rc::NIEROUT_SERV_UNKNOWN
    )
}

/// A route that stands: the connection to the next hop and what arrived on it already.
struct Established {
    server: Side,
    server_ip: IpAddr,
    server_leftover: Bytes,
    route: RouteRequest,
    partner: Partner,
    _slot: super::admission::ClientSlot,
}

async fn establish(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    handle: &ClientHandle,
    payload: &[u8],
    snc_name: Option<&str>,
) -> Result<Established, Refusal> {
    let route = RouteRequest::decode(payload).map_err(|err| {
        shared.penalise(peer.ip(), "invalid route");
        invalid_route(err)
    })?;
    let next = route.next_hop().clone();
    let timeout = shared.config().timeout;

    // Resolve once; the address checked is the address connected to (no DNS rebinding).
    // SAP's order: the host first, then the service (an empty or unknown host is -90
    // whatever the service).
    let port = shared.services().resolve(&next.service);
    // A next hop that a LAN router registered over reverse invoke is reached through its
    // link, not through DNS and TCP.
    let registered = port.and_then(|port| {
        shared
            .registered_hops()
            .and_then(|hops| hops.lookup(&next.host, port).map(|ip| (hops, ip)))
    });
    let ip = match &registered {
        Some((_, ip)) => *ip,
        None if next.host.is_empty() => return Err(empty_host().into()),
        None => resolve_host(&next.host, Instant::now() + timeout).await?,
    };
    let port = port.ok_or_else(|| {
        RouteFailure::new(
            rc::NIEROUT_SERV_UNKNOWN,
            format!("service '{}' unknown", next.service),
            format!("NiISrvToNo: service '{}' unknown", next.service),
            MODULE,
            line!(),
        )
        .with_syscall_text("getservbyname")
    })?;
    let source = selfaddr::canonical(peer.ip());

    if selfaddr::is_own_listener(ip, port, &shared.own_ports()) {
        crate::gated!(shared.refusal_log(), warn, id = handle.id, %peer, host = ?next.host, port, "route to the router's own port refused");
        crate::metrics::route_denied_own_port();
        return Err(denied(shared, peer, &next, handle, "route to the router itself").into());
    }

    if registered.is_none() && shared.exclusive_ri() {
        crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, host = ?next.host, port, "route refused: exclusive reverse invoke");
        return Err(exclusive_refusal(shared, peer, &next, handle, ip, port).into());
    }

    let passwords: Vec<&str> = [route.own_hop().password.as_str(), next.password.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let routtab = shared.routtab();
    super::snc::check_source(&routtab, peer, snc_name)?;
    let query = RouteQuery {
        source,
        snc_name,
        destination: ip,
        port,
        passwords: &passwords,
        raw: route.talk_mode == talk_mode::NI_RAW_IO,
        routers_before: route.routers_before(),
        routers_after: route.routers_after(),
    };
    match routtab.decide(&query) {
        Decision::Permit { line } => {
            tracing::debug!(id = handle.id, line, "route permitted");
        }
        Decision::Deny { line, reason } => {
            crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, snc_name = snc_name.unwrap_or("-"), ?line, ?reason, host = ?next.host, service = ?next.service, "route permission denied");
            crate::metrics::route_denied(line);
            return Err(denied(shared, peer, &next, handle, deny_text(reason)).into());
        }
    }

    // The outbound connection takes a second client-table slot.
    let slot = shared.admission().take_client_slot().ok_or_else(|| {
        RouteFailure::new(
            rc::NIEROUT_OVERFLOW,
            "max no. of clients reached",
            format!(
                "NiRClientHandle: client table full ({} clients)",
                shared.config().max_clients
            ),
            MODULE,
            line!(),
        )
    })?;
    let target = SocketAddr::new(ip, port);
    let kt = routtab.snc_target(ip, port);
    let link_name = registered
        .as_ref()
        .map(|(hops, _)| hops.peer_snc_name(ip, port));
    super::snc::check_hop(shared, kt, link_name, target)?;
    let mut server = match &registered {
        Some((hops, _)) => Side::Other(
            open_registered(
                hops.as_ref(),
                &route,
                &next,
                ip,
                port,
                Instant::now() + timeout,
            )
            .await?,
        ),
        None => {
            let deadline = Instant::now() + timeout;
            let tcp = connect(shared, target, &next, deadline, timeout).await?;
            // A plain TCP hop keeps its type: the relay moves its bytes zero-copy.
            match kt {
                None => Side::Tcp(tcp),
                Some(_) => Side::Other(
                    super::snc::secure_hop(shared, tcp, target, &next, kt, deadline).await?,
                ),
            }
        }
    };
    let partner_handle = shared.clients().next_handle();

    let mut server_leftover = Bytes::new();
    if let Some(onward) = route.advanced() {
        let deadline = Instant::now() + timeout;
        server_leftover = match &mut server {
            Side::Tcp(tcp) => hand_on(tcp, &onward, &next, deadline, timeout).await?,
            Side::Other(conn) => hand_on(conn, &onward, &next, deadline, timeout).await?,
        };
    }
    let partner = Partner {
        host: next.host.clone(),
        service: next.service.clone(),
        handle: partner_handle,
    };
    Ok(Established {
        server,
        server_ip: ip,
        server_leftover,
        route,
        partner,
        _slot: slot,
    })
}

/// The failure for a route message that does not validate.
fn invalid_route(err: RouteError) -> RouteFailure {
    let code = err.return_code();
    let (error, detail) = match &err {
        RouteError::NiVersion(v) => (
            "invalid client version".to_string(),
            format!("NiRExRouteCon: version {v} too old"),
        ),
        RouteError::TalkMode(_) => (
            "Talkmode not allowed".to_string(),
            format!("NiRRouteRepl: {err}"),
        ),
        _ => (
            "internal error".to_string(),
            format!("{INVALID_ROUTE}{err})"),
        ),
    };
    RouteFailure::new(code, error, detail, MODULE, line!())
}

/// An empty host name: SAP's routers of NI version 40 name the lookup function where the
/// host belongs (`hostname 'NiHLGetNodeAddr' unknown`), and clients and scanners expect
/// exactly that text.
fn empty_host() -> RouteFailure {
    RouteFailure::new(
        rc::NIEROUT_HOST_UNKNOWN,
        "hostname 'NiHLGetNodeAddr' unknown",
        "NiHLGetNodeAddr: hostname empty",
        MODULE,
        line!(),
    )
}

fn deny_text(reason: DenyReason) -> &'static str {
    reason.log_text()
}

/// `exclusive = yes` on a DMZ router: only registered LAN routers are next hops.
fn exclusive_refusal(
    shared: &Shared,
    peer: SocketAddr,
    next: &RouteHop,
    handle: &ClientHandle,
    ip: IpAddr,
    port: u16,
) -> RouteFailure {
    let mut failure = denied(shared, peer, next, handle, "exclusive reverse invoke");
    failure.line = line!();
    failure.detail = format!(
        "NiRRouteCheck: exclusive reverse invoke refused the route: {ip}:{port} is not a registered server (exclusive = yes)"
    );
    failure
}

fn denied(
    shared: &Shared,
    peer: SocketAddr,
    next: &RouteHop,
    handle: &ClientHandle,
    why: &str,
) -> RouteFailure {
    let source = selfaddr::canonical(peer.ip());
    if let Some(log) = shared.connlog() {
        log.write(
            Event::PermDenied,
            &format!("C{}/-", handle.id),
            &format!("host {source} to {}/{} ({why})", next.host, next.service),
        );
    }
    RouteFailure::new(
        rc::NIEROUT_PERM_DENIED,
        format!(
            "{}: route permission denied ({source} to {}, {})",
            shared.errors().host,
            next.host,
            next.service
        ),
        format!(
            "NiRRouteCheck: route permission denied ({source} to {}, {})",
            next.host, next.service
        ),
        MODULE,
        line!(),
    )
}
