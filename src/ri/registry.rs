//! The DMZ router's registered LAN routers and their links, and the [`RegisteredHops`] the
//! routing code asks: which next hops are pseudo addresses, and a new stream to one.
//!
//! All decisions (admit, replace, conflict, choose a link and count the new stream on it)
//! happen under one lock, so a registration either replaces a stale link atomically or is
//! refused, and a burst of opens can never put more than [`SESSIONS_PER_LINK`] streams on a
//! link; the lock is never held across an await. [`choose_link`] is the one place a link
//! is chosen.
//!
//! A pseudo address stays known after its LAN router's last link ended (at most
//! [`MAX_KNOWN`] of them): a route to it is then refused with the server's state, never
//! dialled as an ordinary host.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::link::{RegAddr, Register};
use super::mux::{MuxStream, Opener, StreamCount, StreamGuard, SESSIONS_PER_LINK};
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

    /// The SNC name every link of the server carries (each was checked on registration);
    /// links with different names, or none, count as no name.
    fn snc_name(&self) -> Option<String> {
        let first = self.links.first()?.snc_name.clone()?;
        self.links
            .iter()
            .all(|l| l.snc_name.as_deref() == Some(first.as_str()))
            .then_some(first)
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

/// Pseudo addresses remembered since start (registered now or before), at most this many;
/// the one seen longest ago makes room for a new one.
pub const MAX_KNOWN: usize = 4096;
/// While every live link is full and the pool has room, how often a waiting open looks
/// again (a link that registers wakes it at once; this catches streams that closed).
const CAPACITY_POLL: Duration = Duration::from_millis(100);

/// A pseudo address registered since start.
#[derive(Debug, Clone)]
struct Known {
    /// The server that registered it last.
    number: u16,
    /// The address a route naming it by host name is checked against.
    handle_ip: Option<IpAddr>,
    /// Its server's SNC name, so a `KT` line still matches while it is away and the user
    /// learns that the server is away rather than about a name.
    snc_name: Option<String>,
    /// When it was last registered, or when its server's last link ended.
    last_seen: SystemTime,
}

/// The key of a [`Known`] address: the port and the address (a name in lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct KnownKey {
    port: u16,
    addr: RegAddr,
}

impl KnownKey {
    fn new(port: u16, addr: &RegAddr) -> Self {
        let addr = match addr {
            RegAddr::Ip(ip) => RegAddr::Ip(canonical(*ip)),
            RegAddr::Name(n) => RegAddr::Name(n.to_ascii_lowercase()),
        };
        Self { port, addr }
    }
}

/// Everything behind the registry's lock.
#[derive(Debug, Default)]
struct State {
    servers: Vec<Server>,
    known: HashMap<KnownKey, Known>,
}

impl State {
    /// Remembers the addresses of server `index` as seen at `now`.
    fn remember(&mut self, index: usize, now: SystemTime) {
        let State { servers, known } = self;
        let server = &servers[index];
        let handle_ip = server.handle_ip();
        let snc_name = server.snc_name();
        for addr in &server.addrs {
            let key = KnownKey::new(server.reg_service, addr);
            // A server losing its last link has no name left to read: keep the one known.
            let snc_name = match (&snc_name, known.get(&key)) {
                (None, Some(before)) if server.links.is_empty() => before.snc_name.clone(),
                _ => snc_name.clone(),
            };
            known.insert(
                key,
                Known {
                    number: server.number,
                    handle_ip,
                    snc_name,
                    last_seen: now,
                },
            );
        }
        while known.len() > MAX_KNOWN {
            let oldest = known
                .iter()
                .min_by_key(|(_, k)| k.last_seen)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => known.remove(&key),
                None => break,
            };
        }
    }

    fn server_of(&self, ip: IpAddr, port: u16) -> Option<&Server> {
        self.servers
            .iter()
            .find(|s| s.reg_service == port && s.has_ip(ip))
    }
}

