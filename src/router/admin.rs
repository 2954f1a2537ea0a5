//! `ROUTER_ADM` requests on the server side: the info request of `-l` (local peers, or remote
//! peers the table and `-P` admit) and the operator commands (local peers only).
//!
//! Replies: the info request gets the client records, the server record, the text lines and a
//! zero-length end frame. Every other command gets a zero-length frame when it was carried
//! out, or an `NI_RTERR` that says why not.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::clients::Interrupt;
use super::conn::Conn;
use super::connlog::Event;
use super::errors::RouteFailure;
use super::selfaddr;
use super::session::{send_failure, send_frame};
use super::state::{Lifecycle, Shared};
use crate::ni::admin::{
    client_flags, AdminCommand, AdminRequest, InfoClient, InfoServer, BYTES_PREFIX,
};
use crate::ni::rterr::rc;
use crate::routtab::{Decision, RouteQuery};

const MODULE: &str = "router/admin.rs";

/// Handles one admin request on `stream` (already read: `payload`).
pub async fn run<C: Conn>(
    shared: &Shared,
    stream: &mut C,
    peer: SocketAddr,
    own: Option<SocketAddr>,
    payload: &[u8],
) {
    let request = match AdminRequest::decode(payload) {
        Ok(request) => request,
        Err(err) => {
            crate::gated!(shared.refusal_log(), info, %peer, %err, "malformed admin request");
            shared.penalise(peer.ip(), "malformed admin request");
            crate::metrics::admin_request(None);
            let failure = RouteFailure::new(
                rc::NIEROUT_INTERN,
                "internal error",
                format!("NiRAdmin: {err}"),
                MODULE,
                line!(),
            );
            send_failure(shared, stream, &failure).await;
            return;
        }
    };
    let local = selfaddr::is_local(peer.ip());
    crate::gated!(shared.refusal_log(), info, %peer, local, command = ?request.command, "admin request");
    crate::metrics::admin_request(Some(&request.command));

    if let AdminCommand::Info { password } = &request.command {
        match info_allowed(shared, own, peer, local, password.as_deref()) {
            Ok(()) => send_info(shared, stream).await,
            Err(failure) => {
                shared.penalise(peer.ip(), "info request refused");
                send_failure(shared, stream, &failure).await;
            }
        }
        return;
    }
    if !local {
        crate::gated!(shared.refusal_log(), warn, %peer, command = ?request.command, "admin request from a remote host refused");
        shared.penalise(peer.ip(), "remote admin request");
        let failure = RouteFailure::new(
            rc::NIEROUT_PERM_DENIED,
            "access denied (administration from a remote host)",
            format!("NiRAdmin: admin request from {} denied", peer.ip()),
            MODULE,
            line!(),
        );
        send_failure(shared, stream, &failure).await;
        return;
    }
    // `-n` re-reads the SNC identity with the table; each keeps its old state on error.
    let identity = match request.command {
        AdminCommand::NewRoutTab => shared.reload_snc().await.map_err(snc_not_reloaded),
        _ => Ok(()),
    };
    match execute(shared, request.command).await.and(identity) {
        Ok(()) => send_frame(stream, &[]).await,
        Err(failure) => send_failure(shared, stream, &failure).await,
    }
}

/// `-n`'s answer when the table was read but the new SNC identity was refused.
fn snc_not_reloaded(err: String) -> RouteFailure {
    RouteFailure::new(
        rc::NIEROUT_INTERN,
        "SNC identity not reloaded; the certificate in use stays",
        err,
        MODULE,
        line!(),
    )
}

/// Info needs the `-P` password when one is set; remote peers also need a table entry that
/// permits a route from them to this router's own address and port.
fn info_allowed(
    shared: &Shared,
    own: Option<SocketAddr>,
    peer: SocketAddr,
    local: bool,
    offered: Option<&str>,
) -> Result<(), RouteFailure> {
    let refused = |why: &str| {
        crate::gated!(shared.refusal_log(), warn, %peer, why, "info request refused");
        RouteFailure::new(
            rc::NIEROUT_INFO_DENIED,
            "access denied (info request refused)",
            format!("NiRAdmin: info request from {} refused", peer.ip()),
            MODULE,
            line!(),
        )
    };
    if let Some(expected) = &shared.config().info_password {
        if !expected.matches(offered.unwrap_or("")) {
            return Err(refused("wrong info password"));
        }
    }
    if local {
        return Ok(());
    }
    let own = own.ok_or_else(|| refused("no local address"))?;
    let passwords: Vec<&str> = offered.into_iter().filter(|p| !p.is_empty()).collect();
    let query = RouteQuery {
        source: selfaddr::canonical(peer.ip()),
        snc_name: None,
        destination: selfaddr::canonical(own.ip()),
        port: own.port(),
        passwords: &passwords,
        raw: false,
        routers_before: 0,
        routers_after: 0,
    };
    match shared.routtab().decide(&query) {
        Decision::Permit { .. } => Ok(()),
        Decision::Deny { .. } => Err(refused("no table entry permits info from this host")),
    }
}

