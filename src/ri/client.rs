//! Client mode (the DMZ router). The names are SAP's: in reverse invoke the DMZ side is the
//! *client* and the LAN side the *server*, although the LAN router opens the connections
//! and the DMZ router accepts them (so the `client_*` keys of either role's parameter file
//! name this side's address and port).
//!
//! This side listens on `client_service` for LAN routers, checks each registration
//! (handshake deadline, `ACE`, `max_servers`, address conflicts, vetting for pseudo
//! addresses shared by several LAN routers), and drives every accepted link; the
//! [`Registry`] lets routes reach the registered pseudo addresses.
//!
//! Registration attempts are bounded ([`MAX_PENDING`] at once, each within the handshake
//! deadline) so a reconnect storm cannot exhaust the router; refusals are
//! answered with an `NI_RTERR`, written to the trace and to the `-G` log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use super::carrier::{self, End, Kind};
use super::link::{Accept, Register, MAX_HANDSHAKE_FRAME};
use super::mux::{self, StreamCount};
use super::params::{ace_permits, ClientParams, Protocol};
use super::registry::{LinkEntry, Registry};
use super::RiError;
use crate::ni::frame;
use crate::ni::rterr::rc;
use crate::router::conn::Side;
use crate::router::connlog::Event;
use crate::router::errors::RouteFailure;
use crate::router::limits::PendingGate;
use crate::router::state::{Lifecycle, Shared};

/// Registration handshakes in progress at once; more connections are closed at once.
pub const MAX_PENDING: usize = 64;
/// Registration handshakes in progress from one address, once half of [`MAX_PENDING`] are
/// taken (a reconnect storm from one host leaves room for the others).
pub const MAX_PENDING_PER_SOURCE: usize = 8;

/// The running client side.
pub struct ClientSide {
    /// The registrations.
    pub registry: Arc<Registry>,
    /// Where registrations are accepted.
    pub local: SocketAddr,
    cancel: CancellationToken,
}

impl ClientSide {
    /// Ends every link and stops accepting registrations.
    pub fn stop(&self) {
        self.cancel.cancel();
        self.registry.cancel_all();
    }
}

/// Binds the registration port, installs the registry as the router's registered hops and
/// the `-l` lines, and starts accepting.
pub async fn start(shared: Arc<Shared>, params: ClientParams) -> Result<ClientSide, RiError> {
    let listener = bind(&params).await?;
    let local = listener.local_addr().map_err(|source| RiError::Bind {
        addr: format!("{}", params.service),
        source,
    })?;
    // A session waits for the LAN router's next link for at most 4/5 of -W, so it learns
    // why (links full) before the route's own deadline ends it.
    let registry = Arc::new(
        Registry::new(params.max_servers, params.conn_pool_size)
            .with_capacity_wait(shared.config().timeout.mul_f64(0.8)),
    );
    shared.set_registered_hops(Arc::clone(&registry) as _);
    let state = Arc::clone(&registry);
    crate::metrics::ri::set_source(false, Arc::new(move || state.metrics_snapshot()));
    // Routes to the registration port are routes to this router (never to a LAN router).
    shared.add_own_port(local.port());
    let cancel = CancellationToken::new();
    let info_registry = Arc::clone(&registry);
    let info_params = params.clone();
    shared.set_info_extra(Box::new(move || {
        info_lines(&info_params, local, &info_registry)
    }));
    tracing::info!(%local, max_servers = params.max_servers, pool = params.conn_pool_size, ace = params.ace.len(), "reverse-invoke client: accepting registrations");
    tokio::spawn(accept_loop(
        Arc::clone(&shared),
        listener,
        Arc::clone(&registry),
        params,
        cancel.clone(),
    ));
    Ok(ClientSide {
        registry,
        local,
        cancel,
    })
}

/// The `-l` block of the DMZ side.
fn info_lines(params: &ClientParams, local: SocketAddr, registry: &Registry) -> Vec<String> {
    let mut out = vec![
        String::new(),
        format!(
            "RI client: listen on {local}, exclusive {}, ACL size {}",
            if params.exclusive { "YES" } else { "NO" },
            params.ace.len()
        ),
    ];
    if let Some(route) = &params.route {
        out.push(format!(
            "port-forwarder route {}",
            crate::ni::routestr::format_redacted(route)
        ));
    }
    out.extend(registry.info_lines());
    out
}

