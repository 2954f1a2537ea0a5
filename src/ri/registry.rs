//! The DMZ router's registered LAN routers and their links, and the [`RegisteredHops`] the
//! routing code asks: which next hops are pseudo addresses, and a new stream to one.
//!
//! All decisions (admit, replace, conflict, pick a link) happen under one lock, so a
//! registration either replaces a stale link atomically or is refused; the lock is never
//! held across an await.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::link::{RegAddr, Register};
use super::mux::{MuxStream, Opener, StreamCount, StreamGuard};
use crate::ni::rterr::rc;
use crate::router::conn::{BoxConn, BoxFuture, RegisteredHops};
use crate::router::selfaddr::canonical;

/// One live link of a registered LAN router.
#[derive(Debug, Clone)]
pub struct LinkEntry {
    /// The DMZ router's id for the link (`-l`, logs).
    pub id: u32,
    /// Pool slot the LAN router fills with it.
    pub index: u16,
    /// Where it comes from.
    pub peer: SocketAddr,
    /// Opens streams on it.
    pub opener: Opener,
    /// Its streams.
    pub streams: StreamCount,
    /// Ends it (replacement, shutdown).
    pub cancel: CancellationToken,
    /// When it registered.
    pub since: SystemTime,
    /// The LAN router's authenticated SNC name, when the link is TLS (`-K`).
    pub snc_name: Option<String>,
}

/// One registered LAN router.
#[derive(Debug)]
struct Server {
    instance: u64,
    number: u16,
    reg_service: u16,
    addrs: Vec<RegAddr>,
    links: Vec<LinkEntry>,
}

impl Server {
    /// The address a route to this server is checked against when it names the server by
    /// host name: its first registered IP.
    fn handle_ip(&self) -> Option<IpAddr> {
        self.addrs.iter().find_map(|a| match a {
            RegAddr::Ip(ip) => Some(*ip),
            RegAddr::Name(_) => None,
        })
    }

    fn has_ip(&self, ip: IpAddr) -> bool {
        self.addrs
            .iter()
            .any(|a| matches!(a, RegAddr::Ip(mine) if *mine == ip))
    }

    fn overlaps(&self, addrs: &[RegAddr]) -> bool {
        addrs
            .iter()
            .any(|a| self.addrs.iter().any(|b| same_addr(a, b)))
    }
}

