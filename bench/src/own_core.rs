//! The single-hop rows again with the relay on a core of its own: client and sink on the
//! first CPU, the router (or socat, haproxy) on the second. See `pin` for why.

use std::path::Path;

use super::table::Table;
use super::{hop, paths, pin, procs, Options};

/// Column of the reference path and of the router under test.
const OURS: &str = "saprouter-rs";

/// The rows measured with the placement, and the two CPUs it used.
pub struct OwnCore {
    pub table: Table,
    pub ends: usize,
    pub middle: usize,
}

/// Measures throughput and latency with the placement; `Ok(None)` when the machine has
/// fewer than two CPUs or no such group is wanted.
pub fn measure(opts: &Options, plan: &hop::Plan, dir: &Path) -> std::io::Result<Option<OwnCore>> {
    let wanted: Vec<String> = ["throughput", "latency"]
        .into_iter()
        .filter(|g| opts.only.is_empty() || opts.only.iter().any(|o| o == g))
        .map(str::to_string)
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let Some(placement) = pin::Placement::start()? else {
        return Ok(None);
    };
    // The sink inherits this thread's CPU; the paths' processes get the other one.
    let (sink_proc, sink) = procs::start_sink(1)?;
    let started = paths::start(
        &opts.router,
        opts.baseline.as_deref(),
        !opts.skip_peers,
        &sink,
        &dir.join("own-core"),
    )?;
    let plan = hop::Plan {
        only: wanted,
        sink_pid: Some(sink_proc.pid()),
        ..plan.clone()
    };
    let names: Vec<&str> = started.paths.iter().map(|p| p.name.as_str()).collect();
    let mut table = Table::new(&names);
    if plan.wants("throughput") {
        hop::bulk(&started.paths, &plan, &hop::BULK_ROWS, &mut table);
    }
    if plan.wants("latency") {
        hop::latency(&started.paths, &plan, &mut table);
    }
    drop(started);
    drop(sink_proc);
    let (ends, middle) = (placement.ends, placement.middle);
    drop(placement);
    Ok(Some(OwnCore {
        table,
        ends,
        middle,
    }))
}

/// The bound the ends' core sets when the relay has a core of its own: the ends' CPU per
/// GB direct against relayed (the relay's receive and acknowledgement work on loopback
/// runs partly on the sender's core).
pub fn bound(t: &Table, row: &str) -> Option<String> {
    let ends = format!("… CPU time of client and sink per GB ({row}");
    let direct = t.value(&ends, "direct")?;
    let routed = t.value(&ends, OURS)?;
    (routed > 0.0).then(|| {
        format!(
            "the ends' core spent {direct:.2} CPU-s per GB direct and {routed:.2} relayed: \
             the ratio cannot exceed {:.2}",
            direct / routed
        )
    })
}
