//! The admission gate: every place a peer can hold before and while it is served, in one
//! type. A connection is admitted at accept (penalty check, client-table slot, place in
//! the route phase), a route takes a second slot for its outbound side, an outbound
//! connect waits for one of the `--max-connecting` places, a refusal answer needs one of a
//! few writer places, and refusals a peer causes count towards its penalty.
//!
//! Every place is a permit whose `Drop` gives it back, so a connection that ends in any way
//! frees what it held; the counters the info reply (`-l`) and the metrics show are read
//! from the same semaphores, so they cannot drift from what is held.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::RouterConfig;
use super::limits::{PendingGate, PendingPermit, PendingRefusal, LOCAL_RESERVE};
use super::penalty::{Penalties, PenaltyPolicy, Recorded};
use super::selfaddr;

/// Refusal replies written at once; beyond this a refused connection is just closed.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// The caps the gate enforces (from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client-table slots (`-C`); a routed session holds two.
    pub max_clients: usize,
    /// Connections without a route, in all (`--max-pending`).
    pub max_pending: usize,
    /// Connections without a route from one address (`--max-pending-per-source`).
    pub max_pending_per_source: usize,
    /// Outbound connects in progress at once (`--max-connecting`).
    pub max_connecting: usize,
    /// Per-source penalties (`--penalty`); `None` turns them off.
    pub penalty: Option<PenaltyPolicy>,
}