/// Why no link can take a new stream (see [`choose_link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLink {
    /// The address was never registered since start.
    Unknown,
    /// Server `number` registered it before; no live link now serves it.
    Gone {
        /// The server that registered it last.
        number: u16,
        /// When it was last registered, or its server's last link ended.
        last_seen: SystemTime,
        /// The server is still registered, for other addresses.
        still_live: bool,
    },
    /// Every live link of server `number` carries [`SESSIONS_PER_LINK`] streams.
    Full {
        /// The server.
        number: u16,
        /// Its live links.
        links: usize,
    },
    /// Every live link of server `number` below the cap was tried and failed.
    Failed {
        /// The server.
        number: u16,
    },
}

/// The link a new stream to `ip:port` goes on: among the live links of the server that
/// registered the address, those not in `tried` and below [`SESSIONS_PER_LINK`] streams,
/// the one with the fewest open streams, then the fewest ever (so a link that came up on
/// demand takes the next streams at once).
///
/// This is the one place a link is chosen. A later choice among several servers for one
/// pseudo address (or among the links of several DMZ routers) belongs here.
fn choose_link<'a>(
    state: &'a State,
    ip: IpAddr,
    port: u16,
    tried: &[u32],
) -> Result<&'a LinkEntry, NoLink> {
    let ip = canonical(ip);
    let Some(server) = state.server_of(ip, port) else {
        return Err(
            match state.known.get(&KnownKey::new(port, &RegAddr::Ip(ip))) {
                Some(k) => NoLink::Gone {
                    number: k.number,
                    last_seen: k.last_seen,
                    still_live: state.servers.iter().any(|s| s.number == k.number),
                },
                None => NoLink::Unknown,
            },
        );
    };
    let live: Vec<&LinkEntry> = server
        .links
        .iter()
        .filter(|l| !l.cancel.is_cancelled())
        .collect();
    let untried: Vec<&LinkEntry> = live
        .iter()
        .copied()
        .filter(|l| !tried.contains(&l.id))
        .collect();
    let best = untried
        .iter()
        .copied()
        .filter(|l| l.streams.open() < SESSIONS_PER_LINK)
        .min_by_key(|l| (l.streams.open(), l.streams.total()));
    match best {
        Some(link) => Ok(link),
        None if live.is_empty() => Err(NoLink::Gone {
            number: server.number,
            last_seen: SystemTime::now(),
            still_live: false,
        }),
        None if !untried.is_empty() => Err(NoLink::Full {
            number: server.number,
            links: live.len(),
        }),
        None => Err(NoLink::Failed {
            number: server.number,
        }),
    }
}

/// Why no stream could be opened to a registered pseudo address: the `NI_RTERR` the user
/// gets. It travels inside the `io::Error` of [`RegisteredHops::open`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct OpenRefusal {
    /// Return code.
    pub rc: i32,
    /// Detail text (`NiRIOpen: ...`).
    pub detail: String,
}

impl OpenRefusal {
    /// The refusal `err` carries, if any.
    pub fn of(err: &io::Error) -> Option<&OpenRefusal> {
        err.get_ref()?.downcast_ref()
    }
}

/// The registered LAN routers.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    max_servers: usize,
    pool_size: u16,
    next_link_id: AtomicU32,
    next_number: AtomicU32,
    /// Woken when a link registers: a waiting open may find room on it.
    registered: Notify,
    /// How long an open waits for the LAN router's next link while every live link is full
    /// and its pool has room.
    capacity_wait: Duration,
}