async fn bind(params: &ClientParams) -> Result<TcpListener, RiError> {
    let port = params.service;
    let candidates: Vec<SocketAddr> = match &params.hostname {
        Some(host) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| RiError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .filter(|a| params.listen_protocol.admits(a.ip()))
            .collect(),
        None => match params.listen_protocol {
            Protocol::V6 => vec![SocketAddr::from(([0u16; 8], port))],
            // All IPv4 addresses, like the router's own listener without -6.
            Protocol::V4 | Protocol::Unspec => vec![SocketAddr::from(([0u8; 4], port))],
        },
    };
    let Some(addr) = candidates.first().copied() else {
        return Err(RiError::Resolve {
            host: params.hostname.clone().unwrap_or_default(),
            reason: format!("no {} address", params.listen_protocol.name()),
        });
    };
    TcpListener::bind(addr)
        .await
        .map_err(|source| RiError::Bind {
            addr: addr.to_string(),
            source,
        })
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    registry: Arc<Registry>,
    params: ClientParams,
    cancel: CancellationToken,
) {
    let pending = PendingGate::new(MAX_PENDING, MAX_PENDING_PER_SOURCE);
    let params = Arc::new(params);
    let mut lifecycle = shared.lifecycle_changes();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = async { let _ = lifecycle.wait_for(|l| *l != Lifecycle::Running).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if shared.turned_away(peer) {
                        continue;
                    }
                    let Ok(permit) = pending.try_enter(peer.ip()) else {
                        crate::gated!(shared.refusal_log(), warn, %peer, "reverse-invoke: too many registrations in progress; connection closed");
                        continue;
                    };
                    let _ = socket.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let registry = Arc::clone(&registry);
                    let params = Arc::clone(&params);
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        let link = handshake(&shared, &registry, &params, socket, peer).await;
                        drop(permit);
                        if let Some(link) = link {
                            serve(registry, link, cancel).await;
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "reverse-invoke: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::info!("reverse-invoke client: registration port closed");
}

/// A registered link, ready to be driven.
struct Registered {
    socket: Side,
    requests: carrier::Requests,
    instance: u64,
    entry: LinkEntry,
}

/// Reads and checks one registration; answers it. `None` when refused or failed.
async fn handshake(
    shared: &Shared,
    registry: &Registry,
    params: &ClientParams,
    mut socket: TcpStream,
    peer: SocketAddr,
) -> Option<Registered> {
    let deadline = Instant::now() + params.connect_timeout;
    let source = crate::router::selfaddr::canonical(peer.ip());
    if !ace_permits(&params.ace, source) {
        refuse(
            shared,
            &mut socket,
            peer,
            RouteFailure::registration_refused(
                rc::NIEROUT_PERM_DENIED,
                format!("{source} not permitted by the ACE list"),
            ),
            deadline,
        )
        .await;
        return None;
    }
    // With -K the link is TLS and the LAN router has a name (ri/snc.rs).
    let (mut socket, snc_name) = match super::snc::accept_link(shared, socket, peer, deadline).await
    {
        Ok(link) => link,
        Err(super::snc::NoLink::Refuse(mut plain, refusal)) => {
            refuse(shared, &mut plain, peer, refusal, deadline).await;
            return None;
        }
        Err(super::snc::NoLink::Closed) => {
            shared.penalise(peer.ip(), "registration TLS handshake failed");
            return None;
        }
    };
    let payload = match read_frame(&mut socket, deadline).await {
        Ok(p) => p,
        Err(why) => {
            let refusal = RouteFailure::registration_refused(rc::NIEROUT_INTERN, why);
            refuse(shared, &mut socket, peer, refusal, deadline).await;
            return None;
        }
    };
    let reg = match Register::decode(&payload) {
        Ok(reg) => reg,
        Err(err) => {
            let refusal = RouteFailure::registration_refused(
                rc::NIEROUT_INTERN,
                format!(
                    "invalid registration ({err}); this port speaks the saprouter-rs reverse-invoke protocol"
                ),
            );
            refuse(shared, &mut socket, peer, refusal, deadline).await;
            return None;
        }
    };
    let routtab = shared.routtab();
    let kt_vetted = match super::snc::check_registration(&routtab, &reg, peer, snc_name.as_deref())
    {
        Ok(vetted) => vetted,
        Err(refusal) => {
            refuse(shared, &mut socket, peer, refusal, deadline).await;
            return None;
        }
    };
    // Vetted: named by an ACE line of a non-empty list (the source passed it above), or by
    // KT lines. Only vetted LAN routers may share a pseudo address (active-active).
    let vetted = super::registry::vetted(&params.ace, source, kt_vetted);
    // The version offered is the version answered: 1 (yamux) from LAN routers of earlier
    // builds, 2 (linkmux) from this one. `Register::decode` took only versions spoken here.
    let kind = Kind::of_version(reg.version).unwrap_or(Kind::Yamux);
    let (opener, requests) = carrier::open_channel(kind);
    let entry = LinkEntry {
        id: registry.next_link_id(),
        index: reg.link_index,
        peer,
        opener,
        streams: StreamCount::default(),
        cancel: CancellationToken::new(),
        since: SystemTime::now(),
        snc_name,
        kind,
    };
    let admitted = match registry.register_vetted(&reg, peer, entry.clone(), vetted) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            refuse(shared, &mut socket, peer, refusal, deadline).await;
            return None;
        }
    };
    let accept = Accept {
        version: kind.version(),
        pool_size: registry.pool_size(),
        server_number: admitted.server_number,
        link_id: entry.id,
    };
    let sent = timeout_at(deadline, socket.write_all(&frame::frame(&accept.encode()))).await;
    if !matches!(sent, Ok(Ok(()))) {
        tracing::info!(%peer, link = entry.id, "reverse-invoke: registration not confirmed in time");
        registry.remove_link(reg.instance, entry.id);
        return None;
    }
    let addrs: Vec<String> = reg.addrs.iter().map(ToString::to_string).collect();
    tracing::info!(%peer, server = admitted.server_number, link = entry.id, slot = reg.link_index, reg_service = reg.reg_service, addrs = %addrs.join(","), replaced = ?admitted.replaced, mux = %kind, "reverse-invoke: LAN router registered");
    Some(Registered {
        socket,
        requests,
        instance: reg.instance,
        entry,
    })
}

