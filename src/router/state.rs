//! What all sessions of one router share: settings, the current table, the client table,
//! the admission gate, runtime switches and the router's lifecycle.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;

use super::admission::{Admission, Limits};
use super::clients::ClientTable;
use super::config::RouterConfig;
use super::conn::RegisteredHops;
use super::connlog::ConnLog;
use super::errors::ErrorFactory;
use super::ratelog::LogGate;
use crate::ni::route::RouteRequest;
use crate::routtab::{RoutTab, SystemResolver, TableError};
use crate::services::Services;

/// Where the router is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Accepting and routing.
    Running,
    /// `-p`: the port is released, existing sessions finish, then the process exits.
    SoftShutdown,
    /// `-s` or a signal: every session is told -98 and the process exits.
    Stopping,
}

/// Called with the new trace level when `-t` toggles it (the binary re-filters its logs).
pub type TraceHook = Box<dyn Fn(u8) + Send + Sync>;

/// Produces extra text lines for the info reply (`-l`), e.g. the reverse-invoke state.
pub type InfoLines = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// State shared by the listener and every session.
pub struct Shared {
    /// Settings from the command line.
    config: RouterConfig,
    /// Service names to ports.
    services: Services,
    /// The clients of `-l`.
    clients: Arc<ClientTable>,
    /// Client-table slots, route-phase places, connect places, refusal writers, penalties.
    admission: Admission,
    /// Builds the error records sent to clients.
    errors: ErrorFactory,
    /// Rate limit of log lines a peer can cause (refusals, bad messages, timeouts).
    refusal_log: LogGate,
    /// `-G` log, when configured.
    connlog: Option<ConnLog>,
    /// Process start time.
    started_on: SystemTime,
    /// Working directory at start (the `-l` output shows it).
    working_dir: PathBuf,
    /// Port actually listened on.
    port: u16,
    routtab: RwLock<Arc<RoutTab>>,
    hide_errors: AtomicBool,
    trace_level: AtomicU8,
    trace_hook: Option<TraceHook>,
    trace_masks: Mutex<Vec<String>>,
    extra_ports: Mutex<Vec<u16>>,
    lifecycle: watch::Sender<Lifecycle>,
    registered_hops: OnceLock<Arc<dyn RegisteredHops>>,
    info_extra: OnceLock<InfoLines>,
    fixed_route: OnceLock<RouteRequest>,
    /// Reverse-invoke `exclusive = yes` on a DMZ router: next hops must be registered.
    exclusive_ri: OnceLock<bool>,
}

impl Shared {
    /// True when `peer` serves a penalty: the caller closes the connection at accept
    /// (logged, rate-limited, and counted).
    pub fn turned_away(&self, peer: std::net::SocketAddr) -> bool {
        if !self.admission.is_penalised(peer.ip()) {
            return false;
        }
        self.closed_under_penalty(peer);
        true
    }

    /// Logs (rate-limited) and counts a connection from `peer` closed at accept because its
    /// address serves a penalty.
    pub(super) fn closed_under_penalty(&self, peer: std::net::SocketAddr) {
        crate::gated!(self.refusal_log, info, %peer, "address under penalty; connection closed");
        crate::metrics::penalty_refused();
    }

    /// Counts a refusal that `ip` caused (see [`super::penalty`]); logs when it starts a
    /// penalty.
    pub fn penalise(&self, ip: std::net::IpAddr, reason: &'static str) {
        if let super::penalty::Recorded::Blocked(length) = self.admission.count_refusal(ip) {
            crate::gated!(self.refusal_log, warn, %ip, reason, seconds = length.as_secs(), "address penalised: its connections are closed at accept");
        }
    }

    /// Settings from the command line.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Service names to ports.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The clients of `-l`.
    pub fn clients(&self) -> &Arc<ClientTable> {
        &self.clients
    }

    /// The admission gate: client-table slots, route-phase places, connect places, refusal
    /// writers and penalties.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Builds the error records sent to clients.
    pub fn errors(&self) -> &ErrorFactory {
        &self.errors
    }

    /// Rate limit of log lines a peer can cause (refusals, bad messages, timeouts).
    pub fn refusal_log(&self) -> &LogGate {
        &self.refusal_log
    }

    /// The `-G` log, when configured.
    pub fn connlog(&self) -> Option<&ConnLog> {
        self.connlog.as_ref()
    }

    /// Process start time.
    pub fn started_on(&self) -> SystemTime {
        self.started_on
    }

    /// Working directory at start (the `-l` output shows it).
    pub fn working_dir(&self) -> &Path {
        &self.working_dir
    }

