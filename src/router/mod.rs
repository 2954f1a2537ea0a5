//! The tokio daemon: binds the listener, accepts under the `-C` limit, runs one task per
//! connection, and ends as the lifecycle says (stop, soft shutdown).

pub mod admin;
pub mod admission;
pub mod clients;
pub mod config;
pub mod conn;
pub mod connlog;
pub mod errors;
mod fdlimit;
mod inbound;
pub mod limits;
pub mod logfile;
pub mod nexthop;
pub mod penalty;
mod plan;
pub mod proxy;
pub mod ratelog;
pub mod refusal;
pub mod relay;
mod routing;
pub mod selfaddr;
pub mod session;
mod snc;
mod snc_identity;
pub mod state;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

pub use config::{RouterConfig, Secret};
pub use state::{Lifecycle, Shared, TraceHook};

use crate::routtab::TableError;
use crate::services::Services;
use errors::RouteFailure;

/// Why a router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The route permission table is missing or malformed.
    #[error("route permission table: {0}")]
    Table(#[from] TableError),
    /// `-H` names no usable address.
    #[error("cannot resolve listen host '{host}': {reason}")]
    ListenHost {
        /// The `-H` value.
        host: String,
        /// Why.
        reason: String,
    },
    /// The port is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The `-G` log cannot be opened.
    #[error("cannot open log file {path}: {source}")]
    Log {
        /// The `-G` path.
        path: std::path::PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// A router bound to its port, ready to run.
pub struct Router {
    shared: Arc<Shared>,
    listener: TcpListener,
}

impl Router {
    /// Loads the table, opens the log and binds the listener.
    pub async fn bind(
        config: RouterConfig,
        trace_hook: Option<TraceHook>,
    ) -> Result<Self, RouterError> {
        let (soft, hard) = fdlimit::raise_nofile();
        tracing::info!(soft, hard, "open-file limit");
        let services = Services::system();
        let (snc, port) = (config.snc.is_some(), config.port);
        let routtab =
            state::load_and_check_blocking(config.routtab.clone(), services.clone(), snc, port)
                .await?;
        let connlog = match &config.log_file {
            Some(path) => Some(
                connlog::ConnLog::open(path, config.append, config.max_log_size).map_err(
                    |source| RouterError::Log {
                        path: path.clone(),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        if let Some(log) = &connlog {
            log.write(
                connlog::Event::ReadRouttab,
                "",
                &config.routtab.display().to_string(),
            );
        }
        let addr = listen_addr(config.bind_host.as_deref(), config.port).await?;
        let listener = listen(addr).map_err(|source| RouterError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        tracing::info!(%addr, port, entries = routtab.entries.len(), "router listening");
        let shared = Arc::new(Shared::new(
            config, routtab, services, connlog, port, trace_hook,
        ));
        Ok(Self { shared, listener })
    }

    /// The address the router listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for signal handlers and tests).
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Accepts until stopped or soft-shut-down, then waits for the sessions as the lifecycle
    /// says: all of them after a soft shutdown, a short grace after a stop.
    pub async fn run(self) -> std::io::Result<()> {
        let Router { shared, listener } = self;
        let tracker = TaskTracker::new();
        let mut lifecycle = shared.lifecycle_changes();
        loop {
            tokio::select! {
                changed = lifecycle.wait_for(|l| *l != Lifecycle::Running) => {
                    let _ = changed;
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => accept(&shared, &tracker, stream, peer),
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        tracker.close();
        match shared.lifecycle() {
            Lifecycle::SoftShutdown => {
                tracing::info!(
                    clients = shared.clients().len(),
                    "port released; waiting for the remaining routes"
                );
                let mut lifecycle = shared.lifecycle_changes();
                tokio::select! {
                    _ = tracker.wait() => {}
                    _ = lifecycle.wait_for(|l| *l == Lifecycle::Stopping) => {
                        shared.clients().interrupt_all(clients::Interrupt::Shutdown);
                        let _ = tokio::time::timeout(Duration::from_secs(3), tracker.wait()).await;
                    }
                }
            }
            _ => {
                shared.clients().interrupt_all(clients::Interrupt::Shutdown);
                let _ = tokio::time::timeout(Duration::from_secs(3), tracker.wait()).await;
            }
        }
        tracing::info!("router stopped");
        Ok(())
    }
}

/// Starts a session for an accepted connection, or refuses it when the client table
/// (`-C`) or the route phase (global or per-source cap) is full. Never waits on the peer.
///
/// A connection from a `--proxy-from` balancer is not the client it carries: penalties,
/// the per-source cap and the local reserves wait for the address in its header
/// ([`proxy::admit`]); only its client-table slot is taken here ([`admission::Admission::admit`]).
fn accept(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let balancer = shared.config().proxy_from.contains(peer.ip());
    let admitted = match shared.admission().admit(peer.ip(), balancer) {
        Ok(admitted) => admitted,
        Err(admission::Turned::Penalised) => {
            // Closed without a reply: a penalised scanner learns nothing and costs no write.
            shared.closed_under_penalty(peer);
            return;
        }
        Err(admission::Turned::ClientTableFull(max)) => {
            crate::gated!(shared.refusal_log(), warn, %peer, max, "client table full");
            return refuse(shared, tracker, stream, RouteFailure::table_full(max));
        }
        Err(admission::Turned::RoutePhaseFull(refusal)) => {
            let failure = pending_refused(shared, peer, refusal);
            return refuse(shared, tracker, stream, failure);
        }
    };
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    tracker.spawn(crate::metrics::session(inbound::run(
        Arc::clone(shared),
        stream,
        peer,
        local,
        admitted.slot,
        admitted.pending,
    )));
}

/// The -100 for a connection the route phase has no place for, logged (rate-limited).
fn pending_refused(
    shared: &Shared,
    peer: SocketAddr,
    refusal: limits::PendingRefusal,
) -> RouteFailure {
    let detail = match refusal {
        limits::PendingRefusal::PerSource(max) => {
            crate::gated!(shared.refusal_log(), warn, %peer, max, "too many connections without a route from this address");
            format!(
                "NiRClientHandle: too many connections without a route from {} ({max})",
                peer.ip()
            )
        }
        limits::PendingRefusal::Global(max) => {
            crate::gated!(shared.refusal_log(), warn, %peer, max, "too many connections without a route");
            format!("NiRClientHandle: too many connections without a route ({max})")
        }
    };
    RouteFailure::overflow(detail)
}

/// Answers `failure` to a refused connection, if fewer than
/// [`admission::MAX_REFUSALS_IN_FLIGHT`] refusals are being written; otherwise just closes it.
fn refuse(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    mut stream: tokio::net::TcpStream,
    failure: RouteFailure,
) {
    let Some(writer) = shared.admission().refusal_place() else {
        return;
    };
    let shared = Arc::clone(shared);
    tracker.spawn(async move {
        // No session to wrap: the refusal is the connection's end, counted at once.
        crate::metrics::session_ended(crate::metrics::SessionEnd::Failed(failure.rc));
        session::send_failure(&shared, &mut stream, &failure).await;
        session::linger(&mut stream).await;
        drop(writer);
    });
}

/// Connections the kernel queues for `accept` (it caps this at `net.core.somaxconn`):
/// bursts of logons wait in the queue instead of being dropped.
const BACKLOG: i32 = 4096;

/// A listening socket on `addr` (address reuse as tokio sets it, a deep backlog).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// The address to bind: `-H` resolved (first address), or all IPv4 addresses.
async fn listen_addr(host: Option<&str>, port: u16) -> Result<SocketAddr, RouterError> {
    let Some(host) = host else {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    };
    let fail = |reason: String| RouterError::ListenHost {
        host: host.to_string(),
        reason,
    };
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    addrs.next().ok_or_else(|| fail("no address".into()))
}
