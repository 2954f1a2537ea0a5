//! Server mode (the LAN router). The names are SAP's: in reverse invoke the LAN side is the
//! *server* and the DMZ side the *client*, although this side opens the connections (it
//! serves the routes the DMZ router hands it).
//!
//! This side dials out to every DMZ router `client_hostname` lists,
//! registers with each, and serves every stream a DMZ router opens as a connection accepted
//! from that DMZ router. Nothing listens for reverse invoke on this side.
//!
//! - [`pool`]: [`pool::DmzPool`], the pool of links towards one DMZ router (its slots, its
//!   growth, its back-off). Pools never wait for each other: one DMZ router down, slow or
//!   refusing leaves the links to the others alone.
//! - [`dial`]: one link: connect, register, drive it, serve its streams.
//! - this module: [`ServerSide`] owns the set of pools. Each item of `client_hostname` is
//!   one DMZ router per address it resolves to; names are resolved again whenever a link
//!   goes down (and every [`RESOLVE_EVERY`]): a new address gets a pool, a vanished one's
//!   pool stops once its links are down.
//!
//! Every DMZ router sees the same instance id: it names this LAN router, not the link.

mod dial;
mod pool;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::params::ServerParams;
use crate::router::state::{Lifecycle, Shared};
use pool::DmzPool;
pub use pool::{wants_link, SlotState};

/// Names are resolved again at least this often (and whenever a link goes down).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// Fewest time between two resolutions (a flapping link must not hammer the resolver).
const RESOLVE_GAP: Duration = Duration::from_secs(1);
/// Deadline of one name's resolution.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every pool shares: the router, the parameters, the instance id, the sessions.
pub(crate) struct Lan {
    pub(crate) shared: Arc<Shared>,
    pub(crate) params: ServerParams,
    pub(crate) instance: u64,
    /// Sessions over every link of every pool (the shutdown waits for them).
    pub(crate) sessions: TaskTracker,
    /// Ends everything.
    pub(crate) cancel: CancellationToken,
    /// Asks for the names to be resolved again (a link went down).
    pub(crate) resolve_now: tokio::sync::Notify,
}

impl Lan {
    pub(crate) fn running(&self) -> bool {
        self.shared.lifecycle() == Lifecycle::Running && !self.cancel.is_cancelled()
    }
}

/// One item of `client_hostname` and what it resolved to last.
struct Host {
    name: String,
    /// The last resolution's error (the pools of its earlier addresses stay).
    error: Option<String>,
}

/// The set of DMZ routers and their pools.
struct DmzSet {
    lan: Arc<Lan>,
    pools: Mutex<Vec<Arc<DmzPool>>>,
    hosts: Mutex<Vec<Host>>,
}

/// The running server side.
pub struct ServerSide {
    set: Arc<DmzSet>,
}

impl ServerSide {
    /// After the router stopped accepting: let the sessions over links finish (all of them
    /// after a soft shutdown, a short grace after a stop), then close the links.
    pub async fn finish(self) {
        let lan = Arc::clone(&self.set.lan);
        lan.sessions.close();
        let mut lifecycle = lan.shared.lifecycle_changes();
        tokio::select! {
            _ = lan.sessions.wait() => {}
            _ = async { let _ = lifecycle.wait_for(|l| *l == Lifecycle::Stopping).await; } => {
                let _ = timeout(Duration::from_secs(3), lan.sessions.wait()).await;
            }
        }
        lan.cancel.cancel();
    }
}

/// A random instance id: the process's hash keys come from the OS's randomness.
pub(crate) fn instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Starts a pool for each DMZ router (each pool starts with slot 0; the others follow once
/// that DMZ router tells its pool size).
pub fn start(shared: Arc<Shared>, params: ServerParams) -> ServerSide {
    let hosts = params
        .client_hosts
        .iter()
        .map(|name| Host {
            name: name.clone(),
            error: None,
        })
        .collect();
    let lan = Arc::new(Lan {
        shared: Arc::clone(&shared),
        params,
        instance: instance_id(),
        sessions: TaskTracker::new(),
        cancel: CancellationToken::new(),
        resolve_now: tokio::sync::Notify::new(),
    });
    let set = Arc::new(DmzSet {
        lan: Arc::clone(&lan),
        pools: Mutex::new(Vec::new()),
        hosts: Mutex::new(hosts),
    });
    let info = Arc::clone(&set);
    shared.set_info_extra(Box::new(move || info.info_lines()));
    let state = Arc::clone(&set);
    crate::metrics::ri::set_source(true, Arc::new(move || state.metrics_snapshot()));
    tracing::info!(client = %lan.params.client_hostname, port = lan.params.client_service, reg_service = lan.params.reg_service, instance = %format!("{:016x}", lan.instance), "reverse-invoke server: registering with the DMZ routers");
    tokio::spawn(discover(Arc::clone(&set)));
    ServerSide { set }
}

/// Resolves the DMZ routers' names and keeps one pool per address, for as long as the
/// router runs.
async fn discover(set: Arc<DmzSet>) {
    let lan = Arc::clone(&set.lan);
    loop {
        let names: Vec<String> = set.hosts().iter().map(|h| h.name.clone()).collect();
        let mut failed = false;
        for name in names {
            let found = resolve(&name, lan.params.client_service).await;
            failed |= found.is_err();
            set.update(&name, found);
        }
        set.prune();
        // A name that failed is asked again soon; the others when a link goes down.
        let wait = if failed {
            lan.params.retry_timeout.min(Duration::from_secs(5))
        } else {
            RESOLVE_EVERY
        };
        tokio::select! {
            _ = lan.cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = lan.resolve_now.notified() => {}
        }
        if !lan.running() {
            return;
        }
        tokio::time::sleep(RESOLVE_GAP).await;
    }
}

/// The addresses of one `client_hostname` item (an address literal is itself).
async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(found)) => {
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            if addrs.is_empty() {
                return Err("no address".into());
            }
            Ok(addrs)
        }
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {}s", RESOLVE_TIMEOUT.as_secs())),
    }
}

