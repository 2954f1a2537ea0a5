//! Server mode (the LAN router): dials out to the DMZ router, registers, and serves every
//! stream the DMZ router opens as a connection accepted from the DMZ router. Nothing
//! listens for reverse invoke on this side.
//!
//! Pool: slot 0 is always kept (sessions can only arrive over a link). Once the DMZ router
//! tells its `conn_pool_size`, the other slots are kept too, or, with `conn_on_demand`, one
//! more is opened as soon as the busiest live link carries [`GROW_AT`] sessions (half of
//! what the DMZ router puts on a link), so the next link is up long before a link is full.
//! Each slot reconnects on its own: first retry within a second, then jittered exponential
//! back-off capped at `retry_timeout`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::read_frame;
use super::link::{valid_name, Accept, RegAddr, Register, Reply, LINK_VERSION};
use super::mux::{self, open_channel, MuxStream, StreamCount, GROW_AT, SESSIONS_PER_LINK};
use super::params::ServerParams;
use crate::ni::frame;
use crate::ni::rterr::rc;
use crate::router::conn::BoxConn;
use crate::router::errors::RouteFailure;
use crate::router::session;
use crate::router::state::{Lifecycle, Shared};

/// Connect deadline when `connect_timeout = -1` (SAP: the OS's; ours is explicit).
const OS_CONNECT_TIMEOUT: Duration = Duration::from_secs(75);
/// Deadline for the DMZ router's answer to a registration.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Waiting to reconnect.
    Down {
        /// Why it went down.
        reason: String,
    },
}

/// What the slots share.
struct Lan {
    shared: Arc<Shared>,
    params: ServerParams,
    instance: u64,
    /// The DMZ router's `conn_pool_size` (0 until the first acceptance).
    pool: AtomicU16,
    slots: Mutex<Vec<SlotState>>,
    /// Wakes [`grow`] when a link reaches [`GROW_AT`] sessions (it also looks every second).
    grow_now: tokio::sync::Notify,
    sessions: TaskTracker,
    cancel: CancellationToken,
}

/// The running server side.
pub struct ServerSide {
    lan: Arc<Lan>,
}