/// Seconds since the epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The info reply: client records, server record, text lines, end frame.
async fn send_info<C: Conn>(shared: &Shared, stream: &mut C) {
    let clients = shared.clients().snapshot();
    let mut records = Vec::with_capacity(clients.len() * crate::ni::admin::INFO_CLIENT_LEN);
    for c in &clients {
        let mut flags = client_flags::CONNECTED;
        if c.partner.is_some() {
            flags |= client_flags::ROUTED;
        }
        if c.traced {
            flags |= client_flags::TRACED;
        }
        let (partner, service) = c
            .partner
            .as_ref()
            .map(|p| (p.host.clone(), p.service.clone()))
            .unwrap_or_default();
        let record = InfoClient {
            id: c.id,
            flags,
            connected_on: unix(c.connected_on),
            address: selfaddr::canonical(c.peer.ip()).to_string(),
            partner,
            service,
        };
        records.extend_from_slice(&record.encode());
    }
    send_frame(stream, &records).await;
    let server = InfoServer {
        pid: std::process::id(),
        parent_pid: 0,
        started_on: unix(shared.started_on()),
        port: shared.port(),
        parent_port: 0,
    };
    send_frame(stream, &server.encode()).await;
    for line in [
        format!("Total no. of clients: {}", clients.len()),
        format!("Working directory   : {}", shared.working_dir().display()),
        format!(
            "Routtab             : {}",
            shared.config().routtab.display()
        ),
        super::fdlimit::info_line(),
    ]
    .into_iter()
    .chain(super::limits::info_lines(shared))
    .chain(super::snc_identity::info_lines(shared))
    .chain(clients.iter().filter(|c| c.partner.is_some()).map(|c| {
        let (to_partner, to_client) = c.traffic.get();
        format!(
            "{BYTES_PREFIX}{}: {to_partner} to partner, {to_client} to client",
            c.id
        )
    }))
    .chain(shared.info_extra())
    {
        let mut text = line.into_bytes();
        text.push(0);
        send_frame(stream, &text).await;
    }
    send_frame(stream, &[]).await;
}

