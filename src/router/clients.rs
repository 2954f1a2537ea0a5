//! The client table: one entry per accepted connection, what `-l` lists and `-c` cancels.
//!
//! Entries remove themselves when their [`ClientHandle`] drops, so a session that ends in any
//! way (error, panic unwinding, cancel) leaves no stale row behind.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;

use super::limits::PendingPermit;

/// What ended or should end a session from the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// `-c`: cancelled by the administrator (NI_RTERR -97).
    Cancel,
    /// `-s` or a signal: router shutdown (NI_RTERR -98).
    Shutdown,
}

impl Interrupt {
    /// The return code sent to NI clients.
    pub fn return_code(self) -> i32 {
        match self {
            Interrupt::Cancel => crate::ni::rterr::rc::NIEROUT_CANCELED,
            Interrupt::Shutdown => crate::ni::rterr::rc::NIEROUT_SHUTDOWN,
        }
    }
}

/// The far side of a routed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Next hop as named in the route.
    pub host: String,
    /// Next hop's service as named in the route.
    pub service: String,
    /// Handle number of the server-side connection (for log lines `C<n>/<m>`).
    pub handle: u32,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Client id.
    pub id: u32,
    /// Peer address of the accepted connection.
    pub peer: SocketAddr,
    /// When it was accepted.
    pub connected_on: SystemTime,
    /// Set once the route stands.
    pub partner: Option<Partner>,
    /// Marked for tracing (`-t on <id>`, trace peer).
    pub traced: bool,
    /// Bytes relayed so far.
    pub traffic: Arc<Traffic>,
}

/// Byte counters of one session, updated by the relay once per chunk.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Bytes sent to the partner.
    pub to_partner: AtomicU64,
    /// Bytes sent to the client.
    pub to_client: AtomicU64,
}

impl Traffic {
    /// Current counts (to partner, to client).
    pub fn get(&self) -> (u64, u64) {
        (
            self.to_partner.load(Ordering::Relaxed),
            self.to_client.load(Ordering::Relaxed),
        )
    }
}

struct Entry {
    info: ClientInfo,
    interrupt: watch::Sender<Option<Interrupt>>,
}

/// All current clients.
#[derive(Default)]
pub struct ClientTable {
    entries: Mutex<BTreeMap<u32, Entry>>,
    next_id: AtomicU32,
}

impl ClientTable {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Entry>> {
        // A panic while holding this lock cannot leave an entry half-written (inserts and
        // removes are single calls), so a poisoned lock is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A fresh handle number (client ids and server-side handles share one sequence).
    pub fn next_handle(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Adds a client; the returned handle removes it again when dropped.
    pub fn register(self: &Arc<Self>, peer: SocketAddr) -> ClientHandle {
        let id = self.next_handle();
        let (tx, rx) = watch::channel(None);
        let info = ClientInfo {
            id,
            peer,
            connected_on: SystemTime::now(),
            partner: None,
            traced: false,
            traffic: Arc::default(),
        };
        self.lock().insert(
            id,
            Entry {
                info,
                interrupt: tx,
            },
        );
        ClientHandle {
            id,
            table: Arc::clone(self),
            pending: Mutex::new(None),
            interrupt: rx,
        }
    }

    /// A snapshot of all rows, by id.
    pub fn snapshot(&self) -> Vec<ClientInfo> {
        self.lock().values().map(|e| e.info.clone()).collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Interrupts one client; false when no such id.
    pub fn interrupt(&self, id: u32, why: Interrupt) -> bool {
        match self.lock().get(&id) {
            Some(entry) => {
                entry.interrupt.send_replace(Some(why));
                true
            }
            None => false,
        }
    }

    /// Interrupts every client.
    pub fn interrupt_all(&self, why: Interrupt) {
        for entry in self.lock().values() {
            entry.interrupt.send_replace(Some(why));
        }
    }

    /// Sets the traced mark of one client; false when no such id.
    pub fn set_traced(&self, id: u32, traced: bool) -> bool {
        match self.lock().get_mut(&id) {
            Some(entry) => {
                entry.info.traced = traced;
                true
            }
            None => false,
        }
    }

    /// Sets the traced mark of every client whose peer address `select` picks.
    pub fn set_traced_where(&self, traced: bool, select: impl Fn(&ClientInfo) -> bool) -> usize {
        let mut n = 0;
        for entry in self.lock().values_mut() {
            if select(&entry.info) {
                entry.info.traced = traced;
                n += 1;
            }
        }
        n
    }

    fn set_partner(&self, id: u32, partner: Partner) {
        if let Some(entry) = self.lock().get_mut(&id) {
            entry.info.partner = Some(partner);
        }
    }

    fn is_traced(&self, id: u32) -> bool {
        self.lock().get(&id).is_some_and(|e| e.info.traced)
    }

    fn remove(&self, id: u32) {
        self.lock().remove(&id);
    }
}

/// A session's own row; dropping it removes the row.
pub struct ClientHandle {
    /// Client id.
    pub id: u32,
    table: Arc<ClientTable>,
    /// The client's place in the route phase, given back when its route stands.
    pending: Mutex<Option<PendingPermit>>,
    interrupt: watch::Receiver<Option<Interrupt>>,
}

impl ClientHandle {
    /// Records the partner once the route stands.
    pub fn set_partner(&self, partner: Partner) {
        self.table.set_partner(self.id, partner);
        self.release_pending();
    }

    /// Keeps `pending` (the route-phase place) until the route stands or the client ends.
    pub fn hold_pending(&self, pending: PendingPermit) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(pending);
    }

    /// Gives the route-phase place back (the client no longer waits for its route).
    pub fn release_pending(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// The session's byte counters.
    pub fn traffic(&self) -> Arc<Traffic> {
        self.table
            .lock()
            .get(&self.id)
            .map(|e| Arc::clone(&e.info.traffic))
            .unwrap_or_default()
    }

    /// True when this client is marked for tracing.
    pub fn traced(&self) -> bool {
        self.table.is_traced(self.id)
    }

    /// A receiver that changes when the client is cancelled or the router stops.
    pub fn interrupts(&self) -> watch::Receiver<Option<Interrupt>> {
        self.interrupt.clone()
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_and_go() {
        let table = Arc::new(ClientTable::default());
        let peer: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let a = table.register(peer);
        let b = table.register(peer);
        assert_ne!(a.id, b.id);
        assert_eq!(table.len(), 2);
        assert!(table.interrupt(a.id, Interrupt::Cancel));
        assert_eq!(*a.interrupts().borrow(), Some(Interrupt::Cancel));
        assert_eq!(*b.interrupts().borrow(), None);
        drop(a);
        assert_eq!(table.len(), 1);
        assert!(!table.interrupt(9999, Interrupt::Cancel));
    }
}
