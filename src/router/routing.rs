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
use super::refusal::Refusal;
use super::relay::{self, Relay};
use super::selfaddr;
use super::session::refuse;
use super::state::Shared;
use crate::metrics::SessionEnd;
use crate::ni::frame::{self, NI_PONG};
use crate::ni::route::{talk_mode, RouteHop, RouteRequest};
use crate::ni::rterr::rc;
use crate::routtab::{Decision, DenyReason, RoutTab, RouteQuery, SncName};

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

/// What [`plan`] decides on, all of it known before any I/O: the route, who sent it, where
/// its next hop resolved to, and the router's state that has a say.
struct Facts<'a> {
    route: &'a RouteRequest,
    peer: SocketAddr,
    /// The client's authenticated SNC name, when it came over TLS.
    snc_name: Option<&'a str>,
    /// The next hop's address and port, resolved.
    ip: IpAddr,
    port: u16,
    /// `Some` when the next hop is a LAN router registered over reverse invoke: the SNC name
    /// its links were authenticated with (`None` for plain links).
    link: Option<Option<String>>,
    /// The ports this router listens on.
    own_ports: &'a [u16],
    /// `exclusive = yes`: only registered LAN routers are next hops.
    exclusive_ri: bool,
    /// The router runs with `-K`.
    snc_active: bool,
    /// This router's host name, for the text of a -94.
    router: &'a str,
    /// `-C`, for the text of a -100.
    max_clients: usize,
    routtab: &'a RoutTab,
}

impl Facts<'_> {
    fn next(&self) -> &RouteHop {
        self.route.next_hop()
    }

    fn source(&self) -> IpAddr {
        selfaddr::canonical(self.peer.ip())
    }
}

/// A route that may be connected.
struct Plan<'a, S> {
    /// The table's permitting line.
    line: usize,
    target: SocketAddr,
    /// The `KT` line for the hop: it is TLS, with this peer name.
    kt: Option<&'a SncName>,
    /// The outbound connection's client-table slot.
    slot: S,
}

/// Why [`plan`] refused a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Denial {
    /// The next hop is one of this router's own listeners.
    OwnPort,
    /// `exclusive = yes` and the next hop is not a registered LAN router.
    Exclusive,
    /// A `KT` line requires SNC with another name (or at all) from the client's host.
    SncSource,
    /// The table denied the route (at `line`, `None`: no line matched).
    Table {
        line: Option<usize>,
        reason: DenyReason,
    },
    /// The table permitted the route at `line`, but the client table has no slot for the
    /// outbound connection.
    TableFull { line: usize },
    /// The table permitted the route at `line`, but its `KT` line cannot be met.
    SncHop { line: usize },
}

/// A refused route: why, and the failure its client hears.
#[derive(Debug)]
struct Refused {
    denial: Denial,
    // Boxed: a refusal is rare, and a large error would make every `plan` result large.
    failure: Box<RouteFailure>,
}

