//! Observability: Prometheus metrics, health and readiness (`--metrics ADDR:PORT`).
//!
//! The metrics live in one process-wide registry ([`install`]ed by the binary when
//! `--metrics` is given). The router and the reverse-invoke code call the free functions of
//! this module where something countable happens; before [`install`] (or without
//! `--metrics`) each call is a single atomic load and returns.
//!
//! Nothing is counted per byte or per read: relayed bytes are added from the relay's
//! [`Outcome`](crate::router::relay::Outcome) when a route closes, and gauges that mirror
//! router state (sessions active, pre-route connections, client-table fill) are read from the
//! client table at scrape time. See `docs/observability.md` for the metric list.

mod families;
mod hooks;
pub mod http;
pub mod ri;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

pub use families::Metrics;
pub use hooks::{
    admin_request, penalty_refused, reload_finished, route_closed, route_denied,
    route_denied_own_port, route_established, route_timer, routtab_findings, session,
    session_ended, RouteTimer, SessionEnd,
};

use crate::router::Shared;

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
/// `shared` in a task of its own. Returns the bound address.
pub async fn start(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    let metrics = install();
    let endpoint = http::Endpoint::bind(addr).await?;
    let bound = endpoint.local_addr()?;
    tracing::info!(addr = %bound, "metrics endpoint listening");
    tokio::spawn(endpoint.serve(metrics, shared));
    Ok(bound)
}