/// Drives a registered link until it ends, then forgets it.
async fn serve(registry: Arc<Registry>, link: Registered, stop: CancellationToken) {
    let Registered {
        socket,
        requests,
        instance,
        entry,
    } = link;
    let cancel = entry.cancel.clone();
    let control_cancel = cancel.clone();
    let mut control_seen = false;
    let end = tokio::select! {
        end = carrier::drive(
            socket,
            End::Dmz,
            requests,
            move |stream| {
                // The LAN router opens exactly one stream: the control stream.
                if control_seen {
                    tracing::warn!(link = entry.id, "reverse-invoke: LAN router opened a second stream; link closed");
                    return false;
                }
                control_seen = true;
                let cancel = control_cancel.clone();
                tokio::spawn(async move {
                    carrier::run_control(stream, cancel.clone()).await;
                    cancel.cancel();
                });
                true
            },
            cancel.clone(),
        ) => end,
        _ = stop.cancelled() => mux::LinkEnd::Cancelled,
    };
    cancel.cancel();
    registry.remove_link(instance, entry.id);
    tracing::info!(link = entry.id, peer = %entry.peer, streams = entry.streams.total(), %end, "reverse-invoke: link ended");
}

/// Reads one handshake frame before `deadline`, and not a byte more: the DMZ router's
/// first multiplexer frames (streams opened on a link the moment it registered) may follow its
/// acceptance in the same segment, and they belong to the link's session.
pub(crate) async fn read_frame<S: AsyncRead + Unpin + ?Sized>(
    socket: &mut S,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let mut head = [0u8; frame::HEADER_LEN];
    read_exact_by(socket, &mut head, deadline).await?;
    let length = u32::from_be_bytes(head);
    if u64::from(length) > MAX_HANDSHAKE_FRAME as u64 {
        let too_big = frame::FrameTooBig {
            length,
            max: MAX_HANDSHAKE_FRAME,
        };
        return Err(format!("handshake message too big ({too_big})"));
    }
    // Bounded just above, so the allocation is too.
    let mut payload = vec![0u8; length as usize];
    read_exact_by(socket, &mut payload, deadline).await?;
    Ok(payload)
}

async fn read_exact_by<S: AsyncRead + Unpin + ?Sized>(
    socket: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), String> {
    match timeout_at(deadline, socket.read_exact(buf)).await {
        Err(_) => Err("no handshake message in time".into()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err("connection closed during the handshake".into())
        }
        Ok(Err(err)) => Err(format!("handshake read failed: {err}")),
    }
}

/// Answers a refused registration, logs it, closes.
async fn refuse<S: AsyncWrite + Unpin + ?Sized>(
    shared: &Shared,
    socket: &mut S,
    peer: SocketAddr,
    failure: RouteFailure,
    deadline: Instant,
) {
    let reason = failure.registration_reason();
    crate::gated!(shared.refusal_log(), warn, %peer, rc = failure.rc, reason = ?reason, "reverse-invoke registration refused");
    shared.penalise(peer.ip(), "registration refused");
    if let Some(log) = shared.connlog() {
        log.write(
            Event::PermDenied,
            "RI/-",
            &format!(
                "host {}/{} registration ({})",
                peer_ip(peer),
                peer.port(),
                reason
            ),
        );
    }
    let payload = shared.errors().message(&failure, shared.hide_errors());
    let _ = timeout_at(deadline, socket.write_all(&frame::frame(&payload))).await;
    let _ = timeout_at(deadline, socket.shutdown()).await;
}

fn peer_ip(peer: SocketAddr) -> IpAddr {
    crate::router::selfaddr::canonical(peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_handshake_frame_leaves_what_follows_it_unread() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        let mut bytes = frame::frame(b"RI_ACCEPT\0rest");
        bytes.extend_from_slice(b"yamux frames");
        far.write_all(&bytes).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            read_frame(&mut near, deadline).await.unwrap(),
            b"RI_ACCEPT\0rest"
        );
        let mut after = [0u8; 12];
        near.read_exact(&mut after).await.unwrap();
        assert_eq!(
            &after, b"yamux frames",
            "the session's bytes stay in the socket"
        );

        far.write_all(&(9000u32).to_be_bytes()).await.unwrap();
        let err = read_frame(&mut near, deadline).await.unwrap_err();
        assert!(err.starts_with("handshake message too big"), "{err}");
        far.write_all(&frame::frame(b"x")[..3]).await.unwrap();
        drop(far);
        assert_eq!(
            read_frame(&mut near, deadline).await.unwrap_err(),
            "connection closed during the handshake"
        );
    }
}
