//! One link from this LAN router to a DMZ router: connect, register (the handshake of
//! docs/reverse-invoke.md), then drive the link's multiplexer and serve every stream the
//! DMZ router opens as a session accepted from it.
//!
//! The registration offers link protocol version 2 (linkmux). A DMZ router of an earlier
//! build refuses it (-93, `link protocol version 2 not supported`) and closes; this side
//! then registers again at once, on a new connection, with version 1 (yamux), and keeps
//! offering 1 to that DMZ router until one of its links ends.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use super::pool::{DmzPool, SlotState};
use crate::ni::frame;
use crate::ni::rterr::rc;
use crate::ri::carrier::{self, End, Kind, RawStream};
use crate::ri::client::read_frame;
use crate::ri::link::{valid_name, Accept, RegAddr, Register, Reply, YAMUX_VERSION};
use crate::ri::mux::{StreamCount, GROW_AT};
use crate::ri::params::ServerParams;
use crate::router::conn::Side;
use crate::router::errors::RouteFailure;
use crate::router::session;
use crate::router::state::Lifecycle;

/// Connect deadline when `connect_timeout = -1` (SAP: the OS's; ours is explicit).
const OS_CONNECT_TIMEOUT: Duration = Duration::from_secs(75);
/// Deadline for the DMZ router's answer to a registration.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A registered link.
pub(super) struct Link {
    socket: Side,
    accept: Accept,
    kind: Kind,
    local: SocketAddr,
    peer: SocketAddr,
    /// The DMZ router's authenticated SNC name, when the link is TLS (`-K`).
    snc_name: Option<String>,
}

/// Connects slot `index` of `pool` to its DMZ router and registers; the reason to log when
/// that fails. Falls back to version 1 when the DMZ router refuses the version offered.
pub(super) async fn connect_and_register(pool: &DmzPool, index: usize) -> Result<Link, String> {
    let offer = pool.offer.load(Ordering::Relaxed);
    match register(pool, index, offer).await? {
        Registration::Registered(link) => Ok(link),
        Registration::VersionRefused(why) if offer > YAMUX_VERSION => {
            tracing::info!(dmz = %pool.addr, slot = index, offered = offer, %why, "reverse-invoke: the DMZ router refused link protocol version {offer}; registering with version {YAMUX_VERSION} (yamux)");
            pool.offer.store(YAMUX_VERSION, Ordering::Relaxed);
            match register(pool, index, YAMUX_VERSION).await? {
                Registration::Registered(link) => Ok(link),
                Registration::VersionRefused(why) => Err(why),
            }
        }
        Registration::VersionRefused(why) => Err(why),
    }
}

/// The end of one registration attempt that did not fail outright.
enum Registration {
    Registered(Link),
    /// Refused in a way an earlier build refuses a version it does not speak: the reason.
    VersionRefused(String),
}

/// Whether a refusal is how a DMZ router of an earlier build answers a version it does not
/// speak: -93 (its `NI-internal errors`, the code of every undecodable registration; the
/// detail text may be hidden, `-Z`). A DMZ router of this build answers a well-formed
/// registration of either version without it, so a retry with version 1 costs nothing
/// with it either.
pub(crate) fn refuses_version(rc: i32) -> bool {
    rc == rc::NIEROUT_INTERN
}

/// Checks an acceptance against the version offered: the DMZ router answers the version
/// offered (this build) or 1 (never a version it was not offered).
pub(crate) fn accepted_kind(offered: u8, accept: &Accept) -> Result<Kind, String> {
    match Kind::of_version(accept.version) {
        Some(kind) if accept.version <= offered => Ok(kind),
        _ => Err(format!(
            "the DMZ router accepted link protocol version {} to an offer of {offered}",
            accept.version
        )),
    }
}