impl Limits {
    /// The caps `config` sets.
    pub fn of(config: &RouterConfig) -> Self {
        Self {
            max_clients: config.max_clients,
            max_pending: config.pending_limit(),
            max_pending_per_source: config.max_pending_per_source,
            max_connecting: config.max_connecting,
            penalty: config.penalty,
        }
    }
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turned {
    /// Its address serves a penalty: closed without a reply.
    Penalised,
    /// The client table (`-C`) is full; the number is its size.
    ClientTableFull(usize),
    /// The route phase has no place for it.
    RoutePhaseFull(PendingRefusal),
}

/// What an admitted connection holds until it ends.
pub struct Admitted {
    /// Its client-table slot.
    pub slot: ClientSlot,
    /// Its place in the route phase; `None` for a balancer's connection, whose client is
    /// admitted to the route phase once its PROXY header names it.
    pub pending: Option<PendingPermit>,
}

/// One client-table slot (`-C`); dropping it frees the slot.
#[derive(Debug)]
pub struct ClientSlot {
    _held: OwnedSemaphorePermit,
}

/// One of the `--max-connecting` places, held while an outbound connect is in progress.
#[derive(Debug)]
pub struct ConnectPlace {
    _held: Option<OwnedSemaphorePermit>,
}

/// One of the [`MAX_REFUSALS_IN_FLIGHT`] places, held while a refusal answer is written.
#[derive(Debug)]
pub struct RefusalPlace {
    _held: OwnedSemaphorePermit,
}

/// The admission state of one router.
pub struct Admission {
    max_clients: usize,
    slots: Arc<Semaphore>,
    /// Client-table places kept for local peers when `slots` is exhausted (admin access).
    local_slots: Arc<Semaphore>,
    pending: Arc<PendingGate>,
    connecting: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    penalties: Penalties,
}

impl Admission {
    /// A gate with every place free.
    pub fn new(limits: Limits) -> Self {
        Self {
            max_clients: limits.max_clients,
            slots: Arc::new(Semaphore::new(
                limits.max_clients.clamp(1, Semaphore::MAX_PERMITS),
            )),
            local_slots: Arc::new(Semaphore::new(LOCAL_RESERVE)),
            pending: PendingGate::new(limits.max_pending, limits.max_pending_per_source),
            connecting: Arc::new(Semaphore::new(
                limits.max_connecting.clamp(1, Semaphore::MAX_PERMITS),
            )),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT)),
            penalties: Penalties::new(limits.penalty),
        }
    }

    /// Admits a connection accepted from `peer`: not under penalty, a client-table slot
    /// (a full table keeps a few for local peers, so the operator's admin client still gets
    /// in), and a place in the route phase. A balancer's connection (`via_balancer`) is not
    /// the client it carries: it takes only its slot here, from the common pool; penalty and
    /// route phase wait for the client its header names ([`Admission::enter_route_phase`]).
    /// Never waits.
    pub fn admit(&self, peer: IpAddr, via_balancer: bool) -> Result<Admitted, Turned> {
        if !via_balancer && self.is_penalised(peer) {
            return Err(Turned::Penalised);
        }
        let local = !via_balancer && selfaddr::is_local(peer);
        let slot = self
            .take_client_slot()
            .or_else(|| {
                local
                    .then(|| Arc::clone(&self.local_slots).try_acquire_owned().ok())
                    .flatten()
                    .map(|_held| ClientSlot { _held })
            })
            .ok_or(Turned::ClientTableFull(self.max_clients))?;
        let pending = if via_balancer {
            None
        } else {
            Some(
                self.enter_route_phase(peer)
                    .map_err(Turned::RoutePhaseFull)?,
            )
        };
        Ok(Admitted { slot, pending })
    }

    /// A place in the route phase for a connection from `source` (IPv4-mapped IPv6 counts
    /// as IPv4), or which cap is reached. Never waits.
    pub fn enter_route_phase(&self, source: IpAddr) -> Result<PendingPermit, PendingRefusal> {
        self.pending.try_enter(source)
    }

    /// A client-table slot from the common pool (the outbound side of a route, a stream a
    /// DMZ router opens), or `None` when the table is full. Never waits.
    pub fn take_client_slot(&self) -> Option<ClientSlot> {
        Arc::clone(&self.slots)
            .try_acquire_owned()
            .ok()
            .map(|_held| ClientSlot { _held })
    }

    /// Waits for one of the `--max-connecting` places (the caller bounds the wait by the
    /// route's deadline).
    pub async fn wait_to_connect(&self) -> ConnectPlace {
        ConnectPlace {
            _held: Arc::clone(&self.connecting).acquire_owned().await.ok(),
        }
    }

    /// A place to write a refusal answer, or `None` when [`MAX_REFUSALS_IN_FLIGHT`] are
    /// being written (the connection is then closed without one).
    pub fn refusal_place(&self) -> Option<RefusalPlace> {
        Arc::clone(&self.refusals)
            .try_acquire_owned()
            .ok()
            .map(|_held| RefusalPlace { _held })
    }

    /// True while `ip` serves a penalty.
    pub fn is_penalised(&self, ip: IpAddr) -> bool {
        self.penalties.is_blocked(ip)
    }

    /// Counts a refusal that `ip` caused towards its penalty.
    pub fn count_refusal(&self, ip: IpAddr) -> Recorded {
        self.penalties.record(ip)
    }

    /// The client table's size (`-C`).
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// Client-table slots held now (local reserve not counted).
    pub fn clients_in_use(&self) -> usize {
        let max = self.max_clients.max(1);
        max - self.slots.available_permits().min(max)
    }

    /// Connections without a route now.
    pub fn in_route_phase(&self) -> usize {
        self.pending.pending()
    }

    /// The penalty policy, when penalties are on.
    pub fn penalty_policy(&self) -> Option<PenaltyPolicy> {
        self.penalties.policy()
    }

    /// Addresses the penalty table tracks now.
    pub fn penalties_tracked(&self) -> usize {
        self.penalties.tracked()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An address; the remote ones (TEST-NET-3) must not be this host's own, or they would
    /// get the local reserve.
    fn ip(text: &str) -> IpAddr {
        let ip = text.parse().unwrap();
        assert!(
            text.starts_with("127.") || !selfaddr::is_local(ip),
            "{text} is an address of this host"
        );
        ip
    }

    fn limits(max_clients: usize) -> Limits {
        Limits {
            max_clients,
            max_pending: 100,
            max_pending_per_source: 100,
            max_connecting: 2,
            penalty: None,
        }
    }

    #[test]
    fn full_client_table_turns_remote_peers_away_and_slots_come_back_on_drop() {
        let gate = Admission::new(limits(2));
        let a = gate.admit(ip("203.0.113.1"), false).unwrap();
        let b = gate.admit(ip("203.0.113.2"), false).unwrap();
        assert_eq!(gate.clients_in_use(), 2);
        assert_eq!(gate.in_route_phase(), 2);
        assert_eq!(
            gate.admit(ip("203.0.113.3"), false).err(),
            Some(Turned::ClientTableFull(2))
        );
        assert!(gate.take_client_slot().is_none());
        drop(a);
        assert_eq!(gate.clients_in_use(), 1);
        assert_eq!(gate.in_route_phase(), 1);
        let c = gate.admit(ip("203.0.113.3"), false).unwrap();
        drop((b, c));
        assert_eq!(gate.clients_in_use(), 0);
        assert_eq!(gate.in_route_phase(), 0);
    }

    #[test]
    fn full_client_table_keeps_a_reserve_for_local_peers_only() {
        let gate = Admission::new(limits(1));
        let _remote = gate.admit(ip("203.0.113.1"), false).unwrap();
        let locals: Vec<_> = (0..LOCAL_RESERVE)
            .map(|_| gate.admit(ip("127.0.0.1"), false).unwrap())
            .collect();
        assert_eq!(
            gate.admit(ip("127.0.0.1"), false).err(),
            Some(Turned::ClientTableFull(1))
        );
        // The reserve is not counted as the table's fill, and a balancer never uses it.
        assert_eq!(gate.clients_in_use(), 1);
        drop(locals);
        assert_eq!(
            gate.admit(ip("127.0.0.1"), true).err(),
            Some(Turned::ClientTableFull(1))
        );
        assert!(gate.admit(ip("127.0.0.1"), false).is_ok());
    }

    #[test]
    fn balancer_connections_take_a_slot_but_no_route_phase_place() {
        let gate = Admission::new(limits(4));
        let admitted = gate.admit(ip("203.0.113.9"), true).unwrap();
        assert!(admitted.pending.is_none());
        assert_eq!(gate.clients_in_use(), 1);
        assert_eq!(gate.in_route_phase(), 0);
        let client = gate.enter_route_phase(ip("198.51.100.1")).unwrap();
        assert_eq!(gate.in_route_phase(), 1);
        drop(client);
        assert_eq!(gate.in_route_phase(), 0);
    }

    #[test]
    fn route_phase_cap_gives_the_slot_back() {
        let gate = Admission::new(Limits {
            max_pending: 1,
            ..limits(4)
        });
        let _first = gate.admit(ip("203.0.113.1"), false).unwrap();
        assert_eq!(
            gate.admit(ip("203.0.113.2"), false).err(),
            Some(Turned::RoutePhaseFull(PendingRefusal::Global(1)))
        );
        assert_eq!(
            gate.clients_in_use(),
            1,
            "the refused one's slot is free again"
        );
    }

    #[test]
    fn refusal_writers_are_capped() {
        let gate = Admission::new(limits(1));
        let held: Vec<_> = (0..MAX_REFUSALS_IN_FLIGHT)
            .map(|_| gate.refusal_place().unwrap())
            .collect();
        assert!(gate.refusal_place().is_none());
        drop(held);
        assert!(gate.refusal_place().is_some());
    }

    #[tokio::test]
    async fn connects_wait_for_a_place() {
        let gate = Admission::new(limits(1));
        let a = gate.wait_to_connect().await;
        let _b = gate.wait_to_connect().await;
        let third = tokio::time::timeout(Duration::from_millis(20), gate.wait_to_connect());
        assert!(third.await.is_err(), "--max-connecting 2 holds the third");
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(5), gate.wait_to_connect());
        assert!(third.await.is_ok());
    }

    #[test]
    fn refusals_count_towards_a_penalty() {
        let gate = Admission::new(Limits {
            penalty: Some(PenaltyPolicy {
                failures: 2,
                window: Duration::from_secs(60),
            }),
            ..limits(4)
        });
        let bad = ip("203.0.113.66");
        assert_eq!(gate.count_refusal(bad), Recorded::Counted);
        assert!(!gate.is_penalised(bad));
        assert_eq!(
            gate.count_refusal(bad),
            Recorded::Blocked(Duration::from_secs(60))
        );
        assert!(gate.is_penalised(bad));
        assert_eq!(gate.penalties_tracked(), 1);
        assert_eq!(gate.admit(bad, false).err(), Some(Turned::Penalised));
        assert_eq!(gate.clients_in_use(), 0, "a penalised peer holds nothing");
        // A balancer is not the client it carries: its own address is not checked here.
        assert!(gate.admit(bad, true).is_ok());
        assert!(gate.admit(ip("203.0.113.67"), false).is_ok());
    }
}
