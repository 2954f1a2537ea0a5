//! The DMZ router's registered LAN routers and their links, and the [`RegisteredHops`] the
//! routing code asks: which next hops are pseudo addresses, and a new stream to one.
//!
//! All decisions (admit, replace, conflict, choose a link and count the new stream on it)
//! happen under one lock, so a registration either replaces a stale link atomically or is
//! refused, and a burst of opens can never put more than [`SESSIONS_PER_LINK`] streams on a
//! link; the lock is never held across an await. [`choose_link`] is the one place a link
//! is chosen.
//!
//! Several LAN routers may register one pseudo address (active-active) when the DMZ router
//! allows `max_servers` >= 2 and every one of them is vetted (by a non-empty `ACE` list or,
//! with `-K`, a `KT` line naming its certificate); [`choose_link`] then gives each new
//! stream to the instance with the fewest open sessions, in turn among equals.
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

use super::carrier::{Kind, Opener};
use super::link::{RegAddr, Register};
use super::mux::{StreamCount, SESSIONS_PER_LINK};
use crate::ni::rterr::rc;
use crate::router::conn::{BoxConn, BoxFuture, RegisteredHops};
use crate::router::errors::RouteFailure;
use crate::router::selfaddr::canonical;

mod choice;
mod info;

pub use choice::{NoLink, OpenRefusal};

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
    /// The multiplexer it runs (the version of its registration).
    pub kind: Kind,
}

/// One registered LAN router.
#[derive(Debug)]
struct Server {
    instance: u64,
    number: u16,
    reg_service: u16,
    addrs: Vec<RegAddr>,
    links: Vec<LinkEntry>,
    /// Its latest registration was vetted (see [`Registry::register_vetted`]): it may
    /// share its pseudo addresses with other vetted instances.
    vetted: bool,
    /// When [`choose_link`] last gave it a stream (a tick of [`State::picks`]; 0: never):
    /// among instances with as many sessions, the one served longest ago goes next.
    last_pick: u64,
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

    /// Sessions open over its live links.
    fn sessions(&self) -> usize {
        self.live_links().map(|l| l.streams.open()).sum()
    }

    fn live_links(&self) -> impl Iterator<Item = &LinkEntry> {
        self.links.iter().filter(|l| !l.cancel.is_cancelled())
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
    /// Streams given out so far: the clock of [`Server::last_pick`].
    picks: u64,
}

impl State {
    /// Remembers the addresses of server `index` as seen at `now`.
    fn remember(&mut self, index: usize, now: SystemTime) {
        let State { servers, known, .. } = self;
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

    /// Indices of the servers registering `ip:port` (several when active-active).
    fn holders(&self, ip: IpAddr, port: u16) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| self.servers[i].reg_service == port && self.servers[i].has_ip(ip))
            .collect()
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
    /// The registrant is not vetted: it never shares a pseudo address.
    pub fn register(
        &self,
        reg: &Register,
        peer: SocketAddr,
        link: LinkEntry,
    ) -> Result<Admitted, RouteFailure> {
        self.register_vetted(reg, peer, link, false)
    }

    /// [`Registry::register`] for a registrant that may be `vetted`: its source is permitted
    /// by a non-empty `ACE` list, or its certificate name by a `KT` line for what it
    /// registers. With `max_servers` >= 2, vetted instances may register the same pseudo
    /// address (active-active); a conflict with or by an unvetted one is refused as ever.
    pub fn register_vetted(
        &self,
        reg: &Register,
        peer: SocketAddr,
        link: LinkEntry,
        vetted: bool,
    ) -> Result<Admitted, RouteFailure> {
        let admitted = self.admit(reg, peer, link, vetted)?;
        self.registered.notify_waiters();
        Ok(admitted)
    }

    fn admit(
        &self,
        reg: &Register,
        peer: SocketAddr,
        link: LinkEntry,
        vetted: bool,
    ) -> Result<Admitted, RouteFailure> {
        if reg.link_index >= self.pool_size {
            return Err(RouteFailure::registration_refused(
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
        let mut holders = servers.iter().filter(|s| {
            s.instance != reg.instance && s.reg_service == reg.reg_service && s.overlaps(&addrs)
        });
        let shared_ok = self.max_servers >= 2 && vetted && holders.clone().all(|s| s.vetted);
        if let Some(other) = holders.next().filter(|_| !shared_ok) {
            return Err(RouteFailure::registration_refused(
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
                    return Err(RouteFailure::registration_refused(
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
                    vetted,
                    last_pick: 0,
                });
                servers.len() - 1
            }
        };
        let server = &mut servers[index];
        // The latest registration of an instance says what it serves.
        server.reg_service = reg.reg_service;
        server.addrs = addrs;
        server.vetted = vetted;
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
                .map(|l| crate::metrics::ri::LinkState {
                    dmz: String::new(),
                    link: u64::from(l.id),
                    streams: l.streams.open(),
                })
                .collect(),
        }
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
        // With several instances on one address, the first one's name: a KT line naming
        // the address admitted only LAN routers with its name, so any of them answers.
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
                                let conn: BoxConn = Box::new(stream.counted(guard));
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

/// Whether a registrant is vetted to share a pseudo address: its source passed a non-empty
/// `ACE` list (an empty list lets anyone register, so it vets no one), or `KT` lines name
/// its certificate for what it registers.
pub fn vetted(ace: &[super::ace::Ace], source: IpAddr, kt_vetted: bool) -> bool {
    (!ace.is_empty() && super::ace::ace_permits(ace, source)) || kt_vetted
}

/// Shared handle used by the client task and the router.
pub type SharedRegistry = Arc<Registry>;

#[cfg(test)]
mod tests;