/// Carries out a local operator command.
async fn execute(shared: &Shared, command: AdminCommand) -> Result<(), RouteFailure> {
    match command {
        AdminCommand::Info { .. } => Ok(()),
        AdminCommand::NewRoutTab => match shared.reload_routtab().await {
            Ok(lines) => {
                tracing::info!(lines, path = %shared.config().routtab.display(), "route permission table reloaded");
                if let Some(log) = shared.connlog() {
                    log.write(
                        Event::ReadRouttab,
                        "",
                        &shared.config().routtab.display().to_string(),
                    );
                }
                Ok(())
            }
            Err(err) => {
                tracing::error!(%err, "route permission table not reloaded; the old table stays in force");
                Err(RouteFailure::new(
                    rc::NIEROUT_INTERN,
                    "route permission table not reloaded",
                    err.to_string(),
                    MODULE,
                    line!(),
                ))
            }
        },
        AdminCommand::ToggleTrace => {
            let level = shared.toggle_trace();
            tracing::info!(level, "trace level toggled");
            Ok(())
        }
        AdminCommand::Stop => {
            tracing::info!("stop requested");
            shared.clients().interrupt_all(Interrupt::Shutdown);
            shared.set_lifecycle(Lifecycle::Stopping);
            Ok(())
        }
        AdminCommand::SoftShutdown => {
            tracing::info!("soft shutdown requested: port released, existing routes continue");
            shared.set_lifecycle(Lifecycle::SoftShutdown);
            Ok(())
        }
        AdminCommand::Cancel(ids) => {
            let missing: Vec<String> = ids
                .iter()
                .filter(|&&id| !shared.clients().interrupt(id, Interrupt::Cancel))
                .map(u32::to_string)
                .collect();
            tracing::info!(?ids, "cancel requested");
            if missing.is_empty() {
                Ok(())
            } else {
                Err(RouteFailure::new(
                    rc::NIEROUT_NOCLIENT,
                    "client not available",
                    format!("NiRAdmin: no client with id {}", missing.join(", ")),
                    MODULE,
                    line!(),
                ))
            }
        }
        AdminCommand::DumpBuffers => {
            for c in shared.clients().snapshot() {
                tracing::info!(id = c.id, peer = %c.peer, partner = ?c.partner, traced = c.traced, "client table dump");
            }
            Ok(())
        }
        AdminCommand::FlushBuffers => {
            tracing::info!("flush requested: relay buffers are not pooled, nothing to release");
            Ok(())
        }
        AdminCommand::SetTracePeer(mask) | AdminCommand::ClearTracePeer(mask)
            if mask.is_empty() =>
        {
            Err(RouteFailure::new(
                rc::NIEROUT_INTERN,
                "internal error",
                "NiRAdmin: empty trace mask",
                MODULE,
                line!(),
            ))
        }
        AdminCommand::SetTracePeer(mask) => {
            shared.set_trace_mask(&mask, true);
            let n = shared.clients().set_traced_where(true, |c| {
                super::state::mask_matches(&mask, &c.peer.ip().to_string())
            });
            tracing::info!(?mask, clients = n, "tracing peers");
            Ok(())
        }
        AdminCommand::ClearTracePeer(mask) => {
            shared.set_trace_mask(&mask, false);
            let n = shared.clients().set_traced_where(false, |c| {
                super::state::mask_matches(&mask, &c.peer.ip().to_string())
            });
            tracing::info!(?mask, clients = n, "no longer tracing peers");
            Ok(())
        }
        AdminCommand::TraceConnection(ids) | AdminCommand::TraceConnection2(ids) => {
            for id in &ids {
                let now = !shared
                    .clients()
                    .snapshot()
                    .iter()
                    .any(|c| c.id == *id && c.traced);
                shared.clients().set_traced(*id, now);
            }
            Ok(())
        }
        AdminCommand::HideErrors => {
            let hidden = shared.toggle_hide_errors();
            tracing::info!(hidden, "error details for clients toggled");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::config::{RouterConfig, Secret};
    use crate::routtab::{parse_table, Resolver};
    use crate::services::Services;
    use std::net::IpAddr;
    use tokio::io::AsyncReadExt;

    struct NoDns;
    impl Resolver for NoDns {
        fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
            Err(format!("{name}: no DNS in tests"))
        }
        fn resolve_service(&self, _: &str) -> Option<u16> {
            None
        }
    }

    fn shared(table: &str, info_password: Option<&str>) -> Shared {
        let table = parse_table(table, std::path::Path::new("t"), &NoDns).unwrap();
        let config = RouterConfig {
            info_password: info_password.map(Secret::new),
            ..RouterConfig::default()
        };
        Shared::new(config, table, Services::builtin_only(), None, 3299, None)
    }

    /// Runs one admin request from `peer` and returns the first reply frame.
    async fn ask(shared: &Shared, peer: &str, own: &str, request: AdminRequest) -> Vec<u8> {
        let (mut ours, mut theirs) = tokio::io::duplex(1 << 16);
        let peer: SocketAddr = peer.parse().unwrap();
        let own: SocketAddr = own.parse().unwrap();
        run(shared, &mut ours, peer, Some(own), &request.encode()).await;
        drop(ours);
        let mut all = Vec::new();
        theirs.read_to_end(&mut all).await.unwrap();
        let len = u32::from_be_bytes(all[..4].try_into().unwrap()) as usize;
        all[4..4 + len].to_vec()
    }

    fn rc_of(reply: &[u8]) -> i32 {
        crate::ni::rterr::RtErr::decode(reply).unwrap().return_code
    }

    #[tokio::test]
    async fn remote_admin_is_refused_and_changes_nothing() {
        let shared = shared("P * * *\n", None);
        for command in [
            AdminCommand::Stop,
            AdminCommand::SoftShutdown,
            AdminCommand::HideErrors,
            AdminCommand::NewRoutTab,
        ] {
            let reply = ask(
                &shared,
                "192.0.2.7:40000",
                "192.0.2.1:3299",
                AdminRequest {
                    version: 40,
                    command,
                },
            )
            .await;
            assert_eq!(rc_of(&reply), rc::NIEROUT_PERM_DENIED);
        }
        assert_eq!(shared.lifecycle(), Lifecycle::Running);
        assert!(!shared.hide_errors());
    }

    #[tokio::test]
    async fn local_admin_is_carried_out() {
        let shared = shared("P * * *\n", None);
        let reply = ask(
            &shared,
            "127.0.0.1:40000",
            "127.0.0.1:3299",
            AdminRequest {
                version: 40,
                command: AdminCommand::HideErrors,
            },
        )
        .await;
        assert!(
            reply.is_empty(),
            "a carried-out command answers with an empty frame"
        );
        assert!(shared.hide_errors());
    }

    #[tokio::test]
    async fn remote_info_needs_a_table_entry_and_the_password() {
        let info = |pw: &str| AdminRequest {
            version: 40,
            command: AdminCommand::Info {
                password: Some(pw.into()),
            },
        };
        // The table admits info from 192.0.2.7 to the router's own address and port.
        let admitted = shared("P 192.0.2.7 192.0.2.1 3299\nD * * *\n", Some("pw"));
        assert_eq!(
            rc_of(&ask(&admitted, "192.0.2.7:1", "192.0.2.1:3299", info("nope")).await),
            rc::NIEROUT_INFO_DENIED
        );
        let reply = ask(&admitted, "192.0.2.7:1", "192.0.2.1:3299", info("pw")).await;
        assert_eq!(
            reply.len() % crate::ni::admin::INFO_CLIENT_LEN,
            0,
            "client records expected"
        );
        assert_eq!(
            rc_of(&ask(&admitted, "192.0.2.8:1", "192.0.2.1:3299", info("pw")).await),
            rc::NIEROUT_INFO_DENIED
        );
    }
}
