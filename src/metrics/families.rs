//! The metric families of one router and their registration with a `prometheus-client`
//! registry. Everything here is a lock-free atomic or a small labelled family; the text
//! exposition is left to the crate.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Route set-up buckets (seconds): a local connect takes well under a millisecond, a DNS
/// lookup plus a far router several hundred; `-W` caps it at a few seconds.
const SETUP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Heartbeat round trips (seconds) of reverse-invoke links.
const RTT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How one connection to the listener ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    /// `routed`, `denied`, `error`, `admin` or `closed`.
    pub outcome: &'static str,
    /// SAP return code sent to the client (`0` when none was sent).
    pub rc: i32,
}

/// Which saprouttab line refused a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    /// The 1-based line number; `none` when no line matched; `own_port` for a route to the
    /// router's own listener.
    pub line: String,
}

/// Direction of relayed bytes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `to_server` or `to_client`.
    pub direction: &'static str,
}

/// An admin request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdminLabels {
    /// Command name (`info`, `reload`, …; `malformed` for undecodable requests).
    pub command: &'static str,
    /// `ROUTER_ADM` command code (0 for malformed requests).
    pub opcode: u8,
}

/// A reload's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// A reverse-invoke link.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    /// LAN side: the DMZ router the link goes to (link numbers are per DMZ router); empty
    /// on the DMZ side.
    pub dmz: String,
    /// Link number as the reverse-invoke code assigns it (bounded by `conn_pool_size`).
    pub link: u64,
}

/// Which certificate of the SNC identity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertRoleLabels {
    /// `identity` (the router's own) or `ca` (the CA certificate that expires first).
    pub role: &'static str,
}

/// Findings of the table checker by severity.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    /// `error`, `warning` or `note`.
    pub severity: &'static str,
}

/// Build information.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// All metrics of a router process.
#[derive(Debug)]
pub struct Metrics {
    /// Routed sessions now relaying (refreshed at scrape time from the client table).
    pub sessions_active: Gauge,
    /// Accepted connections without a route yet (refreshed at scrape time).
    pub preroute: Gauge,
    /// Connections by how they ended.
    pub sessions: Family<SessionLabels, Counter>,
    /// Route refusals by deciding table line.
    pub denials: Family<DenialLabels, Counter>,
    /// Bytes relayed to the server side.
    pub bytes_to_server: Counter,
    /// Bytes relayed to the client side.
    pub bytes_to_client: Counter,
    /// Time from the route request to the route standing.
    pub route_setup: Histogram,
    /// Client-table slots in use (a routed session holds two).
    pub clients_used: Gauge,
    /// `-C`.
    pub clients_max: Gauge,
    /// Admin requests by command.
    pub admin: Family<AdminLabels, Counter>,
    /// Table reloads by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// 1 when the last reload succeeded, 0 when it failed (1 before any reload).
    pub reload_last_success: Gauge,
    /// Unix time of the last reload attempt (0 before any).
    pub reload_last_time: Gauge<f64, AtomicU64>,
    /// 1 when `/readyz` would answer 200 (refreshed at scrape time).
    pub ready: Gauge,
    /// 1 on a reverse-invoke server (LAN router), whose readiness needs a registration.
    pub ri_server_mode: Gauge,
    /// Reverse invoke, DMZ side: LAN routers registered now.
    pub ri_registered_servers: Gauge,
    /// Reverse invoke: links up now (both modes).
    pub ri_links_up: Gauge,
    /// Reverse invoke: open streams per link.
    pub ri_link_streams: Family<LinkLabels, Gauge>,
    /// Reverse invoke: links re-established after a loss.
    pub ri_link_reconnects: Counter,
    /// Connections closed at accept because their address serves a penalty.
    pub penalty_refused: Counter,
    /// Reverse invoke: heartbeat round trips.
    pub ri_heartbeat_rtt: Histogram,
    /// With `-K`: the end of validity of the router's certificate and of its CA (refreshed
    /// at scrape time).
    pub tls_expiry: Family<CertRoleLabels, Gauge>,
    /// Findings of the table checker for the table in force, by severity.
    pub routtab_findings: Family<SeverityLabels, Gauge>,
    registry: Registry,
}

