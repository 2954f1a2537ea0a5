//! A route request, from validation to the relay: resolve the next hop once, decide
//! everything that needs no I/O at once ([`plan`]: own port, exclusive reverse invoke, SNC
//! source, the table, the client-table slot, the `KT` line for the hop), connect, hand the
//! route on to a further router if one follows, answer `NI_PONG`, relay.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::conn::Side;
use tokio::time::Instant;

use super::clients::{ClientHandle, Partner};
use super::connlog::Event;
use super::errors::RouteFailure;
use super::nexthop::{connect, hand_on, open_registered, resolve_host};
use super::plan::{plan, Denial, Facts, Plan, Refused};
use super::refusal::Refusal;
use super::relay::{self, Relay};
use super::session::refuse;
use super::state::Shared;
use crate::metrics::SessionEnd;
use crate::ni::frame::{self, NI_PONG};
use crate::ni::route::{talk_mode, RouteRequest};
use crate::ni::rterr::rc;

const MODULE: &str = "router/routing.rs";

/// Handles one `NI_ROUTE` message; `leftover` are client bytes that arrived behind it.
///
/// Plain functions returning [`route_and_relay`]'s future, here and in [`run_fixed_route`]:
/// an `async fn` wrapper would keep a second copy of the arguments in every session's task.
pub fn run<'a>(
    shared: &'a Arc<Shared>,
    client: Side,
    peer: SocketAddr,
    handle: &'a ClientHandle,
    payload: Bytes,
    leftover: Bytes,
    snc_name: Option<&'a str>,
) -> impl Future<Output = SessionEnd> + 'a {
    let origin = Origin::Ni { snc_name };
    route_and_relay(shared, client, peer, handle, payload, leftover, origin)
}

/// SAP's port-forwarder (reverse-invoke `route = ...`): the connection sent no route of
/// its own; `route` (talk mode raw, first hop this router) is taken as if it had, with the
/// client's address as the source the table sees. The client speaks some other protocol
/// (HTTP, DIAG), so it gets neither `NI_PONG` nor an `NI_RTERR`: a refused route closes it.
pub fn run_fixed_route<'a>(
    shared: &'a Arc<Shared>,
    client: Side,
    peer: SocketAddr,
    handle: &'a ClientHandle,
    route: &RouteRequest,
) -> impl Future<Output = SessionEnd> + 'a {
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
}

/// Who sent a route: an NI client, answered with `NI_PONG` or the refusal and maybe
/// authenticated by TLS (`snc_name`), or a port-forwarded raw client, never answered.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Ni { snc_name: Option<&'a str> },
    Forwarded,
}

/// Establishes the route and relays; the client hears `NI_PONG` or the refusal (an NI
/// client) or nothing (a port-forwarded raw client). Returns how the session ended.
async fn route_and_relay(
    shared: &Arc<Shared>,
    mut client: Side,
    peer: SocketAddr,
    handle: &ClientHandle,
    payload: Bytes,
    leftover: Bytes,
    origin: Origin<'_>,
) -> SessionEnd {
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
                return SessionEnd::Closed;
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
            let outcome = Box::pin(relay::run(client, server, relay, move |why| {
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
            SessionEnd::Routed
        }
        Err(refusal) => {
            let penalty = match &refusal {
                Refusal::Failure(failure) => {
                    crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, rc = failure.rc, error = ?failure.error, detail = ?failure.detail, "route refused");
                    caused_by_client(failure.rc).then_some("route refused")
                }
                Refusal::Forward(_) => {
                    // A router further down refused: its NI_RTERR goes to the client as it is.
                    crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, "downstream router refused the route");
                    None
                }
            };
            let to = answer.then_some(&mut client);
            refuse(shared, to, peer, refusal, penalty).await
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
        RouteFailure::invalid_route(&err)
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
        None if next.host.is_empty() => return Err(RouteFailure::empty_host().into()),
        None => resolve_host(&next.host, Instant::now() + timeout).await?,
    };
    let port = port.ok_or_else(|| RouteFailure::service_unknown(&next.service))?;

    let routtab = shared.routtab();
    let own_ports = shared.own_ports();
    let facts = Facts {
        route: &route,
        peer,
        snc_name,
        ip,
        port,
        link: registered
            .as_ref()
            .map(|(hops, _)| hops.peer_snc_name(ip, port)),
        own_ports: &own_ports,
        exclusive_ri: shared.exclusive_ri(),
        snc_active: shared.config().snc.is_some(),
        router: &shared.errors().host,
        max_clients: shared.config().max_clients,
        routtab: &routtab,
    };
    let Plan {
        line,
        target,
        kt,
        slot,
    } = match plan(&facts, || shared.admission().take_client_slot()) {
        Ok(plan) => plan,
        Err(refused) => {
            report(shared, handle, &facts, &refused);
            return Err((*refused.failure).into());
        }
    };
    tracing::debug!(id = handle.id, line, "route permitted");

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

/// Logs and counts a refusal of [`plan`], as the router always has: the trace, the
/// metrics, the `-G` log.
fn report(shared: &Shared, handle: &ClientHandle, facts: &Facts<'_>, refused: &Refused) {
    let (peer, next, port) = (facts.peer, facts.next(), facts.port);
    let why = match &refused.denial {
        Denial::OwnPort => {
            crate::gated!(shared.refusal_log(), warn, id = handle.id, %peer, host = ?next.host, port, "route to the router's own port refused");
            crate::metrics::route_denied_own_port();
            "route to the router itself"
        }
        Denial::Exclusive => {
            crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, host = ?next.host, port, "route refused: exclusive reverse invoke");
            "exclusive reverse invoke"
        }
        Denial::SncSource => {
            let detail = &refused.failure.detail;
            tracing::warn!(%peer, %detail, "SNC source check failed; route refused");
            return;
        }
        Denial::Table { line, reason } => {
            let snc_name = facts.snc_name;
            crate::gated!(shared.refusal_log(), info, id = handle.id, %peer, snc_name = snc_name.unwrap_or("-"), ?line, ?reason, host = ?next.host, service = ?next.service, "route permission denied");
            crate::metrics::route_denied(*line);
            reason.log_text()
        }
        Denial::TableFull { line } => {
            tracing::debug!(id = handle.id, line, "route permitted");
            return;
        }
        Denial::SncHop { line } => {
            tracing::debug!(id = handle.id, line, "route permitted");
            let (target, detail) = (SocketAddr::new(facts.ip, port), &refused.failure.detail);
            tracing::warn!(%target, %detail, "SNC hop failed; route refused");
            return;
        }
    };
    if let Some(log) = shared.connlog() {
        log.write(
            Event::PermDenied,
            &format!("C{}/-", handle.id),
            &format!(
                "host {} to {}/{} ({why})",
                facts.source(),
                next.host,
                next.service
            ),
        );
    }
}