fn same_addr(a: &RegAddr, b: &RegAddr) -> bool {
    match (a, b) {
        (RegAddr::Ip(x), RegAddr::Ip(y)) => x == y,
        (RegAddr::Name(x), RegAddr::Name(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

/// Why a registration is refused: SAP return code and the text sent back and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Return code in the `NI_RTERR`.
    pub rc: i32,
    /// Short reason.
    pub reason: String,
}

impl Refusal {
    fn new(rc: i32, reason: impl Into<String>) -> Self {
        Self {
            rc,
            reason: reason.into(),
        }
    }
}

/// What a successful registration gives the new link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The server's number.
    pub server_number: u16,
    /// A link replaced by this one (same server, same pool slot).
    pub replaced: Option<u32>,
}

/// The registered LAN routers.
#[derive(Debug)]
pub struct Registry {
    servers: Mutex<Vec<Server>>,
    max_servers: usize,
    pool_size: u16,
    next_link_id: AtomicU32,
    next_number: AtomicU32,
}

impl Registry {
    /// An empty registry for `max_servers` servers of `pool_size` links each.
    pub fn new(max_servers: usize, pool_size: u16) -> Self {
        Self {
            servers: Mutex::new(Vec::new()),
            max_servers,
            pool_size,
            next_link_id: AtomicU32::new(1),
            next_number: AtomicU32::new(0),
        }
    }

    /// Links each server is told to keep.
    pub fn pool_size(&self) -> u16 {
        self.pool_size
    }

    /// A fresh link id.
    pub fn next_link_id(&self) -> u32 {
        self.next_link_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Server>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `link` for the server `reg` describes, seen from `peer`; atomically
    /// replaces the link in the same pool slot of the same instance. Refuses address
    /// conflicts with another instance, a server beyond `max_servers`, a slot beyond the pool.
    pub fn register(
        &self,
        reg: &Register,
        peer: SocketAddr,
        link: LinkEntry,
    ) -> Result<Admitted, Refusal> {
        if reg.link_index >= self.pool_size {
            return Err(Refusal::new(
                rc::NIEROUT_OVERFLOW,
                format!(
                    "link {} beyond the pool of {} links",
                    reg.link_index, self.pool_size
                ),
            ));
        }
        let mut addrs: Vec<RegAddr> = Vec::new();
        // The source address seen here joins the implicit registration (NAT), and a
        // registration of names only, which otherwise has no address to check routes with.
        let names_only = !reg.addrs.iter().any(|a| matches!(a, RegAddr::Ip(_)));
        let observed = (reg.implicit || names_only).then_some(RegAddr::Ip(canonical(peer.ip())));
        for addr in reg.addrs.iter().cloned().chain(observed) {
            let addr = match addr {
                RegAddr::Ip(ip) => RegAddr::Ip(canonical(ip)),
                name => name,
            };
            if !addrs.iter().any(|a| same_addr(a, &addr)) {
                addrs.push(addr);
            }
        }
        let mut servers = self.lock();
        if let Some(other) = servers.iter().find(|s| {
            s.instance != reg.instance && s.reg_service == reg.reg_service && s.overlaps(&addrs)
        }) {
            return Err(Refusal::new(
                rc::NIESERV_USED,
                format!(
                    "pseudo address already registered by server [{}] from {}",
                    other.number,
                    other
                        .links
                        .first()
                        .map_or("?".to_string(), |l| l.peer.to_string())
                ),
            ));
        }
        let index = match servers.iter().position(|s| s.instance == reg.instance) {
            Some(i) => i,
            None => {
                if servers.len() >= self.max_servers {
                    return Err(Refusal::new(
                        rc::NIEROUT_OVERFLOW,
                        format!("max_servers ({}) reached", self.max_servers),
                    ));
                }
                let number = self.next_number.fetch_add(1, Ordering::Relaxed);
                servers.push(Server {
                    instance: reg.instance,
                    number: u16::try_from(number % 65536).unwrap_or(0),
                    reg_service: reg.reg_service,
                    addrs: Vec::new(),
                    links: Vec::new(),
                });
                servers.len() - 1
            }
        };
        let server = &mut servers[index];
        // The latest registration of an instance says what it serves.
        server.reg_service = reg.reg_service;
        server.addrs = addrs;
        let mut replaced = None;
        if let Some(slot) = server.links.iter().position(|l| l.index == reg.link_index) {
            let old = server.links.remove(slot);
            old.cancel.cancel();
            replaced = Some(old.id);
        }
        server.links.push(link);
        server.links.sort_by_key(|l| l.index);
        Ok(Admitted {
            server_number: server.number,
            replaced,
        })
    }

    /// Forgets a link that ended (if it is still the registered one); a server without
    /// links is forgotten too. Returns true when the link was registered.
    pub fn remove_link(&self, instance: u64, link_id: u32) -> bool {
        let mut servers = self.lock();
        let Some(i) = servers.iter().position(|s| s.instance == instance) else {
            return false;
        };
        let before = servers[i].links.len();
        servers[i].links.retain(|l| l.id != link_id);
        let removed = servers[i].links.len() != before;
        if servers[i].links.is_empty() {
            servers.remove(i);
        }
        removed
    }

    /// Ends every link (shutdown).
    pub fn cancel_all(&self) {
        for server in self.lock().iter() {
            for link in &server.links {
                link.cancel.cancel();
            }
        }
    }

    /// Registered servers now.
    pub fn server_count(&self) -> usize {
        self.lock().len()
    }

    /// Registered servers, links and their open streams, for `/metrics`.
    pub fn metrics_snapshot(&self) -> crate::metrics::ri::Snapshot {
        let servers = self.lock();
        crate::metrics::ri::Snapshot {
            registered_servers: Some(servers.len()),
            links: servers
                .iter()
                .flat_map(|s| s.links.iter())
                .map(|l| (u64::from(l.id), l.streams.open()))
                .collect(),
        }
    }

    /// The least-loaded live link of the server owning `ip:port` (fewest open streams, then
    /// fewest streams ever), not among `tried`, with a stream counted on it already: the
    /// choice and the count happen under the lock, so a burst of opens spreads.
    fn pick(&self, ip: IpAddr, port: u16, tried: &[u32]) -> Option<(LinkEntry, StreamGuard)> {
        let ip = canonical(ip);
        let servers = self.lock();
        let link = servers
            .iter()
            .find(|s| s.reg_service == port && s.has_ip(ip))?
            .links
            .iter()
            .filter(|l| !l.cancel.is_cancelled() && !tried.contains(&l.id))
            .min_by_key(|l| (l.streams.open(), l.streams.total()))?
            .clone();
        let guard = link.streams.guard();
        Some((link, guard))
    }

    /// `-l` lines in the spirit of SAP's RI client block.
    pub fn info_lines(&self) -> Vec<String> {
        let servers = self.lock();
        let mut out = vec![format!(
            "srv no {} (max {}), connPool {}",
            servers.len(),
            self.max_servers,
            self.pool_size
        )];
        for s in servers.iter() {
            let addrs: Vec<String> = s.addrs.iter().map(ToString::to_string).collect();
            out.push(format!(
                "- server [{}] instance {:016x}, reg port {}, reg addrs {} [{}]",
                s.number,
                s.instance,
                s.reg_service,
                addrs.len(),
                addrs.join(", ")
            ));
            out.push(format!(
                "  conns {} (CONN ID  SLOT  PEER  STREAMS  TOTAL)",
                s.links.len()
            ));
            for l in &s.links {
                out.push(format!(
                    "  {:>4}  {:>4}  {}  {}  {}",
                    l.id,
                    l.index,
                    l.peer,
                    l.streams.open(),
                    l.streams.total()
                ));
            }
        }
        out
    }
}

impl RegisteredHops for Registry {
    fn lookup(&self, host: &str, port: u16) -> Option<IpAddr> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let as_ip = bare.parse::<IpAddr>().ok().map(canonical);
        let servers = self.lock();
        servers
            .iter()
            .filter(|s| s.reg_service == port && !s.links.is_empty())
            .find_map(|s| match as_ip {
                Some(ip) if s.has_ip(ip) => Some(ip),
                Some(_) => None,
                None => s
                    .addrs
                    .iter()
                    .any(|a| matches!(a, RegAddr::Name(n) if n.eq_ignore_ascii_case(bare)))
                    .then(|| s.handle_ip())
                    .flatten(),
            })
    }

    fn peer_snc_name(&self, addr: IpAddr, port: u16) -> Option<String> {
        let ip = canonical(addr);
        let servers = self.lock();
        let server = servers
            .iter()
            .find(|s| s.reg_service == port && s.has_ip(ip))?;
        // Every link of the server must carry the same name (each was checked on
        // registration); anything else counts as no name.
        let first = server.links.first()?.snc_name.clone()?;
        server
            .links
            .iter()
            .all(|l| l.snc_name.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    fn open(&self, addr: IpAddr, port: u16) -> BoxFuture<'_, io::Result<BoxConn>> {
        Box::pin(async move {
            let mut tried = Vec::new();
            let mut last = io::Error::new(
                io::ErrorKind::NotConnected,
                format!("no live reverse-invoke link to {addr}:{port}"),
            );
            // A link that died since the lookup costs one try; the pool bounds the tries.
            while let Some((link, guard)) = self.pick(addr, port, &tried) {
                tried.push(link.id);
                match link.opener.open().await {
                    Ok(stream) => {
                        tracing::debug!(link = link.id, %addr, port, "reverse-invoke stream opened");
                        let conn: BoxConn = Box::new(MuxStream::with_guard(stream, guard));
                        return Ok(conn);
                    }
                    Err(err) => last = err,
                }
            }
            Err(last)
        })
    }
}

/// Shared handle used by the client task and the router.
pub type SharedRegistry = Arc<Registry>;

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