impl Metrics {
    /// Creates and registers every family (prefix `saprouter_`).
    pub fn new() -> Self {
        let directions: Family<DirectionLabels, Counter> = Family::default();
        // One statement each: `get_or_create` holds a read lock until its statement ends.
        let to_server = directions.get_or_create_owned(&DirectionLabels {
            direction: "to_server",
        });
        let to_client = directions.get_or_create_owned(&DirectionLabels {
            direction: "to_client",
        });
        let mut m = Self {
            sessions_active: Gauge::default(),
            preroute: Gauge::default(),
            sessions: Family::default(),
            denials: Family::default(),
            bytes_to_server: to_server,
            bytes_to_client: to_client,
            route_setup: Histogram::new(SETUP_BUCKETS),
            clients_used: Gauge::default(),
            clients_max: Gauge::default(),
            admin: Family::default(),
            reloads: Family::default(),
            reload_last_success: Gauge::default(),
            reload_last_time: Gauge::default(),
            ready: Gauge::default(),
            ri_server_mode: Gauge::default(),
            ri_registered_servers: Gauge::default(),
            ri_links_up: Gauge::default(),
            ri_link_streams: Family::default(),
            ri_link_reconnects: Counter::default(),
            penalty_refused: Counter::default(),
            ri_heartbeat_rtt: Histogram::new(RTT_BUCKETS),
            tls_expiry: Family::default(),
            routtab_findings: Family::default(),
            registry: Registry::with_prefix("saprouter"),
        };
        m.reload_last_success.set(1);
        // Series that alerts and rates refer to exist from the start, at zero.
        for (outcome, rc) in [("routed", 0), ("denied", -94), ("admin", 0), ("closed", 0)] {
            m.sessions
                .get_or_create(&SessionLabels { outcome, rc })
                .inc_by(0);
        }
        for result in ["success", "failure"] {
            m.reloads.get_or_create(&ResultLabels { result }).inc_by(0);
        }
        for severity in ["error", "warning", "note"] {
            m.routtab_findings
                .get_or_create(&SeverityLabels { severity })
                .set(0);
        }
        let r = &mut m.registry;
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("build_info", "Version of the running router", build);
        let start: Gauge<f64, AtomicU64> = Gauge::default();
        start.set(unix_now());
        r.register_with_unit(
            "start_time",
            "Unix time the process started",
            Unit::Seconds,
            start,
        );
        r.register(
            "sessions_active",
            "Routed sessions relaying now",
            m.sessions_active.clone(),
        );
        r.register(
            "preroute_connections",
            "Accepted connections that have no route yet (reading the first message, deciding, connecting)",
            m.preroute.clone(),
        );
        r.register(
            "sessions",
            "Connections to the listener by how they ended: routed, denied (rc -94), error (rc), admin, closed (no request)",
            m.sessions.clone(),
        );
        r.register(
            "denials",
            "Routes refused, by the saprouttab line that decided (none: no line matched; own_port: route to the router itself)",
            m.denials.clone(),
        );
        r.register_with_unit(
            "relayed",
            "Bytes relayed, added when a route closes",
            Unit::Bytes,
            directions,
        );
        r.register_with_unit(
            "route_setup",
            "Time from the route request to the route standing (resolve, table, connect, downstream routers)",
            Unit::Seconds,
            m.route_setup.clone(),
        );
        r.register(
            "client_table_used",
            "Client-table slots in use (a routed session holds two)",
            m.clients_used.clone(),
        );
        r.register(
            "client_table_max",
            "Client-table size (-C)",
            m.clients_max.clone(),
        );
        r.register(
            "admin_requests",
            "ROUTER_ADM requests by command",
            m.admin.clone(),
        );
        r.register(
            "reloads",
            "Route permission table reloads (-n, SIGHUP) by result",
            m.reloads.clone(),
        );
        r.register(
            "reload_last_success",
            "1 when the last table reload succeeded (or none was tried), 0 when it failed",
            m.reload_last_success.clone(),
        );
        r.register_with_unit(
            "reload_last_timestamp",
            "Unix time of the last table reload attempt (0: none yet)",
            Unit::Seconds,
            m.reload_last_time.clone(),
        );
        r.register(
            "ready",
            "1 when the router is ready (accepting routes; a LAN router also registered), as /readyz",
            m.ready.clone(),
        );
        r.register(
            "ri_server_mode",
            "1 on a reverse-invoke server (LAN router): readiness needs a registration with the DMZ router",
            m.ri_server_mode.clone(),
        );
        r.register(
            "ri_registered_servers",
            "Reverse invoke (DMZ side): LAN routers registered now",
            m.ri_registered_servers.clone(),
        );
        r.register(
            "ri_links_up",
            "Reverse invoke: registration links up now",
            m.ri_links_up.clone(),
        );
        r.register(
            "ri_link_streams",
            "Reverse invoke: open streams per link",
            m.ri_link_streams.clone(),
        );
        r.register(
            "penalty_refused_connections",
            "Connections closed at accept because their address serves a penalty (--penalty)",
            m.penalty_refused.clone(),
        );
        r.register(
            "ri_link_reconnects",
            "Reverse invoke: links re-established after a loss",
            m.ri_link_reconnects.clone(),
        );
        r.register_with_unit(
            "ri_heartbeat_rtt",
            "Reverse invoke: heartbeat round-trip time",
            Unit::Seconds,
            m.ri_heartbeat_rtt.clone(),
        );
        r.register_with_unit(
            "tls_certificate_expiry_timestamp",
            "With -K: Unix time at which the certificate expires (role identity: the router's own; role ca: the CA certificate that expires first)",
            Unit::Seconds,
            m.tls_expiry.clone(),
        );
        r.register(
            "routtab_findings",
            "Findings of the table checker (saprouter --check) for the table in force, by severity",
            m.routtab_findings.clone(),
        );
        m
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String cannot fail; keep the endpoint answering regardless.
            out.clear();
        }
        out
    }

    /// Counts a route set-up time.
    pub fn observe_setup(&self, took: Duration) {
        self.route_setup.observe(took.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Seconds since the epoch, as a float.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names() {
        let m = Metrics::new();
        m.sessions
            .get_or_create(&SessionLabels {
                outcome: "denied",
                rc: -94,
            })
            .inc();
        m.denials
            .get_or_create(&DenialLabels { line: "3".into() })
            .inc();
        m.bytes_to_server.inc_by(10);
        m.observe_setup(Duration::from_millis(2));
        let text = m.encode();
        for needle in [
            "saprouter_sessions_total{outcome=\"denied\",rc=\"-94\"} 1",
            "saprouter_denials_total{line=\"3\"} 1",
            "saprouter_relayed_bytes_total{direction=\"to_server\"} 10",
            "saprouter_relayed_bytes_total{direction=\"to_client\"} 0",
            "saprouter_route_setup_seconds_count 1",
            "saprouter_build_info{version=",
            "saprouter_reload_last_success 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
