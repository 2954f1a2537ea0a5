//! Reaching the next hop of a route: resolve its host, connect within the route's deadline
//! (bounded by `--max-connecting`), hand the rest of the route on to a further router and
//! read its answer, or open a stream to a registered LAN router over a reverse-invoke link.

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::conn::BoxConn;
use super::errors::RouteFailure;
use super::refusal::Refusal;
use super::state::Shared;
use crate::ni::frame::{self, NI_PONG};
use crate::ni::route::{RouteHop, RouteRequest};
use crate::ni::rterr::{rc, RTERR_EYECATCHER};

const MODULE: &str = "router/nexthop.rs";

/// Largest answer accepted from a downstream router before its route stands.
const MAX_DOWNSTREAM_ANSWER: usize = 64 * 1024;

/// A route's host field, checked: an address literal, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec<'a> {
    /// An address literal (brackets removed).
    Literal(IpAddr),
    /// A host name for the system resolver.
    Name(&'a str),
}

/// Checks a route's host field the way the router does before any lookup. Pure: the
/// router and `saprouter --explain` both start here.
pub fn host_spec(host: &str) -> Result<HostSpec<'_>, RouteFailure> {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if name.is_empty() {
        return Err(unknown_host(
            host,
            "NiHL6GetNodeAddr: hostname empty".into(),
        ));
    }
    if name.len() > 253
        || name.split('.').any(|label| label.len() > 63)
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:%".contains(&b))
    {
        return Err(unknown_host(
            host,
            format!("NiHL6GetNodeAddr: hostname '{host}' invalid"),
        ));
    }
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => HostSpec::Literal(ip),
        Err(_) => HostSpec::Name(name),
    })
}

/// The address a route goes to among those a name resolved to: the first IPv4 address,
/// else the first. Pure, shared with `saprouter --explain`.
pub fn pick_address(host: &str, addrs: &[IpAddr]) -> Result<IpAddr, RouteFailure> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| {
            unknown_host(
                host,
                format!("NiHL6GetNodeAddr: hostname '{host}' has no address"),
            )
        })
}

/// The -3 refusal for a host that cannot be used.
pub fn unknown_host(host: &str, detail: String) -> RouteFailure {
    RouteFailure::new(
        rc::NIEROUT_HOST_UNKNOWN,
        format!("hostname '{host}' unknown"),
        detail,
        MODULE,
        line!(),
    )
    .with_syscall_text("getaddrinfo")
}

/// Resolves a route's host name or literal to one address (IPv4 preferred).
pub(super) async fn resolve_host(host: &str, deadline: Instant) -> Result<IpAddr, RouteFailure> {
    let name = match host_spec(host)? {
        HostSpec::Literal(ip) => return Ok(ip),
        HostSpec::Name(name) => name,
    };
    let lookup = tokio::net::lookup_host((name, 0));
    let addrs: Vec<IpAddr> = match timeout_at(deadline, lookup).await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        Ok(Err(err)) => {
            return Err(unknown_host(
                host,
                format!("NiHL6GetNodeAddr: hostname '{host}' unknown ({err})"),
            ))
        }
        Err(_) => {
            return Err(unknown_host(
                host,
                format!("NiHL6GetNodeAddr: lookup of '{host}' timed out"),
            ))
        }
    };
    pick_address(host, &addrs)
}

/// Connects to the next hop within the deadline. Waiting for one of the
/// `--max-connecting` places counts against the same deadline, so black-hole destinations
/// cannot hold more than that many connects at once (hostile input H55, docs/hardening.md).
pub(super) async fn connect(
    shared: &Shared,
    target: SocketAddr,
    next: &RouteHop,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<TcpStream, RouteFailure> {
    let attempt = async move {
        let _place = shared.admission().wait_to_connect().await;
        TcpStream::connect(target).await
    };
    match timeout_at(deadline, attempt).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(err)) => Err(RouteFailure::new(
            rc::NIEROUT_CONN_REFUSED,
            format!("partner '{}:{}' not reached", next.host, next.service),
            format!("NiPConnect2: {target}"),
            MODULE,
            line!(),
        )
        .with_os_error("connect", &err)),
        Err(_) => Err(RouteFailure::hop_timed_out(
            next,
            "could not establish connection",
            timeout,
        )),
    }
}

