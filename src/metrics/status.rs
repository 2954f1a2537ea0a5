//! The router's state as the metrics see it: plain data the router hands over, so the
//! metrics depend on nothing of the daemon.
//!
//! Gauges that mirror router state (sessions active, pre-route connections, client-table
//! fill, readiness, certificate expiry) are not counted by hooks but read at scrape time
//! from a [`Source`] the router supplies when the endpoint starts ([`super::start`]), so
//! they cannot drift from the truth. Events the router pushes carry plain types of this
//! module too ([`RouteClosed`]).

use std::sync::Arc;

/// Where the router is in its life, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepting and routing.
    Running,
    /// The port is released; existing sessions finish.
    SoftShutdown,
    /// Every session is being ended.
    Stopping,
}

/// The router's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Its phase.
    pub phase: Phase,
    /// Clients with a route standing (one per routed session).
    pub routed: usize,
    /// Clients without a route yet.
    pub preroute: usize,
    /// Client-table slots held.
    pub clients_used: usize,
    /// The client table's size (`-C`).
    pub clients_max: usize,
    /// The SNC certificates' expiry, when SNC is on.
    pub tls: Option<TlsExpiry>,
}

/// When the SNC certificates expire (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsExpiry {
    /// The router's own certificate.
    pub identity: i64,
    /// The first of the trusted CA certificates to expire, if any are loaded.
    pub first_ca: Option<i64>,
}

/// Reports the router's state; called at scrape time, so it must be quick and never block
/// on I/O.
pub type Source = Arc<dyn Fn() -> Status + Send + Sync>;

/// A route that ended: its byte counts (added once per route, nothing per read or write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteClosed {
    /// Bytes sent to the server.
    pub to_server: u64,
    /// Bytes sent to the client.
    pub to_client: u64,
    /// Whether a cancel or shutdown ended it.
    pub interrupted: bool,
}

/// Why the router is not ready, or `None` when it is: running and, on a LAN router,
/// registered with a DMZ router (`ri_ready`).
pub fn not_ready(phase: Phase, ri_ready: bool) -> Option<&'static str> {
    match phase {
        Phase::Running if ri_ready => None,
        Phase::Running => Some("not registered with the DMZ router"),
        Phase::SoftShutdown => Some("soft shutdown: the port is released"),
        Phase::Stopping => Some("stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness() {
        assert_eq!(not_ready(Phase::Running, true), None);
        assert_eq!(
            not_ready(Phase::Running, false),
            Some("not registered with the DMZ router")
        );
        assert_eq!(
            not_ready(Phase::SoftShutdown, true),
            Some("soft shutdown: the port is released")
        );
        assert_eq!(not_ready(Phase::Stopping, false), Some("stopping"));
    }
}
