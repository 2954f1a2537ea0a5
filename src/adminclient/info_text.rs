//! The text `saprouter -l` / `-L` prints for an info reply, laid out as SAP's saprouter
//! prints it: the banner, the server record, the client table (with byte counts for `-L`)
//! and the router's text lines.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::InfoReply;
use crate::ni::admin::{client_flags, BYTES_PREFIX, ROUTER_VERSION};

/// A time in SAP's `ctime` form (`Sun Nov 29 01:02:03 2026`), local time.
pub fn ctime(secs: u64) -> String {
    crate::timefmt::ctime(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The whole listing; `now` heads it (the time of the request), `long` adds the connect
/// time and byte counts of each client.
pub fn render(reply: &InfoReply, long: bool, now: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{now}");
    let _ = writeln!(
        out,
        "SAP Network Interface Router, Version {ROUTER_VERSION}"
    );
    let _ = writeln!(
        out,
        "peer SAProuter with NI version {} ...",
        reply.ni_version
    );
    let _ = writeln!(out, "send info-request to running SAProuter ...\n");
    let _ = writeln!(
        out,
        "SAP Network Interface Router running on port {} (PID = {})",
        reply.server.port, reply.server.pid
    );
    let _ = writeln!(out, "Started on: {}", ctime(reply.server.started_on));
    if reply.server.parent_pid != 0 {
        let _ = writeln!(
            out,
            "(Parent process: PID = {}, port = {})",
            reply.server.parent_pid, reply.server.parent_port
        );
    }
    out.push('\n');
    if long {
        out.push_str("ID  CLIENT                      | PARTNER                     service    connected on               bytes > partner / < client\n");
        out.push_str("--------------------------------+-------------------------------------------------------\n");
    } else {
        out.push_str("ID  CLIENT                      | PARTNER                     service\n");
        out.push_str("--------------------------------+------------------------------------\n");
    }
    for c in &reply.clients {
        let traced = if c.flags & client_flags::TRACED != 0 {
            "*"
        } else {
            " "
        };
        let (partner, service) = if c.flags & client_flags::ROUTED != 0 {
            (c.partner.as_str(), c.service.as_str())
        } else {
            ("(no partner)", "")
        };
        let id = format!("{}{traced}", c.id);
        if long {
            let _ = writeln!(
                out,
                "{id:<4}{:<28}| {partner:<28}{service:<11}{}  {}",
                c.address,
                ctime(c.connected_on),
                byte_counts(reply, c.id)
            );
        } else {
            let _ = writeln!(out, "{id:<4}{:<28}| {partner:<28}{service}", c.address);
        }
    }
    out.push('\n');
    for line in reply.lines.iter().filter(|l| !l.starts_with(BYTES_PREFIX)) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// A client's byte counts from the router's `BYTES_PREFIX` line, as `N > M <`.
fn byte_counts(reply: &InfoReply, id: u32) -> String {
    let prefix = format!("{BYTES_PREFIX}{id}: ");
    reply
        .lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|counts| {
            counts
                .replace(" to partner,", " >")
                .replace(" to client", " <")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
