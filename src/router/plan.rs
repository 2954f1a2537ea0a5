//! The decision on a route, made with everything known before any I/O ([`plan`]): the
//! router's own ports, exclusive reverse invoke, the SNC source check, the table, a second
//! client-table slot and the `KT` line for the hop, in SAP's order. Pure: the caller
//! (`routing`) logs, counts and answers what it decides.

use std::net::{IpAddr, SocketAddr};

use super::errors::RouteFailure;
use super::selfaddr;
use crate::ni::route::{talk_mode, RouteHop, RouteRequest};
use crate::routtab::{Decision, DenyReason, RoutTab, RouteQuery, SncName};

/// What [`plan`] decides on, all of it known before any I/O: the route, who sent it, where
/// its next hop resolved to, and the router's state that has a say.
pub(super) struct Facts<'a> {
    pub(super) route: &'a RouteRequest,
    pub(super) peer: SocketAddr,
    /// The client's authenticated SNC name, when it came over TLS.
    pub(super) snc_name: Option<&'a str>,
    /// The next hop's address and port, resolved.
    pub(super) ip: IpAddr,
    pub(super) port: u16,
    /// `Some` when the next hop is a LAN router registered over reverse invoke: the SNC name
    /// its links were authenticated with (`None` for plain links).
    pub(super) link: Option<Option<String>>,
    /// The ports this router listens on.
    pub(super) own_ports: &'a [u16],
    /// `exclusive = yes`: only registered LAN routers are next hops.
    pub(super) exclusive_ri: bool,
    /// The router runs with `-K`.
    pub(super) snc_active: bool,
    /// This router's host name, for the text of a -94.
    pub(super) router: &'a str,
    /// `-C`, for the text of a -100.
    pub(super) max_clients: usize,
    pub(super) routtab: &'a RoutTab,
}

impl Facts<'_> {
    pub(super) fn next(&self) -> &RouteHop {
        self.route.next_hop()
    }

    pub(super) fn source(&self) -> IpAddr {
        selfaddr::canonical(self.peer.ip())
    }
}

/// A route that may be connected.
pub(super) struct Plan<'a, S> {
    /// The table's permitting line.
    pub(super) line: usize,
    pub(super) target: SocketAddr,
    /// The `KT` line for the hop: it is TLS, with this peer name.
    pub(super) kt: Option<&'a SncName>,
    /// The outbound connection's client-table slot.
    pub(super) slot: S,
}

/// Why [`plan`] refused a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Denial {
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
pub(super) struct Refused {
    pub(super) denial: Denial,
    // Boxed: a refusal is rare, and a large error would make every `plan` result large.
    pub(super) failure: Box<RouteFailure>,
}

/// Decides a route with everything known before any I/O, in SAP's order: own port,
/// exclusive reverse invoke, the SNC source check, the table, then a client-table slot for
/// the outbound connection (`slot`, taken only once the table permits), then the `KT` line
/// for the hop.
pub(super) fn plan<'a, S>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ni::rterr::rc;
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