/// Sends the advanced route to the next router and waits for its answer. Returns bytes that
/// arrived behind its `NI_PONG`.
pub(super) async fn hand_on<S: AsyncRead + AsyncWrite + Unpin>(
    server: &mut S,
    onward: &RouteRequest,
    next: &RouteHop,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<Bytes, Refusal> {
    use tokio::io::AsyncReadExt;
    let timed_out = || RouteFailure::hop_timed_out(next, "no answer from the next router", timeout);
    let broken = |detail: String| {
        RouteFailure::new(
            rc::NIEROUT_CONN_BROKEN,
            "connection terminated",
            detail,
            MODULE,
            line!(),
        )
    };
    let request = frame::frame(&onward.encode());
    match timeout_at(deadline, server.write_all(&request)).await {
        Err(_) => return Err(timed_out().into()),
        Ok(Err(err)) => {
            return Err(broken(format!("NiIWrite: route to next router not sent ({err})")).into())
        }
        Ok(Ok(())) => {}
    }
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match frame::split_frame(&mut buf, MAX_DOWNSTREAM_ANSWER) {
            Ok(Some(answer)) if answer.as_ref() == NI_PONG => return Ok(buf.split().freeze()),
            Ok(Some(answer)) if answer.starts_with(RTERR_EYECATCHER) => {
                return Err(Refusal::Forward(answer))
            }
            Ok(Some(_)) | Err(_) => {
                return Err(RouteFailure::new(
                    rc::NIEROUT_INTERN,
                    "internal error",
                    format!(
                        "NiRRouteRepl: invalid answer from the next router {}:{}",
                        next.host, next.service
                    ),
                    MODULE,
                    line!(),
                )
                .into())
            }
            Ok(None) => {}
        }
        buf.reserve(1024);
        match timeout_at(deadline, server.read_buf(&mut buf)).await {
            Err(_) => return Err(timed_out().into()),
            Ok(Ok(0)) => {
                return Err(broken("NiIRead: next router closed the connection".into()).into())
            }
            Ok(Err(err)) => {
                // A TLS next hop that refuses this router's certificate says so here.
                let refused = super::snc::refused_by_peer(&err, next);
                return Err(refused
                    .unwrap_or_else(|| broken(format!("NiIRead: {err}")))
                    .into());
            }
            Ok(Ok(_)) => {}
        }
    }
}

impl RouteFailure {
    /// Names the system call that failed, without an errno (name lookups).
    pub fn with_syscall_text(mut self, call: &'static str) -> Self {
        self.system_call = Some((call, 0, String::new()));
        self
    }
}

/// Opens a stream over a reverse-invoke link. The LAN router behind it is a router, so the
/// route must go on behind it.
pub(super) async fn open_registered(
    hops: &dyn super::conn::RegisteredHops,
    route: &RouteRequest,
    next: &RouteHop,
    ip: IpAddr,
    port: u16,
    deadline: Instant,
) -> Result<BoxConn, RouteFailure> {
    if route.advanced().is_none() {
        return Err(RouteFailure::new(
            rc::NIEROUT_INTERN,
            "internal error",
            format!("NiRRouteRepl: {}:{} is a registered SAProuter; the route must name a target behind it", next.host, next.service),
            MODULE,
            line!(),
        ));
    }
    match timeout_at(deadline, hops.open(ip, port)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => {
            // The registry says why (server away, links full); a pseudo address is never
            // dialled instead.
            let (code, detail) = match crate::ri::registry::OpenRefusal::of(&err) {
                Some(refusal) => (refusal.rc, refusal.detail.clone()),
                None => (
                    rc::NIEROUT_CONN_REFUSED,
                    format!("NiRIOpen: no usable reverse-invoke link to {ip}:{port} ({err})"),
                ),
            };
            Err(RouteFailure::new(
                code,
                format!("partner '{}:{}' not reached", next.host, next.service),
                detail,
                MODULE,
                line!(),
            ))
        }
        Err(_) => Err(RouteFailure::new(
            rc::NIETIMEOUT,
            format!("connection to {}:{} timed out", next.host, next.service),
            format!("NiRIOpen: no reverse-invoke stream to {ip}:{port} in time"),
            MODULE,
            line!(),
        )),
    }
}
