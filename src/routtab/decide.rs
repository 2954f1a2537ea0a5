//! First-match route decision.

use std::net::IpAddr;

use super::RoutTab;

/// What the router knows about a route when it asks the table.
#[derive(Debug, Clone)]
pub struct RouteQuery<'a> {
    /// Peer address of the incoming connection.
    pub source: IpAddr,
    /// Authenticated SNC (TLS) peer name of the incoming connection, if any.
    pub snc_name: Option<&'a str>,
    /// Resolved address of the next hop.
    pub destination: IpAddr,
    /// Resolved port of the next hop.
    pub port: u16,
    /// Passwords the route offers for this hop (this router's entry and the next entry);
    /// a line's password is satisfied when any of them equals it.
    pub passwords: &'a [&'a str],
    /// Native (raw) talk mode requested.
    pub raw: bool,
    /// SAProuters before this one.
    pub routers_before: usize,
    /// SAProuters after this one.
    pub routers_after: usize,
}

/// Why a route was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No line matched.
    NoMatch,
    /// A `D`/`KD` line matched.
    DenyLine,
    /// The matching line's hop limits are exceeded.
    HopLimit,
    /// The matching line needs a password the route does not carry.
    Password,
    /// The matching line is `S`/`KS` and the route asks for native (raw) mode.
    NativeNotAllowed,
}

/// The table's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Permitted by this line.
    Permit {
        /// 1-based line number.
        line: usize,
    },
    /// Refused (`line` is the deciding line, `None` when nothing matched).
    Deny {
        /// 1-based line number of the deciding line.
        line: Option<usize>,
        /// Why.
        reason: DenyReason,
    },
}

impl RoutTab {
    /// The first line matching source (address for P/S/D, SNC name for K*; K* lines never
    /// match a connection without an SNC name), destination and port decides; its hop limits,
    /// password and talk-mode restriction are conditions (no fall-through). KT lines are
    /// skipped (they declare SNC, they do not permit). Native routes on the last router are
    /// not matched by a `*` service (SAP's rule: raw targets must be listed by port).
    /// Passwords compare in constant time.
    pub fn decide(&self, query: &RouteQuery<'_>) -> Decision {
        todo!("policy helper")
    }

    /// The SNC name a `KT` line requires for the hop to `addr:port`, if any.
    pub fn snc_target(&self, addr: IpAddr, port: u16) -> Option<&super::SncName> {
        todo!("policy helper")
    }
}
