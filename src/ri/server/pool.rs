//! The pool of links from this LAN router to one DMZ router (one address).
//!
//! Slot 0 is always kept (sessions can only arrive over a link). Once the DMZ router tells
//! its `conn_pool_size`, the other slots are kept too, or, with `conn_on_demand`, one more
//! is opened as soon as the busiest live link carries [`GROW_AT`] sessions (half of what
//! the DMZ router puts on a link), so the next link is up long before a link is full. Each
//! slot reconnects on its own: first retry within a second, then jittered exponential
//! back-off capped at `retry_timeout`. A retired pool (its address vanished from the DNS)
//! stops each slot once its link is down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{backoff, dial, jitter, Lan};
use crate::metrics::ri::LinkState;
use crate::ri::mux::{StreamCount, GROW_AT, SESSIONS_PER_LINK};

/// A link that stood this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(5);

/// One pool slot's state, for `-l` and the on-demand rule.
#[derive(Debug, Clone)]
pub enum SlotState {
    /// Connecting or registering.
    Connecting,
    /// Registered.
    Up {
        /// The DMZ router's id for the link.
        link_id: u32,
        /// The link's own address.
        local: SocketAddr,
        /// When it registered.
        since: SystemTime,
        /// Its sessions.
        streams: StreamCount,
    },
    /// Waiting to reconnect, or stopped.
    Down {
        /// Why it went down.
        reason: String,
    },
}

/// The links towards one DMZ router.
pub(crate) struct DmzPool {
    pub(crate) lan: Arc<Lan>,
    /// The `client_hostname` item that found it.
    pub(crate) name: String,
    /// Where it listens for registrations.
    pub(crate) addr: SocketAddr,
    /// Its `conn_pool_size` (0 until the first acceptance).
    pub(crate) pool: AtomicU16,
    /// The link protocol version to offer it: `link_protocol` of the `-i` file, or 1 once
    /// it refused that (a DMZ router of an earlier build), until one of its links ends (it
    /// may have been upgraded and restarted).
    pub(crate) offer: AtomicU8,
    slots: Mutex<Vec<SlotState>>,
    /// Wakes [`grow`] when a link reaches [`GROW_AT`] sessions (it also looks every second).
    pub(crate) grow_now: tokio::sync::Notify,
    /// Its address vanished: no slot reconnects.
    retired: AtomicBool,
    /// Slot tasks still running.
    running: AtomicUsize,
    /// Ends this pool's links (a child of the router's).
    pub(crate) cancel: CancellationToken,
}

impl DmzPool {
    /// A pool towards `addr` (found by `name`), with slot 0 and the grower running.
    pub(crate) fn start(lan: &Arc<Lan>, name: &str, addr: SocketAddr) -> Arc<Self> {
        let pool = Arc::new(Self {
            lan: Arc::clone(lan),
            name: name.to_string(),
            addr,
            pool: AtomicU16::new(0),
            offer: AtomicU8::new(lan.params.link_version),
            slots: Mutex::new(vec![SlotState::Connecting]),
            grow_now: tokio::sync::Notify::new(),
            retired: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            cancel: lan.cancel.child_token(),
        });
        tracing::info!(dmz = %addr, name, "reverse-invoke: pool towards a DMZ router started");
        pool.spawn_slot(0);
        tokio::spawn(grow(Arc::clone(&pool)));
        pool
    }

