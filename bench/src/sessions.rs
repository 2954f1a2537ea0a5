//! Memory per idle session: a fresh router (or haproxy) process, its RSS before and after
//! `n` routed sessions are opened, checked with one echo each, and left idle.

use std::path::Path;
use std::time::Duration;

use super::client;
use super::net::Hop;
use super::procs::{self, local, Proc, SinkPorts};
use super::table::{Cell, Kind, Table};
use super::wire;

/// Set-ups in flight while the sessions are opened.
const PARALLEL: usize = 256;
/// Descriptors kept aside for everything but sessions.
const RESERVE: u64 = 256;

/// The most sessions one process can hold with two descriptors each under the hard limit.
pub fn max_sessions() -> usize {
    let hard = crate::nofile::current().map_or(1024, |(_, h)| h);
    (hard.saturating_sub(RESERVE) / 2) as usize
}

/// What to measure.
pub struct Plan<'a> {
    pub counts: &'a [usize],
    pub aliases: u8,
    /// Router binaries and their columns.
    pub routers: &'a [(usize, std::path::PathBuf)],
    pub dir: &'a Path,
    pub columns: usize,
    pub haproxy_column: Option<usize>,
    pub socat_column: Option<usize>,
}

/// Adds one row per session count.
pub fn measure(
    plan: &Plan,
    sink: &SinkPorts,
    rt: &tokio::runtime::Runtime,
    table: &mut Table,
    notes: &mut Vec<String>,
) {
    let limit = max_sessions();
    let mut measured = Vec::new();
    for &wanted in plan.counts {
        let n = wanted.min(limit);
        if measured.contains(&n) {
            notes.push(format!(
                "{wanted} sessions were not possible: the open-file hard limit allows {limit} \
                 sessions (2 descriptors each), already measured above."
            ));
            continue;
        }
        measured.push(n);
        let mut label = format!("RSS per idle routed session, {wanted} sessions");
        if n < wanted {
            label = format!("RSS per idle routed session, {wanted} sessions (measured: {n})");
            notes.push(format!(
                "{wanted} sessions were not possible: the open-file hard limit allows {limit} \
                 sessions (2 descriptors each); measured with {n}."
            ));
        }
        let mut cells = vec![Cell::Note("—".into()); plan.columns];
        for (col, binary) in plan.routers {
            cells[*col] = match router_rss(binary, plan, sink, n, rt) {
                Ok(v) => Cell::Value(v),
                Err(e) => Cell::Note(format!("failed: {e}")),
            };
        }
        if let Some(col) = plan.socat_column {
            cells[col] = Cell::Note("n/a (a process per connection)".into());
        }
        if let Some(col) = plan.haproxy_column {
            cells[col] = match haproxy_rss(plan, sink, n, rt) {
                Ok(Some(v)) => Cell::Value(v),
                Ok(None) => Cell::Note("not installed".into()),
                Err(e) => Cell::Note(format!("failed: {e}")),
            };
        }
        table.push(label, Kind::Memory, cells);
    }
}

fn router_rss(
    binary: &Path,
    plan: &Plan,
    sink: &SinkPorts,
    n: usize,
    rt: &tokio::runtime::Runtime,
) -> std::io::Result<f64> {
    let (proc, port) = procs::start_router(binary, plan.dir, sink)?;
    let hops: Vec<Hop> = (1..=plan.aliases.max(1))
        .map(|a| Hop {
            connect: local(port),
            route: Some(wire::route(port, &format!("127.0.0.{a}"), sink.echo, true)),
        })
        .collect();
    per_session(&proc, &hops, n, plan.aliases, rt)
}

fn haproxy_rss(
    plan: &Plan,
    sink: &SinkPorts,
    n: usize,
    rt: &tokio::runtime::Runtime,
) -> std::io::Result<Option<f64>> {
    let maxconn = n as u64 + 100;
    let Some((proc, ports)) =
        procs::start_haproxy(plan.dir, &[sink.echo], sink.echo, plan.aliases, maxconn)?
    else {
        return Ok(None);
    };
    let hops = [Hop {
        connect: local(ports[0]),
        route: None,
    }];
    per_session(&proc, &hops, n, plan.aliases, rt).map(Some)
}

/// RSS growth of `proc` per session, in KiB.
fn per_session(
    proc: &Proc,
    hops: &[Hop],
    n: usize,
    aliases: u8,
    rt: &tokio::runtime::Runtime,
) -> std::io::Result<f64> {
    std::thread::sleep(Duration::from_millis(300));
    let before = proc
        .rss_kib()
        .ok_or_else(|| std::io::Error::other("no RSS"))?;
    let open = rt.block_on(client::idle_sessions(hops, n, aliases, PARALLEL))?;
    std::thread::sleep(Duration::from_secs(1));
    let after = proc
        .rss_kib()
        .ok_or_else(|| std::io::Error::other("no RSS"))?;
    drop(open);
    Ok(after.saturating_sub(before) as f64 / n.max(1) as f64)
}
