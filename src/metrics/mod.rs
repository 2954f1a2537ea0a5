//! Observability: Prometheus metrics, health and readiness (`--metrics ADDR:PORT`).
//!
//! The metrics live in one process-wide registry ([`install`]ed by the binary when
//! `--metrics` is given). The router and the reverse-invoke code call the free functions of
//! this module where something countable happens; before [`install`] (or without
//! `--metrics`) each call is a single atomic load and returns.
//!
//! Nothing is counted per byte or per read: relayed bytes are added when a route closes
//! ([`RouteClosed`]), and gauges that mirror router state (sessions active, pre-route
//! connections, client-table fill) are read at scrape time from a [`Status`] the router
//! reports through a [`status::Source`]. The metrics know nothing of the daemon's types:
//! the router converts its state into the plain types of [`status`]. See
//! `docs/observability.md` for the metric list.

mod families;
mod hooks;
pub mod http;
pub mod ri;
pub mod status;

use std::net::SocketAddr;
use std::sync::OnceLock;

pub use families::Metrics;
pub use hooks::{
    admin_request, penalty_refused, reload_finished, route_closed, route_denied,
    route_denied_own_port, route_established, route_timer, routtab_findings, session,
    session_ended, RouteTimer, SessionEnd,
};
pub use status::{Phase, RouteClosed, Status, TlsExpiry};

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Turns metrics on for this process (idempotent) and returns the registry.
pub fn install() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// The registry, when metrics are on.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Turns metrics on, binds `addr` and serves `/metrics`, `/healthz` and `/readyz` for
/// the router whose state `source` reports, in a task of its own. Returns the bound address.
pub async fn start(addr: SocketAddr, source: status::Source) -> std::io::Result<SocketAddr> {
    let metrics = install();
    let endpoint = http::Endpoint::bind(addr).await?;
    let bound = endpoint.local_addr()?;
    tracing::info!(addr = %bound, "metrics endpoint listening");
    tokio::spawn(endpoint.serve(metrics, source));
    Ok(bound)
}