/// Decides a route with everything known before any I/O, in SAP's order: own port,
/// exclusive reverse invoke, the SNC source check, the table, then a client-table slot for
/// the outbound connection (`slot`, taken only once the table permits), then the `KT` line
/// for the hop.
fn plan<'a, S>(
    facts: &Facts<'a>,
    slot: impl FnOnce() -> Option<S>,
) -> Result<Plan<'a, S>, Refused> {
    let next = facts.next();
    let (ip, port, source) = (facts.ip, facts.port, facts.source());
    let refused = |denial, failure| {
        Err(Refused {
            denial,
            failure: Box::new(failure),
        })
    };
    if selfaddr::is_own_listener(ip, port, facts.own_ports) {
        let failure = RouteFailure::denied(facts.router, source, next);
        return refused(Denial::OwnPort, failure);
    }
    if facts.link.is_none() && facts.exclusive_ri {
        let failure = RouteFailure::exclusive(facts.router, source, next, ip, port);
        return refused(Denial::Exclusive, failure);
    }
    if let Err(failure) = super::snc::check_source(facts.routtab, facts.peer, facts.snc_name) {
        return refused(Denial::SncSource, failure);
    }
    let passwords: Vec<&str> = [
        facts.route.own_hop().password.as_str(),
        next.password.as_str(),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect();
    let query = RouteQuery {
        source,
        snc_name: facts.snc_name,
        destination: ip,
        port,
        passwords: &passwords,
        raw: facts.route.talk_mode == talk_mode::NI_RAW_IO,
        routers_before: facts.route.routers_before(),
        routers_after: facts.route.routers_after(),
    };
    let line = match facts.routtab.decide(&query) {
        Decision::Permit { line } => line,
        Decision::Deny { line, reason } => {
            let failure = RouteFailure::denied(facts.router, source, next);
            return refused(Denial::Table { line, reason }, failure);
        }
    };
    // The outbound connection takes a second client-table slot.
    let Some(slot) = slot() else {
        let failure = RouteFailure::table_full(facts.max_clients);
        return refused(Denial::TableFull { line }, failure);
    };
    let target = SocketAddr::new(ip, port);
    let kt = facts.routtab.snc_target(ip, port);
    let link = facts.link.clone();
    if let Err(failure) = super::snc::check_hop(facts.snc_active, kt, link, target) {
        return refused(Denial::SncHop { line }, failure);
    }
    Ok(Plan {
        line,
        target,
        kt,
        slot,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn table(text: &str) -> RoutTab {
        let resolver = crate::routtab::SystemResolver::new();
        crate::routtab::parse_table(text, std::path::Path::new("saprouttab"), &resolver).unwrap()
    }

    /// A route from the client through this router (127.0.0.1 3299) to 10.0.0.2 3200,
    /// the next hop's password `password`.
    fn route(password: &str) -> RouteRequest {
        let mut target = RouteHop::new("10.0.0.2", "3200");
        target.password = password.into();
        RouteRequest::new(
            vec![RouteHop::new("127.0.0.1", "3299"), target],
            talk_mode::NI_MSG_IO,
            40,
        )
    }

    /// A plaintext client at 10.0.0.1 on a router without `-K` or reverse invoke, listening
    /// on 3299; the next hop resolved to 10.0.0.2:3200.
    fn facts<'a>(route: &'a RouteRequest, routtab: &'a RoutTab) -> Facts<'a> {
        Facts {
            route,
            peer: "10.0.0.1:40000".parse().unwrap(),
            snc_name: None,
            ip: "10.0.0.2".parse().unwrap(),
            port: 3200,
            link: None,
            own_ports: &[3299],
            exclusive_ri: false,
            snc_active: false,
            router: "gw",
            max_clients: 800,
            routtab,
        }
    }

    /// A slot always free.
    fn free() -> Option<()> {
        Some(())
    }

    fn refusal<S>(planned: Result<Plan<'_, S>, Refused>) -> Refused {
        match planned {
            Ok(plan) => panic!("permitted at line {}", plan.line),
            Err(refused) => refused,
        }
    }

    #[test]
    fn permitted() {
        let (route, t) = (route(""), table("D * * 3201\nP 10.0.0.1 10.0.0.2 3200\n"));
        let plan = plan(&facts(&route, &t), free)
            .map_err(|r| r.failure)
            .unwrap();
        assert_eq!(plan.line, 2);
        assert_eq!(plan.target, "10.0.0.2:3200".parse().unwrap());
        assert!(plan.kt.is_none(), "no KT line: a plain TCP hop");
    }

    #[test]
    fn denied_by_the_table() {
        let (route, t) = (route(""), table("D 10.0.0.1 * *\nP * * *\n"));
        let refused = refusal(plan(&facts(&route, &t), free));
        let reason = DenyReason::DenyLine;
        assert_eq!(
            refused.denial,
            Denial::Table {
                line: Some(1),
                reason
            }
        );
        assert_eq!(refused.failure.rc, rc::NIEROUT_PERM_DENIED);
        assert_eq!(
            refused.failure.error,
            "gw: route permission denied (10.0.0.1 to 10.0.0.2, 3200)"
        );
        let t = table("P 10.0.0.9 * *\n");
        let refused = refusal(plan(&facts(&route, &t), free));
        let reason = DenyReason::NoMatch;
        assert_eq!(refused.denial, Denial::Table { line: None, reason });
    }

    #[test]
    fn passwords_of_both_hops_are_offered() {
        let t = table("P * * * secret\n");
        assert!(plan(&facts(&route("secret"), &t), free).is_ok());
        let refused = refusal(plan(&facts(&route("wrong"), &t), free));
        let reason = DenyReason::Password;
        assert_eq!(
            refused.denial,
            Denial::Table {
                line: Some(1),
                reason
            }
        );
    }

    #[test]
    fn the_routers_own_port() {
        // Even a table that permits everything does not let a route loop back.
        let (route, t) = (route(""), table("P * * *\n"));
        let facts = Facts {
            ip: "127.0.0.1".parse().unwrap(),
            port: 3299,
            ..facts(&route, &t)
        };
        let refused = refusal(plan(&facts, free));
        assert_eq!(refused.denial, Denial::OwnPort);
        assert_eq!(refused.failure.rc, rc::NIEROUT_PERM_DENIED);
        let other_port = Facts {
            port: 3298,
            ..facts
        };
        assert!(plan(&other_port, free).is_ok());
    }

    #[test]
    fn exclusive_reverse_invoke() {
        let (route, t) = (route(""), table("P * * *\n"));
        let exclusive = Facts {
            exclusive_ri: true,
            ..facts(&route, &t)
        };
        let refused = refusal(plan(&exclusive, free));
        assert_eq!(refused.denial, Denial::Exclusive);
        assert!(refused
            .failure
            .detail
            .contains("10.0.0.2:3200 is not a registered server"));
        let registered = Facts {
            link: Some(None),
            ..exclusive
        };
        assert!(plan(&registered, free).is_ok());
    }

    #[test]
    fn snc_required_from_the_source() {
        let (route, t) = (route(""), table("KT p:CN=alice 10.0.0.1 *\nP * * *\n"));
        let refused = refusal(plan(&facts(&route, &t), free));
        assert_eq!(refused.denial, Denial::SncSource);
        assert_eq!(refused.failure.rc, rc::NIEROUT_SNC_FAILURE);
        assert!(refused.failure.detail.contains("this one is plaintext"));
        let mallory = Facts {
            snc_name: Some("p:CN=mallory"),
            ..facts(&route, &t)
        };
        assert_eq!(refusal(plan(&mallory, free)).denial, Denial::SncSource);
        let alice = Facts {
            snc_name: Some("p:CN=alice"),
            ..facts(&route, &t)
        };
        assert!(plan(&alice, free).is_ok());
    }

    #[test]
    fn kt_line_for_the_hop() {
        let (route, t) = (route(""), table("P * * *\nKT p:CN=srv 10.0.0.2 3200\n"));
        // Without -K the hop cannot be TLS.
        let refused = refusal(plan(&facts(&route, &t), free));
        assert_eq!(refused.denial, Denial::SncHop { line: 1 });
        assert_eq!(refused.failure.rc, rc::NIEROUT_SNC_FAILURE);
        let snc = Facts {
            snc_active: true,
            ..facts(&route, &t)
        };
        let plan_ok = plan(&snc, free).map_err(|r| r.failure).unwrap();
        assert_eq!(plan_ok.kt.map(|name| name.matches("p:CN=srv")), Some(true));
        // A registered LAN router must have registered with the KT line's name.
        let impostor = Facts {
            link: Some(Some("p:CN=other".into())),
            ..facts(&route, &t)
        };
        assert_eq!(
            refusal(plan(&impostor, free)).denial,
            Denial::SncHop { line: 1 }
        );
        let plain_link = Facts {
            link: Some(None),
            ..facts(&route, &t)
        };
        assert_eq!(
            refusal(plan(&plain_link, free)).denial,
            Denial::SncHop { line: 1 }
        );
        let server = Facts {
            link: Some(Some("p:CN=srv".into())),
            ..facts(&route, &t)
        };
        assert!(plan(&server, free).is_ok());
    }

    #[test]
    fn client_table_full() {
        let (route, t) = (route(""), table("P * * *\n"));
        let refused = refusal(plan(&facts(&route, &t), || None::<()>));
        assert_eq!(refused.denial, Denial::TableFull { line: 1 });
        assert_eq!(*refused.failure, {
            let mut expected = RouteFailure::table_full(800);
            expected.line = refused.failure.line;
            expected.module = refused.failure.module;
            expected
        });
    }

    /// SAP's order: a denied route never takes a slot; a full table is said before a `KT`
    /// line that cannot be met.
    #[test]
    fn refusals_in_order() {
        let route = route("");
        let asked = Cell::new(false);
        let slot = || {
            asked.set(true);
            Some(())
        };
        let t = table("D * * *\n");
        let own = Facts {
            ip: "127.0.0.1".parse().unwrap(),
            port: 3299,
            ..facts(&route, &t)
        };
        assert_eq!(refusal(plan(&own, slot)).denial, Denial::OwnPort);
        assert_eq!(
            refusal(plan(&facts(&route, &t), slot)).denial.clone(),
            Denial::Table {
                line: Some(1),
                reason: DenyReason::DenyLine
            }
        );
        assert!(!asked.get(), "no slot taken for a refused route");
        let t = table("P * * *\nKT p:CN=srv 10.0.0.2 3200\n");
        let full = refusal(plan(&facts(&route, &t), || None::<()>));
        assert_eq!(full.denial, Denial::TableFull { line: 1 });
    }
}