impl ServerSide {
    /// After the router stopped accepting: let the sessions over links finish (all of them
    /// after a soft shutdown, a short grace after a stop), then close the links.
    pub async fn finish(self) {
        let lan = self.lan;
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
fn instance_id() -> u64 {
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

/// Starts slot 0 (the others follow once the DMZ router tells the pool size).
pub fn start(shared: Arc<Shared>, params: ServerParams) -> ServerSide {
    let lan = Arc::new(Lan {
        shared: Arc::clone(&shared),
        params,
        instance: instance_id(),
        pool: AtomicU16::new(0),
        slots: Mutex::new(vec![SlotState::Connecting]),
        grow_now: tokio::sync::Notify::new(),
        sessions: TaskTracker::new(),
        cancel: CancellationToken::new(),
    });
    let info = Arc::clone(&lan);
    shared.set_info_extra(Box::new(move || info.info_lines()));
    let state = Arc::clone(&lan);
    crate::metrics::ri::set_source(true, Arc::new(move || state.metrics_snapshot()));
    tracing::info!(client = %lan.params.client_hostname, port = lan.params.client_service, reg_service = lan.params.reg_service, instance = %format!("{:016x}", lan.instance), "reverse-invoke server: registering with the DMZ router");
    tokio::spawn(slot_loop(Arc::clone(&lan), 0));
    tokio::spawn(grow(Arc::clone(&lan)));
    ServerSide { lan }
}

impl Lan {
    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<SlotState>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, index: usize, state: SlotState) {
        if let Some(slot) = self.slots().get_mut(index) {
            *slot = state;
        }
    }

    fn running(&self) -> bool {
        self.shared.lifecycle() == Lifecycle::Running && !self.cancel.is_cancelled()
    }

    /// Links up and their open streams, for `/metrics` and `/readyz`.
    fn metrics_snapshot(&self) -> crate::metrics::ri::Snapshot {
        let links = self
            .slots()
            .iter()
            .filter_map(|slot| match slot {
                SlotState::Up {
                    link_id, streams, ..
                } => Some((u64::from(*link_id), streams.open())),
                _ => None,
            })
            .collect();
        crate::metrics::ri::Snapshot {
            registered_servers: None,
            links,
        }
    }

    fn info_lines(&self) -> Vec<String> {
        let p = &self.params;
        let registered = match &p.reg_hostname {
            Some(h) => h.clone(),
            None => "(link address)".into(),
        };
        let pool = self.pool.load(Ordering::Relaxed);
        let slots = self.slots();
        let mut out = vec![
            String::new(),
            format!(
                "RI server: client {}:{}, registered {registered}:{}, instance {:016x}",
                p.client_hostname, p.client_service, p.reg_service, self.instance
            ),
            format!(
                "connPool {} (links {}), onDemand {}",
                if pool == 0 {
                    "?".to_string()
                } else {
                    pool.to_string()
                },
                slots.len(),
                if p.conn_on_demand { "YES" } else { "NO" }
            ),
            format!(
                "{}{}",
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
                    super::ctime(*since),
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
async fn grow(lan: Arc<Lan>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = lan.cancel.cancelled() => return,
            _ = tick.tick() => {}
            _ = lan.grow_now.notified() => {}
        }
        if !lan.running() {
            return;
        }
        let pool = usize::from(lan.pool.load(Ordering::Relaxed));
        let start_index = {
            let mut slots = lan.slots();
            if slots.len() >= pool {
                continue;
            }
            let wanted = !lan.params.conn_on_demand || wants_link(&slots);
            if !wanted {
                continue;
            }
            let first = slots.len();
            let last = if lan.params.conn_on_demand {
                first + 1
            } else {
                pool
            };
            slots.resize(last, SlotState::Connecting);
            first..last
        };
        for index in start_index {
            tokio::spawn(slot_loop(Arc::clone(&lan), index));
        }
    }
}

/// Keeps one pool slot connected for as long as the router runs.
async fn slot_loop(lan: Arc<Lan>, index: usize) {
    let mut attempt: u32 = 0;
    let mut registered_before = false;
    while lan.running() {
        // A DMZ router restarted with a smaller pool refuses this slot: stop asking.
        let pool = usize::from(lan.pool.load(Ordering::Relaxed));
        if index > 0 && pool != 0 && index >= pool {
            lan.set(
                index,
                SlotState::Down {
                    reason: format!("beyond the DMZ router's pool of {pool}; not reconnected"),
                },
            );
            break;
        }
        lan.set(index, SlotState::Connecting);
        let started = Instant::now();
        let reason = match connect_and_register(&lan, index).await {
            Ok(link) => {
                if std::mem::replace(&mut registered_before, true) {
                    crate::metrics::ri::link_reconnect();
                }
                let why = serve(&lan, index, link).await;
                if started.elapsed() >= STABLE_AFTER {
                    attempt = 0;
                }
                why
            }
            Err(why) => why,
        };
        if !lan.running() {
            break;
        }
        let delay = backoff(attempt, lan.params.retry_timeout, jitter());
        attempt = attempt.saturating_add(1);
        tracing::info!(slot = index, %reason, retry_in_ms = delay.as_millis() as u64, "reverse-invoke: link down");
        lan.set(index, SlotState::Down { reason });
        tokio::select! {
            _ = lan.cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Jittered exponential back-off: `attempt` 0 waits 250..500 ms, each further attempt
/// doubles, capped at `cap`; `unit` in [0, 1) picks the point in the upper half.
pub fn backoff(attempt: u32, cap: Duration, unit: f64) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.min(16))
        .min(cap);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    (instance_id() % 10_000) as f64 / 10_000.0
}

/// A registered link.
struct Link {
    socket: BoxConn,
    accept: Accept,
    local: SocketAddr,
    peer: SocketAddr,
    /// The DMZ router's authenticated SNC name, when the link is TLS (`-K`).
    snc_name: Option<String>,
}

async fn connect_and_register(lan: &Lan, index: usize) -> Result<Link, String> {
    let p = &lan.params;
    let limit = p.connect_timeout.unwrap_or(OS_CONNECT_TIMEOUT);
    let target = (p.client_hostname.as_str(), p.client_service);
    let socket = match timeout(limit, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => return Err(format!("connect to {}:{}: {err}", target.0, target.1)),
        Err(_) => return Err(format!("connect to {}:{} timed out", target.0, target.1)),
    };
    let _ = socket.set_nodelay(true);
    let (local, peer) = match (socket.local_addr(), socket.peer_addr()) {
        (Ok(l), Ok(r)) => (l, r),
        _ => return Err("connection lost at once".into()),
    };
    let tls_deadline = Instant::now() + limit.min(REPLY_TIMEOUT);
    let (mut socket, snc_name) =
        super::snc::connect_link(&lan.shared, socket, peer, tls_deadline).await?;
    let register = Register {
        version: LINK_VERSION,
        instance: lan.instance,
        link_index: u16::try_from(index).unwrap_or(u16::MAX),
        reg_service: p.reg_service,
        implicit: p.reg_hostname.is_none(),
        addrs: registered_addrs(p, local).await,
    };
    let deadline = Instant::now() + limit.min(REPLY_TIMEOUT);
    match timeout_at(
        deadline,
        socket.write_all(&frame::frame(&register.encode())),
    )
    .await
    {
        Ok(Ok(())) => {}
        _ => return Err("registration not sent".into()),
    }
    let payload = read_frame(&mut socket, deadline).await?;
    match Reply::decode(&payload) {
        Ok(Reply::Accept(accept)) => {
            lan.pool.store(accept.pool_size, Ordering::Relaxed);
            tracing::info!(slot = index, link = accept.link_id, server = accept.server_number, pool = accept.pool_size, %local, %peer, "reverse-invoke: registered with the DMZ router");
            Ok(Link {
                socket,
                accept,
                local,
                peer,
                snc_name,
            })
        }
        Ok(Reply::Refused { rc, error, detail }) => {
            tracing::warn!(slot = index, rc, %error, %detail, "reverse-invoke: the DMZ router refused the registration");
            Err(format!("refused: {detail} (rc {rc})"))
        }
        Err(err) => Err(format!("invalid answer from the DMZ router: {err}")),
    }
}

/// What this side registers: `reg_hostname` (its name and addresses), or the link's own
/// source address.
async fn registered_addrs(p: &ServerParams, local: SocketAddr) -> Vec<RegAddr> {
    let local_ip = crate::router::selfaddr::canonical(local.ip());
    let Some(host) = &p.reg_hostname else {
        return vec![RegAddr::Ip(local_ip)];
    };
    if let Ok(ip) = host.parse() {
        return vec![RegAddr::Ip(crate::router::selfaddr::canonical(ip))];
    }
    let mut addrs = Vec::new();
    if valid_name(host) {
        addrs.push(RegAddr::Name(host.clone()));
    }
    if let Ok(Ok(found)) = timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), 0)),
    )
    .await
    {
        for a in found {
            let ip = RegAddr::Ip(crate::router::selfaddr::canonical(a.ip()));
            if p.reg_protocol.admits(a.ip()) && !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    addrs
}

/// Drives a registered link: opens the control stream, serves inbound streams as sessions.
async fn serve(lan: &Arc<Lan>, index: usize, link: Link) -> String {
    let Link {
        socket,
        accept,
        local,
        peer,
        snc_name,
    } = link;
    let streams = StreamCount::default();
    lan.set(
        index,
        SlotState::Up {
            link_id: accept.link_id,
            local,
            since: SystemTime::now(),
            streams: streams.clone(),
        },
    );
    let (opener, requests) = open_channel();
    let session_driver = mux::session(socket, yamux::Mode::Server, requests);
    let cancel = lan.cancel.child_token();
    let control_cancel = cancel.clone();
    tokio::spawn(async move {
        match timeout(Duration::from_secs(5), opener.open()).await {
            Ok(Ok(control)) => mux::run_control(control, control_cancel.clone()).await,
            _ => tracing::warn!("reverse-invoke: control stream not opened"),
        }
        control_cancel.cancel();
    });
    let inbound_lan = Arc::clone(lan);
    let end = session_driver
        .drive(
            move |stream| {
                accept_stream(&inbound_lan, stream, &streams, peer, local, &snc_name);
                true
            },
            cancel.clone(),
        )
        .await;
    cancel.cancel();
    end.to_string()
}

/// One stream from the DMZ router: a new connection, as if accepted from the DMZ router.
fn accept_stream(
    lan: &Arc<Lan>,
    stream: yamux::Stream,
    streams: &StreamCount,
    peer: SocketAddr,
    local: SocketAddr,
    snc_name: &Option<String>,
) {
    if lan.shared.lifecycle() != Lifecycle::Running {
        return; // dropping it resets the stream; the DMZ router reports the route broken
    }
    let conn = MuxStream::new(stream, streams);
    if streams.open() >= GROW_AT {
        lan.grow_now.notify_one();
    }
    let shared = Arc::clone(&lan.shared);
    match Arc::clone(&shared.slots).try_acquire_owned() {
        Ok(permit) => {
            // The session is the DMZ router's, with its name for the K* lines.
            let pre = session::PreRoute {
                deadline: Instant::now() + shared.config.timeout,
                snc_name: snc_name.clone(),
                pending: None,
            };
            lan.sessions
                .spawn(crate::metrics::session(session::run_with(
                    shared,
                    conn,
                    peer,
                    Some(local),
                    permit,
                    pre,
                )));
        }
        Err(_) => {
            lan.sessions.spawn(crate::metrics::session(async move {
                let mut conn = conn;
                let failure = RouteFailure::new(
                    rc::NIEROUT_OVERFLOW,
                    "max no. of clients reached",
                    format!(
                        "NiRClientHandle: client table full ({} clients)",
                        shared.config.max_clients
                    ),
                    "ri/server.rs",
                    line!(),
                );
                session::send_failure(&shared, &mut conn, &failure).await;
                let _ = conn.shutdown().await;
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_below_a_second_and_caps() {
        let cap = Duration::from_secs(5);
        for unit in [0.0, 0.5, 0.999] {
            let first = backoff(0, cap, unit);
            assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        }
        assert_eq!(backoff(1, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, cap, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(3, cap, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(4, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, cap, 1.0), cap);
        assert!(backoff(10, cap, 0.0) >= cap / 2);
        assert_eq!(
            backoff(0, Duration::from_secs(1), 1.0),
            Duration::from_millis(500)
        );
    }

    fn up(streams: &StreamCount) -> SlotState {
        SlotState::Up {
            link_id: 1,
            local: SocketAddr::from(([127, 0, 0, 1], 40000)),
            since: SystemTime::now(),
            streams: streams.clone(),
        }
    }

    #[test]
    fn the_next_link_opens_when_the_busiest_is_half_full() {
        let (a, b) = (StreamCount::default(), StreamCount::default());
        let mut held: Vec<_> = (0..GROW_AT - 1).map(|_| a.guard()).collect();
        assert!(!wants_link(&[up(&a), up(&b)]), "below the threshold");
        held.push(a.guard());
        assert!(
            wants_link(&[up(&a), up(&b)]),
            "the busiest decides, not the average"
        );
        assert!(
            !wants_link(&[up(&a), SlotState::Connecting]),
            "one link at a time"
        );
        assert!(!wants_link(&[
            up(&a),
            SlotState::Down {
                reason: "refused".into()
            }
        ]));
        // Well before the DMZ router's cap: a burst has half a link's room while the next
        // link registers.
        const { assert!(GROW_AT * 2 <= SESSIONS_PER_LINK) };
    }

    #[test]
    fn instance_ids_differ() {
        assert_ne!(instance_id(), instance_id());
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}
