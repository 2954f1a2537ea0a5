//! First-match route decision.

use std::net::IpAddr;

use super::{Action, Entry, RoutTab, ServicePattern, Source};

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
        self.decide_with(query, |_, _| {})
    }

    /// [`RoutTab::decide`], also reporting why each line before the deciding one did not
    /// match (for `saprouter --explain`). The same walk decides: only the observer differs.
    pub fn decide_traced(&self, query: &RouteQuery<'_>) -> DecisionTrace {
        let mut skipped = Vec::new();
        let decision = self.decide_with(query, |entry, mismatch| {
            skipped.push(LineTrace {
                line: entry.line,
                mismatch,
            })
        });
        DecisionTrace { decision, skipped }
    }

    /// The first-match walk; `skipped` sees every line that did not match, in order.
    fn decide_with(
        &self,
        query: &RouteQuery<'_>,
        mut skipped: impl FnMut(&Entry, Mismatch),
    ) -> Decision {
        let mut decider = None;
        for entry in &self.entries {
            let mismatch = entry.mismatch(query);
            if mismatch.is_match() {
                decider = Some(entry);
                break;
            }
            skipped(entry, mismatch);
        }
        let Some(entry) = decider else {
            return Decision::Deny {
                line: None,
                reason: DenyReason::NoMatch,
            };
        };
        let deny = |reason| Decision::Deny {
            line: Some(entry.line),
            reason,
        };
        if matches!(entry.action, Action::Deny | Action::SncDeny) {
            return deny(DenyReason::DenyLine);
        }
        let within = |count: usize, limit: u8| limit == 255 || count <= usize::from(limit);
        if !within(query.routers_before, entry.hops.before)
            || !within(query.routers_after, entry.hops.after)
        {
            return deny(DenyReason::HopLimit);
        }
        if let Some(password) = &entry.password {
            if !password_offered(password, query.passwords) {
                return deny(DenyReason::Password);
            }
        }
        if query.raw && matches!(entry.action, Action::Secure | Action::SncSecure) {
            return deny(DenyReason::NativeNotAllowed);
        }
        Decision::Permit { line: entry.line }
    }

    /// The first `KT` line that refuses a connection from `addr` before the table is asked:
    /// `KT` lines naming the host require SNC with one of their names, and this connection
    /// is plaintext (`snc_name` `None`) or has another name. `None` when it may proceed.
    pub fn snc_source_refusal(
        &self,
        addr: IpAddr,
        snc_name: Option<&str>,
    ) -> Option<(usize, &super::SncName)> {
        let required = self.snc_sources(addr);
        let satisfied = snc_name.is_some_and(|name| required.iter().any(|(_, w)| w.matches(name)));
        match required.first() {
            Some(&first) if !satisfied => Some(first),
            _ => None,
        }
    }

    /// The SNC name a `KT` line requires for the hop to `addr:port`, if any.
    pub fn snc_target(&self, addr: IpAddr, port: u16) -> Option<&super::SncName> {
        self.entries
            .iter()
            .find_map(|e| match (&e.action, &e.source) {
                (Action::SncTarget, Source::Snc(name))
                    if e.destination.matches(addr) && e.service.matches(port) =>
                {
                    Some(name)
                }
                _ => None,
            })
    }

    /// The `KT` lines whose host matches a connection *from* `addr` (docs/configuration.md
    /// §1.3: such a connection must be SNC with one of these names), as (line, name). Empty
    /// when no
    /// `KT` line names the host.
    pub fn snc_sources(&self, addr: IpAddr) -> Vec<(usize, &super::SncName)> {
        self.entries
            .iter()
            .filter_map(|e| match (&e.action, &e.source) {
                (Action::SncTarget, Source::Snc(name)) if e.destination.matches(addr) => {
                    Some((e.line, name))
                }
                _ => None,
            })
            .collect()
    }
}

impl Entry {
    /// Which of this line's match keys fail for `query` (every key is evaluated, so an
    /// explanation names all of them); the line decides when none fails.
    pub fn mismatch(&self, query: &RouteQuery<'_>) -> Mismatch {
        let (snc_target, source, no_snc_name) = match (&self.action, &self.source) {
            (Action::SncTarget, _) => (true, false, false),
            (_, Source::Host(pattern)) => (false, !pattern.matches(query.source), false),
            (_, Source::Snc(name)) => match query.snc_name {
                None => (false, false, true),
                Some(peer) => (false, !name.matches(peer), false),
            },
        };
        // SAP: on the last router a native (raw) target must be listed by port; a `*`
        // service does not permit it. Deny lines keep matching so they still deny.
        let native_wildcard = query.raw
            && query.routers_after == 0
            && self.service == ServicePattern::Any
            && !matches!(self.action, Action::Deny | Action::SncDeny);
        Mismatch {
            snc_target,
            source,
            no_snc_name,
            destination: !self.destination.matches(query.destination),
            service: !self.service.matches(query.port),
            native_wildcard,
        }
    }
}

/// Why a line did not decide a query: each field is one failed match key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mismatch {
    /// A `KT` line: it declares SNC for a hop and never decides a route.
    pub snc_target: bool,
    /// The source address (P/S/D) or the SNC name (K*) does not match.
    pub source: bool,
    /// A K* line and the connection carries no SNC name (it is not TLS).
    pub no_snc_name: bool,
    /// The next hop's address does not match the destination field.
    pub destination: bool,
    /// The next hop's port does not match the service field.
    pub service: bool,
    /// A native (raw) route on the last router and a `*` service (SAP's rule).
    pub native_wildcard: bool,
}

impl Mismatch {
    /// True when no key failed: the line decides.
    pub fn is_match(&self) -> bool {
        *self == Mismatch::default()
    }
}

/// One line passed over by [`RoutTab::decide_traced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTrace {
    /// 1-based line number.
    pub line: usize,
    /// Why it did not match.
    pub mismatch: Mismatch,
}

/// The verdict of [`RoutTab::decide_traced`] and the lines passed over before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionTrace {
    /// The same verdict [`RoutTab::decide`] gives.
    pub decision: Decision,
    /// Every line before the deciding one (all lines when none matched), in order.
    pub skipped: Vec<LineTrace>,
}

impl DenyReason {
    /// The reason as the connection log (`-G`) writes it in a `PERM DENIED` line.
    pub fn log_text(self) -> &'static str {
        match self {
            DenyReason::NoMatch => "no matching entry",
            DenyReason::DenyLine => "denied by entry",
            DenyReason::HopLimit => "hop limit exceeded",
            DenyReason::Password => "wrong password",
            DenyReason::NativeNotAllowed => "native (raw) routes not allowed by entry",
        }
    }
}

/// True when any offered password equals `expected`, in time independent of the contents:
/// every candidate is compared, each as a zero-padded fixed-size buffer plus its length.
fn password_offered(expected: &str, offered: &[&str]) -> bool {
    // Every candidate is compared (no early exit), each in constant time.
    offered.iter().fold(false, |found, candidate| {
        found | crate::secret::constant_time_eq(expected.as_bytes(), candidate.as_bytes())
    })
}