impl Registry {
    /// An empty registry for `max_servers` servers of `pool_size` links each. An open that
    /// finds every link full is refused at once (see [`Registry::with_capacity_wait`]).
    pub fn new(max_servers: usize, pool_size: u16) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_servers,
            pool_size,
            next_link_id: AtomicU32::new(1),
            next_number: AtomicU32::new(0),
            registered: Notify::new(),
            capacity_wait: Duration::ZERO,
        }
    }

    /// Lets an open wait up to `wait` for the LAN router's next link when every live link
    /// is full and the pool has room (the router passes part of `-W`).
    pub fn with_capacity_wait(mut self, wait: Duration) -> Self {
        self.capacity_wait = wait;
        self
    }

    /// Links each server is told to keep.
    pub fn pool_size(&self) -> u16 {
        self.pool_size
    }

    /// Sessions one LAN router can carry: its pool times [`SESSIONS_PER_LINK`].
    pub fn capacity(&self) -> usize {
        usize::from(self.pool_size) * SESSIONS_PER_LINK
    }

    /// A fresh link id.
    pub fn next_link_id(&self) -> u32 {
        self.next_link_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let admitted = self.admit(reg, peer, link)?;
        self.registered.notify_waiters();
        Ok(admitted)
    }

    fn admit(
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
        let mut state = self.lock();
        let servers = &mut state.servers;
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
        let server_number = server.number;
        state.remember(index, SystemTime::now());
        Ok(Admitted {
            server_number,
            replaced,
        })
    }

    /// Forgets a link that ended (if it is still the registered one); a server without
    /// links is forgotten too (its addresses stay known). Returns true when the link was
    /// registered.
    pub fn remove_link(&self, instance: u64, link_id: u32) -> bool {
        let mut state = self.lock();
        let Some(i) = state.servers.iter().position(|s| s.instance == instance) else {
            return false;
        };
        let links = &mut state.servers[i].links;
        let before = links.len();
        links.retain(|l| l.id != link_id);
        let removed = links.len() != before;
        if links.is_empty() {
            state.remember(i, SystemTime::now());
            state.servers.remove(i);
        }
        removed
    }

    /// Ends every link (shutdown).
    pub fn cancel_all(&self) {
        for server in self.lock().servers.iter() {
            for link in &server.links {
                link.cancel.cancel();
            }
        }
    }

    /// Registered servers now.
    pub fn server_count(&self) -> usize {
        self.lock().servers.len()
    }

    /// Registered servers, links and their open streams, for `/metrics`.
    pub fn metrics_snapshot(&self) -> crate::metrics::ri::Snapshot {
        let state = self.lock();
        crate::metrics::ri::Snapshot {
            registered_servers: Some(state.servers.len()),
            links: state
                .servers
                .iter()
                .flat_map(|s| s.links.iter())
                .map(|l| (u64::from(l.id), l.streams.open()))
                .collect(),
        }
    }

    /// The link [`choose_link`] picks, with the new stream already counted on it: the
    /// choice and the count happen under the lock, so a burst of opens spreads and never
    /// exceeds the cap.
    fn pick(
        &self,
        ip: IpAddr,
        port: u16,
        tried: &[u32],
    ) -> Result<(LinkEntry, StreamGuard), NoLink> {
        let state = self.lock();
        let link = choose_link(&state, ip, port, tried)?;
        let guard = link.streams.guard();
        Ok((link.clone(), guard))
    }

    /// The user's refusal for `why`; `waited` when an open waited for a further link.
    fn refusal(
        &self,
        ip: IpAddr,
        port: u16,
        why: NoLink,
        waited: Option<Duration>,
        last_error: Option<io::Error>,
    ) -> OpenRefusal {
        let target = SocketAddr::new(canonical(ip), port);
        let (rc, detail) = match why {
            NoLink::Unknown => (
                rc::NIEROUT_CONN_REFUSED,
                format!("NiRIOpen: {target} is not a registered reverse-invoke address"),
            ),
            NoLink::Gone {
                number,
                last_seen,
                still_live: false,
            } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target} has no live link (last seen {})",
                    super::ctime(last_seen)
                ),
            ),
            NoLink::Gone {
                number, last_seen, ..
            } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] no longer registers {target} (last seen {})",
                    super::ctime(last_seen)
                ),
            ),
            NoLink::Full { number, links } => (
                rc::NIEROUT_OVERFLOW,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target} is full ({links} of {} links, {SESSIONS_PER_LINK} streams each){}",
                    self.pool_size,
                    waited.map_or(String::new(), |w| format!(
                        "; no further link within {:.1}s",
                        w.as_secs_f64()
                    ))
                ),
            ),
            NoLink::Failed { number } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target}: no link opened a stream ({})",
                    last_error.map_or("link closed".to_string(), |e| e.to_string())
                ),
            ),
        };
        OpenRefusal { rc, detail }
    }

    /// `-l` lines in the spirit of SAP's RI client block.
    pub fn info_lines(&self) -> Vec<String> {
        let state = self.lock();
        let mut out = vec![format!(
            "srv no {} (max {}), connPool {}, streams per link {SESSIONS_PER_LINK}, capacity per server {}",
            state.servers.len(),
            self.max_servers,
            self.pool_size,
            self.capacity()
        )];
        for s in state.servers.iter() {
            let addrs: Vec<String> = s.addrs.iter().map(ToString::to_string).collect();
            let open: usize = s.links.iter().map(|l| l.streams.open()).sum();
            out.push(format!(
                "- server [{}] instance {:016x}, reg port {}, reg addrs {} [{}], streams {open} of {}",
                s.number,
                s.instance,
                s.reg_service,
                addrs.len(),
                addrs.join(", "),
                s.links.len() * SESSIONS_PER_LINK
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
        // Addresses whose server is away: routes to them are refused, not dialled.
        let mut away: Vec<(&KnownKey, &Known)> = state
            .known
            .iter()
            .filter(|(key, _)| {
                !state.servers.iter().any(|s| {
                    s.reg_service == key.port && s.addrs.iter().any(|a| same_addr(a, &key.addr))
                })
            })
            .collect();
        away.sort_by_key(|(_, k)| std::cmp::Reverse(k.last_seen));
        const SHOWN: usize = 16;
        for (key, k) in away.iter().take(SHOWN) {
            out.push(format!(
                "- away: {}:{} (server [{}], last seen {})",
                key.addr,
                key.port,
                k.number,
                super::ctime(k.last_seen)
            ));
        }
        if away.len() > SHOWN {
            out.push(format!("- away: {} more", away.len() - SHOWN));
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
        let state = self.lock();
        let live = state
            .servers
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
            });
        if live.is_some() {
            return live;
        }
        // Registered before: still a pseudo address. `open` refuses it; it is never dialled.
        if bare.is_empty() {
            return None;
        }
        let addr = match as_ip {
            Some(ip) => RegAddr::Ip(ip),
            None => RegAddr::Name(bare.to_string()),
        };
        let known = state.known.get(&KnownKey::new(port, &addr))?;
        as_ip.or(known.handle_ip)
    }

    fn peer_snc_name(&self, addr: IpAddr, port: u16) -> Option<String> {
        let ip = canonical(addr);
        let state = self.lock();
        match state.server_of(ip, port) {
            Some(server) => server.snc_name(),
            None => state
                .known
                .get(&KnownKey::new(port, &RegAddr::Ip(ip)))?
                .snc_name
                .clone(),
        }
    }

    fn open(&self, addr: IpAddr, port: u16) -> BoxFuture<'_, io::Result<BoxConn>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut tried = Vec::new();
            let mut last_error = None;
            loop {
                // Armed before the look, so a link registering in between is not missed.
                let registered = self.registered.notified();
                tokio::pin!(registered);
                registered.as_mut().enable();
                match self.pick(addr, port, &tried) {
                    Ok((link, guard)) => {
                        // A link that died since it was chosen costs one try.
                        tried.push(link.id);
                        match link.opener.open().await {
                            Ok(stream) => {
                                tracing::debug!(link = link.id, %addr, port, "reverse-invoke stream opened");
                                let conn: BoxConn = Box::new(MuxStream::with_guard(stream, guard));
                                return Ok(conn);
                            }
                            Err(err) => last_error = Some(err),
                        }
                    }
                    // Every live link is full but the LAN router may open another: wait
                    // for it (it opens its next link long before this happens, so this
                    // covers only a burst faster than a link's set-up).
                    Err(NoLink::Full { links, .. })
                        if links < usize::from(self.pool_size)
                            && started.elapsed() < self.capacity_wait =>
                    {
                        let left = self.capacity_wait.saturating_sub(started.elapsed());
                        tokio::select! {
                            _ = registered => {}
                            _ = tokio::time::sleep(CAPACITY_POLL.min(left)) => {}
                        }
                    }
                    Err(why) => {
                        let waited = matches!(why, NoLink::Full { links, .. } if links < usize::from(self.pool_size))
                            .then(|| started.elapsed())
                            .filter(|w| !w.is_zero() && !self.capacity_wait.is_zero());
                        let refusal = self.refusal(addr, port, why, waited, last_error);
                        tracing::debug!(%addr, port, detail = %refusal.detail, "reverse-invoke stream refused");
                        return Err(io::Error::other(refusal));
                    }
                }
            }
        })
    }
}

/// Shared handle used by the client task and the router.
pub type SharedRegistry = Arc<Registry>;

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