    /// Port actually listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Assembles the shared state around a loaded table.
    pub fn new(
        config: RouterConfig,
        routtab: RoutTab,
        services: Services,
        connlog: Option<ConnLog>,
        port: u16,
        trace_hook: Option<TraceHook>,
    ) -> Self {
        let (lifecycle, _) = watch::channel(Lifecycle::Running);
        Self {
            services,
            clients: Arc::new(ClientTable::default()),
            admission: Admission::new(Limits::of(&config)),
            errors: ErrorFactory::local(),
            refusal_log: LogGate::default(),
            connlog,
            started_on: SystemTime::now(),
            working_dir: std::env::current_dir().unwrap_or_default(),
            port,
            routtab: RwLock::new(Arc::new(routtab)),
            hide_errors: AtomicBool::new(config.hide_errors),
            trace_level: AtomicU8::new(config.trace_level),
            trace_hook,
            trace_masks: Mutex::new(Vec::new()),
            extra_ports: Mutex::new(Vec::new()),
            lifecycle,
            registered_hops: OnceLock::new(),
            info_extra: OnceLock::new(),
            fixed_route: OnceLock::new(),
            exclusive_ri: OnceLock::new(),
            config,
        }
    }

    /// A router for unit tests: `config`, the table `P * * *`, SAP's built-in services,
    /// no `-G` log, port 3299.
    #[cfg(test)]
    pub(crate) fn for_tests(config: RouterConfig) -> Arc<Self> {
        let table =
            crate::routtab::parse_table("P * * *\n", Path::new("t"), &SystemResolver::new())
                .expect("the test table parses");
        Arc::new(Self::new(
            config,
            table,
            Services::builtin_only(),
            None,
            3299,
            None,
        ))
    }

    /// The table in force (a cheap clone of an `Arc`).
    pub fn routtab(&self) -> Arc<RoutTab> {
        Arc::clone(&self.routtab.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads the table from its file; on any error the old table stays.
    pub async fn reload_routtab(&self) -> Result<usize, TableError> {
        let result = self.load_and_swap_routtab().await;
        crate::metrics::reload_finished(result.is_ok());
        result
    }

    async fn load_and_swap_routtab(&self) -> Result<usize, TableError> {
        let path = self.config.routtab.clone();
        let services = self.services.clone();
        let (snc, port) = (self.config.snc.is_some(), self.port);
        let table = load_and_check_blocking(path, services, snc, port).await?;
        let lines = table.entries.len();
        *self.routtab.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        Ok(lines)
    }

    /// Installs the reverse-invoke registrations (DMZ side); only the first call counts.
    pub fn set_registered_hops(&self, hops: Arc<dyn RegisteredHops>) {
        let _ = self.registered_hops.set(hops);
    }

    /// The reverse-invoke registrations, when this router accepts them.
    pub fn registered_hops(&self) -> Option<Arc<dyn RegisteredHops>> {
        self.registered_hops.get().cloned()
    }

    /// Adds a port of this router besides `-S` (the reverse-invoke registration port):
    /// routes to it are refused like routes to `-S`.
    pub fn add_own_port(&self, port: u16) {
        let mut ports = self.extra_ports.lock().unwrap_or_else(|p| p.into_inner());
        if !ports.contains(&port) {
            ports.push(port);
        }
    }

    /// Every port this router listens on.
    pub fn own_ports(&self) -> Vec<u16> {
        let ports = self.extra_ports.lock().unwrap_or_else(|p| p.into_inner());
        std::iter::once(self.port)
            .chain(ports.iter().copied())
            .collect()
    }

    /// Installs a producer of extra `-l` lines; only the first call counts.
    pub fn set_info_extra(&self, lines: InfoLines) {
        let _ = self.info_extra.set(lines);
    }

    /// Extra `-l` lines (empty when none are installed).
    pub fn info_extra(&self) -> Vec<String> {
        self.info_extra.get().map(|f| f()).unwrap_or_default()
    }

    /// Port-forwarder mode (reverse-invoke `route = ...`): every accepted connection is
    /// routed along `route` (raw, first hop this router) instead of sending a route of its
    /// own. Only the first call counts.
    pub fn set_fixed_route(&self, route: RouteRequest) {
        let _ = self.fixed_route.set(route);
    }

    /// The port-forwarder route, when set.
    pub fn fixed_route(&self) -> Option<&RouteRequest> {
        self.fixed_route.get()
    }

    /// Reverse-invoke `exclusive` of a DMZ router: with `true`, routes go only to registered
    /// LAN routers. Only the first call counts.
    pub fn set_exclusive_ri(&self, exclusive: bool) {
        let _ = self.exclusive_ri.set(exclusive);
    }

    /// Whether this router refuses next hops that are not registered LAN routers.
    pub fn exclusive_ri(&self) -> bool {
        self.exclusive_ri.get().copied().unwrap_or(false)
    }

    /// Whether clients get the generic error (`-Z`, toggled by `-z`).
    pub fn hide_errors(&self) -> bool {
        self.hide_errors.load(Ordering::Relaxed)
    }

    /// Toggles error hiding; returns the new setting.
    pub fn toggle_hide_errors(&self) -> bool {
        !self.hide_errors.fetch_xor(true, Ordering::Relaxed)
    }

    /// Current trace level.
    pub fn trace_level(&self) -> u8 {
        self.trace_level.load(Ordering::Relaxed)
    }

    /// SAP's `-t`: level 1 becomes 2, 2 and 3 become 1. Returns the new level.
    pub fn toggle_trace(&self) -> u8 {
        let new = if self.trace_level() == 1 { 2 } else { 1 };
        self.trace_level.store(new, Ordering::Relaxed);
        if let Some(hook) = &self.trace_hook {
            hook(new);
        }
        new
    }

    /// Adds (or removes) a peer mask whose connections are traced.
    pub fn set_trace_mask(&self, mask: &str, on: bool) {
        let mut masks = self.trace_masks.lock().unwrap_or_else(|p| p.into_inner());
        masks.retain(|m| m != mask);
        if on {
            masks.push(mask.to_string());
        }
    }

    /// True when a new connection from `peer` is to be traced.
    pub fn peer_traced(&self, peer: IpAddr) -> bool {
        let text = peer.to_string();
        let masks = self.trace_masks.lock().unwrap_or_else(|p| p.into_inner());
        masks.iter().any(|m| mask_matches(m, &text))
    }

    /// The lifecycle now.
    pub fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.borrow()
    }

    /// A receiver that sees lifecycle changes.
    pub fn lifecycle_changes(&self) -> watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }

