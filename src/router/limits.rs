//! Caps on what peers can hold before their route stands (hostile inputs H50, H54, H55,
//! docs/hardening.md): connections without a route, globally and per source address (the
//! per-source cap applies once half the global places are taken), with a small reserve for
//! local peers (the operator's admin client) when the global cap is reached.
//!
//! Every gate is a semaphore or a counter behind a permit whose `Drop` gives the place back,
//! so a session that ends in any way frees what it held. The route-phase gate is one part of
//! the router's [`Admission`](super::admission::Admission); callers go through that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::selfaddr;

/// Places kept for local peers when the global pre-route cap is reached.
pub const LOCAL_RESERVE: usize = 4;

/// Why a new connection may not enter the route phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRefusal {
    /// This source already has its maximum of connections without a route.
    PerSource(usize),
    /// All places for connections without a route are taken.
    Global(usize),
}

/// The gate of the route phase: global and per-source caps on connections without a route.
pub struct PendingGate {
    global: Arc<Semaphore>,
    global_max: usize,
    local_reserve: Arc<Semaphore>,
    per_source_max: usize,
    per_source: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in the route phase; dropping it frees the place.
pub struct PendingPermit {
    gate: Arc<PendingGate>,
    source: IpAddr,
    _place: OwnedSemaphorePermit,
}

impl PendingGate {
    /// A gate for `global` connections in all, `per_source` from one address (both at least 1).
    pub fn new(global: usize, per_source: usize) -> Arc<Self> {
        let global = global.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            global: Arc::new(Semaphore::new(global)),
            global_max: global,
            local_reserve: Arc::new(Semaphore::new(LOCAL_RESERVE)),
            per_source_max: per_source.max(1),
            per_source: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `source` (IPv4-mapped IPv6 counts as IPv4), or
    /// says which cap is reached. Never waits.
    pub fn try_enter(self: &Arc<Self>, source: IpAddr) -> Result<PendingPermit, PendingRefusal> {
        let source = selfaddr::canonical(source);
        let mut counts = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.get(&source).copied().unwrap_or(0);
        // The per-source cap bites once the route phase is crowded (half its places
        // taken): a burst from one address behind NAT is served while there is room, and
        // a flood from one address still leaves the other half to everyone else.
        let crowded = self.global.available_permits() <= self.global_max / 2;
        if crowded && count >= self.per_source_max {
            return Err(PendingRefusal::PerSource(self.per_source_max));
        }
        let place = match Arc::clone(&self.global).try_acquire_owned() {
            Ok(place) => place,
            // Local peers (the admin client, monitoring on the host) get a few places more.
            Err(_) if selfaddr::is_local(source) => Arc::clone(&self.local_reserve)
                .try_acquire_owned()
                .map_err(|_| PendingRefusal::Global(self.global_max))?,
            Err(_) => return Err(PendingRefusal::Global(self.global_max)),
        };
        // The map holds at most one entry per held place, so it is bounded by the caps.
        counts.insert(source, count + 1);
        Ok(PendingPermit {
            gate: Arc::clone(self),
            source,
            _place: place,
        })
    }

    /// Connections without a route now.
    pub fn pending(&self) -> usize {
        let counts = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        counts.values().sum()
    }
}

impl Drop for PendingPermit {
    fn drop(&mut self) {
        let mut counts = self
            .gate
            .per_source
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

/// The caps in force, as text lines of the info reply (`saprouter -l`).
pub fn info_lines(shared: &super::state::Shared) -> Vec<String> {
    let c = &shared.config();
    let log = match c.max_log_size {
        Some(bytes) => format!("{bytes} bytes per file (-J)"),
        None => "unlimited (no -J)".to_string(),
    };
    vec![
        format!(
            "Max. clients        : {} (-C), {} in use",
            c.max_clients,
            shared.admission().clients_in_use()
        ),
        format!(
            "Route phase limits  : {} ms (-W); {} connections (--max-pending), {} per source (--max-pending-per-source), {} now",
            c.timeout.as_millis(),
            c.pending_limit(),
            c.max_pending_per_source,
            shared.admission().in_route_phase()
        ),
        super::proxy::info_line(shared),
        format!(
            "Outbound connects   : {} at once (--max-connecting)",
            c.max_connecting
        ),
        match shared.admission().penalty_policy() {
            Some(p) => format!(
                "Penalties           : {} refusals in {} s close an address for {} s, doubling up to 16x (--penalty); {} addresses tracked",
                p.failures,
                p.window.as_secs(),
                p.window.as_secs(),
                shared.admission().penalties_tracked()
            ),
            None => "Penalties           : off (--penalty)".to_string(),
        },
        format!(
            "Relay queues        : {} bytes per client (-B {}, -Q {})",
            c.relay_buffer(),
            c.max_queued_packets,
            c.max_queue_bytes
        ),
        format!("Log size            : {log}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_source_cap_leaves_room_for_others() {
        let gate = PendingGate::new(4, 2);
        let a1 = gate.try_enter(ip("192.0.2.1")).unwrap();
        let _a2 = gate.try_enter(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            gate.try_enter(ip("192.0.2.1")).err(),
            Some(PendingRefusal::PerSource(2))
        );
        let _b = gate.try_enter(ip("192.0.2.2")).unwrap();
        assert_eq!(gate.pending(), 3);
        drop(a1);
        let _a3 = gate.try_enter(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn per_source_cap_waits_for_a_crowd() {
        let gate = PendingGate::new(10, 2);
        let held: Vec<_> = (0..5)
            .map(|_| gate.try_enter(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(
            gate.try_enter(ip("192.0.2.1")).err(),
            Some(PendingRefusal::PerSource(2))
        );
        assert!(gate.try_enter(ip("192.0.2.2")).is_ok());
        drop(held);
    }

    #[test]
    fn global_cap_keeps_a_reserve_for_local_peers() {
        let gate = PendingGate::new(2, 5);
        let _x = gate.try_enter(ip("192.0.2.1")).unwrap();
        let _y = gate.try_enter(ip("192.0.2.2")).unwrap();
        assert_eq!(
            gate.try_enter(ip("192.0.2.3")).err(),
            Some(PendingRefusal::Global(2))
        );
        let locals: Vec<_> = (0..LOCAL_RESERVE)
            .map(|_| gate.try_enter(ip("127.0.0.1")).unwrap())
            .collect();
        assert!(gate.try_enter(ip("127.0.0.9")).is_err());
        drop(locals);
        assert_eq!(gate.pending(), 2);
        assert!(gate.try_enter(ip("127.0.0.1")).is_ok());
    }
}