/// One connection and registration offering link protocol `version`.
async fn register(pool: &DmzPool, index: usize, version: u8) -> Result<Registration, String> {
    let lan = &pool.lan;
    let p = &lan.params;
    let limit = p.connect_timeout.unwrap_or(OS_CONNECT_TIMEOUT);
    let target = pool.addr;
    let socket = match timeout(limit, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => return Err(format!("connect to {target}: {err}")),
        Err(_) => return Err(format!("connect to {target} timed out")),
    };
    let _ = socket.set_nodelay(true);
    let (local, peer) = match (socket.local_addr(), socket.peer_addr()) {
        (Ok(l), Ok(r)) => (l, r),
        _ => return Err("connection lost at once".into()),
    };
    let tls_deadline = Instant::now() + limit.min(REPLY_TIMEOUT);
    let (mut socket, snc_name) =
        crate::ri::snc::connect_link(&lan.shared, socket, peer, tls_deadline).await?;
    let register = Register {
        version,
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
            let kind = accepted_kind(version, &accept)?;
            pool.pool.store(accept.pool_size, Ordering::Relaxed);
            tracing::info!(dmz = %target, slot = index, link = accept.link_id, server = accept.server_number, pool = accept.pool_size, %local, %peer, mux = %kind, "reverse-invoke: registered with the DMZ router");
            Ok(Registration::Registered(Link {
                socket,
                accept,
                kind,
                local,
                peer,
                snc_name,
            }))
        }
        Ok(Reply::Refused { rc, error, detail }) => {
            let why = format!("refused: {detail} (rc {rc})");
            if version > YAMUX_VERSION && refuses_version(rc) {
                return Ok(Registration::VersionRefused(why));
            }
            tracing::warn!(dmz = %target, slot = index, rc, %error, %detail, "reverse-invoke: the DMZ router refused the registration");
            Err(why)
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
/// Returns why it ended.
pub(super) async fn serve(pool: &Arc<DmzPool>, index: usize, link: Link) -> String {
    let Link {
        socket,
        accept,
        kind,
        local,
        peer,
        snc_name,
    } = link;
    let streams = StreamCount::default();
    pool.set(
        index,
        SlotState::Up {
            link_id: accept.link_id,
            local,
            since: SystemTime::now(),
            streams: streams.clone(),
        },
    );
    let (opener, requests) = carrier::open_channel(kind);
    let cancel = pool.cancel.child_token();
    let control_cancel = cancel.clone();
    tokio::spawn(async move {
        match timeout(Duration::from_secs(5), opener.open()).await {
            Ok(Ok(control)) => carrier::run_control(control, control_cancel.clone()).await,
            _ => tracing::warn!("reverse-invoke: control stream not opened"),
        }
        control_cancel.cancel();
    });
    let inbound = Arc::clone(pool);
    let end = carrier::drive(
        socket,
        End::Lan,
        requests,
        move |stream| {
            accept_stream(&inbound, stream, &streams, peer, local, &snc_name);
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
    pool: &DmzPool,
    stream: RawStream,
    streams: &StreamCount,
    peer: SocketAddr,
    local: SocketAddr,
    snc_name: &Option<String>,
) {
    let lan = &pool.lan;
    if lan.shared.lifecycle() != Lifecycle::Running {
        return; // dropping it resets the stream; the DMZ router reports the route broken
    }
    let conn = stream.counted(streams.guard());
    if streams.open() >= GROW_AT {
        pool.grow_now.notify_one();
    }
    let shared = Arc::clone(&lan.shared);
    match shared.admission().take_client_slot() {
        Some(permit) => {
            // The session is the DMZ router's, with its name for the K* lines.
            let pre = session::PreRoute {
                deadline: Instant::now() + shared.config().timeout,
                snc_name: snc_name.clone(),
                pending: None,
            };
            lan.sessions
                .spawn(crate::metrics::session(session::run_with(
                    shared,
                    Side::stream(conn),
                    peer,
                    Some(local),
                    permit,
                    pre,
                )));
        }
        None => {
            lan.sessions.spawn(crate::metrics::session(async move {
                let mut conn = conn;
                let failure = RouteFailure::table_full(shared.config().max_clients);
                let to = Some(&mut conn);
                let end = session::refuse(&shared, to, peer, failure.into(), None).await;
                let _ = conn.shutdown().await;
                end
            }));
        }
    }
}