impl DmzSet {
    fn hosts(&self) -> std::sync::MutexGuard<'_, Vec<Host>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, Vec<Arc<DmzPool>>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one resolution of `name`: a pool for each new address, retirement for each
    /// address that vanished (a failed resolution changes no pool).
    fn update(&self, name: &str, found: Result<Vec<SocketAddr>, String>) {
        let addrs = match found {
            Ok(addrs) => addrs,
            Err(why) => {
                tracing::warn!(dmz = name, %why, "reverse-invoke: cannot resolve the DMZ router's name");
                if let Some(h) = self.hosts().iter_mut().find(|h| h.name == name) {
                    h.error = Some(why);
                }
                return;
            }
        };
        if let Some(h) = self.hosts().iter_mut().find(|h| h.name == name) {
            h.error = None;
        }
        let mut pools = self.pools();
        let views: Vec<PoolView> = pools
            .iter()
            .map(|p| PoolView {
                name: p.name.clone(),
                addr: p.addr,
                retired: p.is_retired(),
                stopped: p.stopped(),
            })
            .collect();
        for change in plan(&views, name, &addrs) {
            match change {
                Change::Retire(addr) => {
                    tracing::info!(dmz = name, %addr, "reverse-invoke: the DMZ router's address vanished; its links stop once down");
                    pools
                        .iter()
                        .filter(|p| p.addr == addr)
                        .for_each(|p| p.retire());
                }
                Change::Reinstate(addr) => {
                    pools
                        .iter()
                        .filter(|p| p.addr == addr)
                        .for_each(|p| p.reinstate());
                }
                Change::Start(addr) => {
                    pools.retain(|p| p.addr != addr);
                    pools.push(DmzPool::start(&self.lan, name, addr));
                }
            }
        }
    }

    /// Forgets retired pools whose slots all stopped.
    fn prune(&self) {
        self.pools().retain(|p| !(p.is_retired() && p.stopped()));
    }

    /// Links up and their open streams, for `/metrics` and `/readyz`.
    fn metrics_snapshot(&self) -> crate::metrics::ri::Snapshot {
        let links = self.pools().iter().flat_map(|p| p.link_states()).collect();
        crate::metrics::ri::Snapshot {
            registered_servers: None,
            links,
        }
    }

    fn info_lines(&self) -> Vec<String> {
        let p = &self.lan.params;
        let registered = match &p.reg_hostname {
            Some(h) => h.clone(),
            None => "(link address)".into(),
        };
        let pools = self.pools().clone();
        let holding = pools.iter().filter(|p| p.registered()).count();
        let mut out = vec![
            String::new(),
            format!(
                "RI server: client {}, registered {registered}:{}, instance {:016x}",
                match p.client_hosts.as_slice() {
                    [one] => format!("{one}:{}", p.client_service),
                    _ => format!("{} (port {})", p.client_hostname, p.client_service),
                },
                p.reg_service,
                self.lan.instance
            ),
            format!("DMZ routers {} (registered with {holding})", pools.len()),
        ];
        for h in self.hosts().iter() {
            if let Some(why) = &h.error {
                out.push(format!("- DMZ router {}: not resolved ({why})", h.name));
            }
        }
        for pool in &pools {
            out.extend(pool.info_lines());
        }
        out
    }
}

/// What [`plan`] sees of a pool.
#[derive(Debug, Clone)]
struct PoolView {
    name: String,
    addr: SocketAddr,
    retired: bool,
    stopped: bool,
}

/// What one resolution changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// The address vanished from the name: its slots stop once their links are down.
    Retire(SocketAddr),
    /// A retired address is back while its slots still run: they go on.
    Reinstate(SocketAddr),
    /// A new address, or one whose pool stopped: a new pool (replacing the stopped one).
    Start(SocketAddr),
}

/// The changes `name` resolving to `addrs` makes to `pools`. One DMZ router per address:
/// an address another name already found keeps that pool.
fn plan(pools: &[PoolView], name: &str, addrs: &[SocketAddr]) -> Vec<Change> {
    let mut out = Vec::new();
    for p in pools.iter().filter(|p| p.name == name) {
        if !addrs.contains(&p.addr) && !p.retired {
            out.push(Change::Retire(p.addr));
        }
    }
    for &addr in addrs {
        match pools.iter().find(|p| p.addr == addr) {
            Some(p) if p.stopped => out.push(Change::Start(addr)),
            Some(p) if p.retired => out.push(Change::Reinstate(addr)),
            Some(_) => {}
            None => out.push(Change::Start(addr)),
        }
    }
    out
}

/// Jittered exponential back-off: `attempt` 0 waits 250..500 ms, each further attempt
/// doubles, capped at `cap`; `unit` in [0, 1) picks the point in the upper half.
pub fn backoff(attempt: u32, cap: Duration, unit: f64) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

pub(crate) fn jitter() -> f64 {
    (instance_id() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests;
