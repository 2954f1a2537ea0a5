//! The router's SNC name checks (docs/configuration.md §1.3): a connection from a host that a
//! `KT` line names must have come over TLS with that line's name, and the hop to a host/service
//! that a `KT` line names is TLS with that peer name. Every failure is -104
//! (`NIEROUT_SNC_FAILURE`), logged with its reason; nothing falls back to plaintext.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::conn::BoxConn;
use super::errors::RouteFailure;
use super::state::Shared;
use crate::ni::route::RouteHop;
use crate::ni::rterr::rc;
use crate::routtab::{RoutTab, SncName};

const MODULE: &str = "router/snc.rs";

fn failure(error: &str, detail: String, line: u32) -> RouteFailure {
    RouteFailure::new(rc::NIEROUT_SNC_FAILURE, error, detail, MODULE, line)
}

/// Checks a route's source against the `KT` lines naming its host: when there are any, the
/// connection must be TLS with one of their names. Pure: the caller logs a refusal.
pub fn check_source(
    routtab: &RoutTab,
    peer: SocketAddr,
    snc_name: Option<&str>,
) -> Result<(), RouteFailure> {
    let Some((line, wanted)) = routtab.snc_source_refusal(peer.ip(), snc_name) else {
        return Ok(());
    };
    let detail = match snc_name {
        None => format!(
            "NiSncCheck: connections from {} must be SNC (TLS) with name {wanted} (KT line {line}); this one is plaintext",
            peer.ip()
        ),
        Some(name) => format!(
            "NiSncCheck: connections from {} must be SNC with name {wanted} (KT line {line}); this one is {name}",
            peer.ip()
        ),
    };
    Err(failure("SNC required", detail, line!()))
}

/// Wraps the TCP connection to the next hop in TLS when `kt` (the first `KT` line for that
/// address and service) says so, and checks the peer's name against it.
pub async fn secure_hop(
    shared: &Shared,
    tcp: TcpStream,
    target: SocketAddr,
    next: &RouteHop,
    kt: Option<&SncName>,
    deadline: Instant,
) -> Result<BoxConn, RouteFailure> {
    let Some(wanted) = kt else {
        return Ok(Box::new(tcp));
    };
    let refuse = |error: &str, detail: String| {
        tracing::warn!(%target, host = %next.host, service = %next.service, %detail, "SNC hop failed; route refused");
        failure(error, detail, line!())
    };
    let Some(snc) = &shared.config().snc else {
        // check_hop refused this before the connection was made.
        return Err(refuse(
            "SNC not active",
            format!("NiSncInit: the hop to {target} needs SNC, but the router runs without -K"),
        ));
    };
    let (tls, name) = snc
        .connect(tcp, target.ip(), deadline)
        .await
        .map_err(|why| {
            refuse(
                "SNC handshake failed",
                format!("NiSncHandshake: TLS with {target} failed: {why}"),
            )
        })?;
    if !wanted.matches(&name) {
        return Err(refuse(
            "SNC name mismatch",
            format!("NiSncHandshake: {target} is {name}; the KT line requires {wanted}"),
        ));
    }
    tracing::info!(%target, snc_name = %name, "SNC (TLS) hop authenticated");
    Ok(Box::new(tls))
}

/// Checks, before connecting, that a hop a `KT` line names can be SNC with that name: a
/// TCP hop needs `-K` (the TLS handshake follows in [`secure_hop`]); a reverse-invoke hop
/// (`link` is `Some`, holding the name its links were authenticated with) must have been
/// registered by a LAN router with that name. `snc_active`: the router runs with `-K`.
/// Pure: the caller logs a refusal.
pub fn check_hop(
    snc_active: bool,
    kt: Option<&SncName>,
    link: Option<Option<String>>,
    target: SocketAddr,
) -> Result<(), RouteFailure> {
    let Some(wanted) = kt else {
        return Ok(());
    };
    let detail = match link {
        Some(Some(name)) if wanted.matches(&name) => return Ok(()),
        Some(Some(name)) => format!(
            "NiSncCheck: {target} is served by a reverse-invoke link authenticated as {name}; the KT line requires {wanted}"
        ),
        Some(None) => format!(
            "NiSncCheck: {target} is served by a reverse-invoke link without SNC (TLS); the KT line requires {wanted}"
        ),
        None if !snc_active => format!(
            "NiSncInit: a KT line makes the hop to {target} SNC (name {wanted}), but the router runs without -K"
        ),
        None => return Ok(()),
    };
    Err(failure("SNC check failed", detail, line!()))
}

/// The -104 for a read error that is a TLS error (the next router refused this router's
/// certificate after the handshake, as TLS 1.3 allows); `None` for other errors.
pub fn refused_by_peer(err: &std::io::Error, next: &RouteHop) -> Option<RouteFailure> {
    if !crate::tls::is_tls_error(err) {
        return None;
    }
    let detail = format!(
        "NiSncHandshake: {}:{} refused this router: {}",
        next.host,
        next.service,
        crate::tls::describe(err)
    );
    tracing::warn!(host = %next.host, service = %next.service, %detail, "SNC hop failed; route refused");
    Some(failure("SNC handshake failed", detail, line!()))
}