    /// Moves to `next` (never back to running).
    pub fn set_lifecycle(&self, next: Lifecycle) {
        self.lifecycle.send_if_modified(|now| {
            let change = *now != next && *now != Lifecycle::Stopping;
            if change {
                *now = next;
            }
            change
        });
    }
}

/// Reads and parses a table file, resolving names through the system.
pub fn load_routtab(path: &Path, services: Services) -> Result<RoutTab, TableError> {
    let table = RoutTab::load(path, &SystemResolver::with_services(services))?;
    for warning in &table.warnings {
        tracing::warn!(%warning, "route permission table");
    }
    Ok(table)
}

/// [`load_routtab`], then the table checker's findings as warnings in the trace and in the
/// metrics (start-up and reload; a finding never stops the router).
pub fn load_and_check(
    path: &Path,
    services: Services,
    snc: bool,
    port: u16,
) -> Result<RoutTab, TableError> {
    let table = load_routtab(path, services)?;
    crate::cli::check::report_loaded(path, &table, snc, port);
    Ok(table)
}

/// [`load_and_check`] on the blocking pool (file reads and name lookups block), for start-up
/// and reload alike. A loader that panics is reported as an error of the table file, so
/// both answer it the same way and a reload keeps the old table.
pub async fn load_and_check_blocking(
    path: PathBuf,
    services: Services,
    snc: bool,
    port: u16,
) -> Result<RoutTab, TableError> {
    let file = path.clone();
    tokio::task::spawn_blocking(move || load_and_check(&path, services, snc, port))
        .await
        .unwrap_or_else(|join| {
            Err(TableError {
                file,
                line: 0,
                column: 0,
                message: format!("table loader failed: {join}"),
            })
        })
}

/// SAP's address masks for tracing: `*` matches any run of characters (`10.0.0.*`).
pub fn mask_matches(mask: &str, text: &str) -> bool {
    match mask.split_once('*') {
        None => mask == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && mask_matches(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{load_and_check_blocking, mask_matches};
    use crate::services::Services;

    #[tokio::test]
    async fn blocking_loader_gives_the_table_or_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saprouttab");
        std::fs::write(&path, "P * * *\nD 10.0.0.1 * *\n").unwrap();
        let table = load_and_check_blocking(path.clone(), Services::builtin_only(), false, 3299)
            .await
            .unwrap();
        assert_eq!(table.entries.len(), 2);
        std::fs::write(&path, "X * * *\n").unwrap();
        let err = load_and_check_blocking(path.clone(), Services::builtin_only(), false, 3299)
            .await
            .unwrap_err();
        assert_eq!((err.file.as_path(), err.line), (path.as_path(), 1));
    }

    #[test]
    fn masks() {
        assert!(mask_matches("10.0.0.*", "10.0.0.7"));
        assert!(mask_matches("*", "1.2.3.4"));
        assert!(mask_matches("10.*.1", "10.9.9.1"));
        assert!(!mask_matches("10.0.0.*", "10.0.1.7"));
        assert!(mask_matches("10.0.0.7", "10.0.0.7"));
    }
}