    fn spawn_slot(self: &Arc<Self>, index: usize) {
        self.running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(slot_loop(Arc::clone(self), index));
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<SlotState>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set(&self, index: usize, state: SlotState) {
        if let Some(slot) = self.slots().get_mut(index) {
            *slot = state;
        }
    }

    fn running(&self) -> bool {
        self.lan.running() && !self.cancel.is_cancelled()
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Un-retires the pool (its slots still run; a stopped pool is started anew instead).
    pub(crate) fn reinstate(&self) {
        self.retired.store(false, Ordering::SeqCst);
    }

    /// Every slot task ended.
    pub(crate) fn stopped(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }

    /// At least one link is registered with this DMZ router.
    pub(crate) fn registered(&self) -> bool {
        self.slots()
            .iter()
            .any(|s| matches!(s, SlotState::Up { .. }))
    }

    /// The links up, labelled with this DMZ router, for `/metrics`.
    pub(crate) fn link_states(&self) -> Vec<LinkState> {
        let dmz = self.addr.to_string();
        self.slots()
            .iter()
            .filter_map(|slot| match slot {
                SlotState::Up {
                    link_id, streams, ..
                } => Some(LinkState {
                    dmz: dmz.clone(),
                    link: u64::from(*link_id),
                    streams: streams.open(),
                }),
                _ => None,
            })
            .collect()
    }

    /// This pool's block of `-l`.
    pub(crate) fn info_lines(&self) -> Vec<String> {
        let p = &self.lan.params;
        let pool = self.pool.load(Ordering::Relaxed);
        let known = |n: String| if pool == 0 { "?".to_string() } else { n };
        let slots = self.slots();
        let mut out = vec![
            format!(
                "- DMZ router {}{}{}",
                self.addr,
                if self.name == self.addr.ip().to_string() {
                    String::new()
                } else {
                    format!(" ({})", self.name)
                },
                if self.is_retired() {
                    ", address vanished: links stop once down"
                } else {
                    ""
                }
            ),
            format!(
                "  connPool {} (links {}), onDemand {}",
                known(pool.to_string()),
                slots.len(),
                if p.conn_on_demand { "YES" } else { "NO" }
            ),
            format!(
                "  {}{}",
                match pool {
                    0 => "capacity ? (pool size not known yet)".to_string(),
                    n => format!(
                        "capacity {} sessions ({n} links x {SESSIONS_PER_LINK} streams)",
                        usize::from(n) * SESSIONS_PER_LINK
                    ),
                },
                if p.conn_on_demand {
                    format!(", next link when the busiest carries {GROW_AT}")
                } else {
                    String::new()
                }
            ),
        ];
        for (i, slot) in slots.iter().enumerate() {
            out.push(match slot {
                SlotState::Connecting => format!("  [{i}] connecting"),
                SlotState::Up {
                    link_id,
                    local,
                    since,
                    streams,
                } => format!(
                    "  [{i}] up, link {link_id} from {local} since {}, streams {} (total {})",
                    crate::ri::ctime(*since),
                    streams.open(),
                    streams.total()
                ),
                SlotState::Down { reason } => format!("  [{i}] down ({reason})"),
            });
        }
        out
    }
}

/// Whether `conn_on_demand` wants one more link: every slot is up (none is connecting or
/// down) and the busiest carries [`GROW_AT`] sessions.
pub fn wants_link(slots: &[SlotState]) -> bool {
    let mut busiest = 0;
    for slot in slots {
        match slot {
            SlotState::Up { streams, .. } => busiest = busiest.max(streams.open()),
            _ => return false,
        }
    }
    busiest >= GROW_AT
}

/// Opens further slots: all of the pool at once, or one at a time under load.
async fn grow(pool: Arc<DmzPool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = pool.cancel.cancelled() => return,
            _ = tick.tick() => {}
            _ = pool.grow_now.notified() => {}
        }
        if !pool.running() || pool.stopped() {
            return;
        }
        if pool.is_retired() {
            continue;
        }
        let size = usize::from(pool.pool.load(Ordering::Relaxed));
        let start_index = {
            let mut slots = pool.slots();
            if slots.len() >= size {
                continue;
            }
            let wanted = !pool.lan.params.conn_on_demand || wants_link(&slots);
            if !wanted {
                continue;
            }
            let first = slots.len();
            let last = if pool.lan.params.conn_on_demand {
                first + 1
            } else {
                size
            };
            slots.resize(last, SlotState::Connecting);
            first..last
        };
        for index in start_index {
            pool.spawn_slot(index);
        }
    }
}

/// Keeps one pool slot connected for as long as the router runs and the address stays.
async fn slot_loop(pool: Arc<DmzPool>, index: usize) {
    let mut attempt: u32 = 0;
    let mut registered_before = false;
    while pool.running() {
        // A DMZ router restarted with a smaller pool refuses this slot: stop asking.
        let size = usize::from(pool.pool.load(Ordering::Relaxed));
        if index > 0 && size != 0 && index >= size {
            pool.set(
                index,
                SlotState::Down {
                    reason: format!("beyond the DMZ router's pool of {size}; not reconnected"),
                },
            );
            break;
        }
        if pool.is_retired() {
            pool.set(
                index,
                SlotState::Down {
                    reason: "the DMZ router's address vanished; not reconnected".into(),
                },
            );
            break;
        }
        pool.set(index, SlotState::Connecting);
        let started = Instant::now();
        let reason = match dial::connect_and_register(&pool, index).await {
            Ok(link) => {
                if std::mem::replace(&mut registered_before, true) {
                    crate::metrics::ri::link_reconnect();
                }
                let why = dial::serve(&pool, index, link).await;
                pool.offer
                    .store(pool.lan.params.link_version, Ordering::Relaxed);
                if started.elapsed() >= STABLE_AFTER {
                    attempt = 0;
                }
                why
            }
            Err(why) => why,
        };
        if !pool.running() {
            break;
        }
        // The DMZ router's name may point elsewhere now.
        pool.lan.resolve_now.notify_one();
        let delay = backoff(attempt, pool.lan.params.retry_timeout, jitter());
        attempt = attempt.saturating_add(1);
        tracing::info!(dmz = %pool.addr, slot = index, %reason, retry_in_ms = delay.as_millis() as u64, "reverse-invoke: link down");
        pool.set(index, SlotState::Down { reason });
        tokio::select! {
            _ = pool.cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    pool.running.fetch_sub(1, Ordering::SeqCst);
}
