//! Single-hop measurements: the same client and sink over each path (direct, the router,
//! socat, haproxy): bulk throughput in raw and NI mode, both directions; 64-byte NI round
//! trips; route set-ups per second.

use std::time::Duration;

use super::client;
use super::net::Hop;
use super::procs::{self, local, SinkPorts};
use super::table::{Cell, Kind, Table};
use super::wire;

/// How a client reaches each sink service over one path.
#[derive(Clone, Debug)]
pub struct Hops {
    pub discard_raw: Hop,
    pub discard_ni: Hop,
    pub source_raw: Hop,
    pub source_ni: Hop,
    pub echo: Hop,
    pub pong: Hop,
}

/// One column: a path, or why it is missing.
pub struct Path {
    pub name: String,
    pub hops: Result<Hops, String>,
    /// Processes between client and sink (their CPU time is the path's cost).
    pub pids: Vec<u32>,
    /// Why the middle's CPU time is not measured (socat forks a process per connection).
    pub cpu_note: Option<String>,
}

/// The direct connection: client → sink.
pub fn direct(sink: &SinkPorts) -> Hops {
    let plain = |port| Hop {
        connect: local(port),
        route: None,
    };
    Hops {
        discard_raw: plain(sink.discard),
        discard_ni: plain(sink.discard),
        source_raw: plain(sink.source),
        source_ni: plain(sink.source),
        echo: plain(sink.echo),
        pong: Hop {
            connect: local(sink.pong),
            route: Some(wire::route(sink.pong, "127.0.0.1", sink.pong, true)),
        },
    }
}

/// Through a router listening on `port`: each service is a route to the sink.
pub fn routed(port: u16, sink: &SinkPorts) -> Hops {
    let via = |target, ni| Hop {
        connect: local(port),
        route: Some(wire::route(port, "127.0.0.1", target, ni)),
    };
    Hops {
        discard_raw: via(sink.discard, false),
        discard_ni: via(sink.discard, true),
        source_raw: via(sink.source, false),
        source_ni: via(sink.source, true),
        echo: via(sink.echo, true),
        pong: via(sink.pong, true),
    }
}

/// Through a DMZ router on `dmz` to the pseudo port `registered` of a LAN router registered
/// with it (or to the port of a second router in series), and on to the sink.
pub fn chained(dmz: u16, registered: u16, sink: &SinkPorts) -> Hops {
    let via = |target, ni| Hop {
        connect: local(dmz),
        route: Some(wire::route_via(
            &[
                ("127.0.0.1", dmz),
                ("127.0.0.1", registered),
                ("127.0.0.1", target),
            ],
            ni,
        )),
    };
    Hops {
        discard_raw: via(sink.discard, false),
        discard_ni: via(sink.discard, true),
        source_raw: via(sink.source, false),
        source_ni: via(sink.source, true),
        echo: via(sink.echo, true),
        pong: via(sink.pong, true),
    }
}

/// Through a TCP proxy whose listening ports forward to discard, source, echo, pong.
pub fn proxied(ports: [u16; 4], sink: &SinkPorts) -> Hops {
    let plain = |port| Hop {
        connect: local(port),
        route: None,
    };
    Hops {
        discard_raw: plain(ports[0]),
        discard_ni: plain(ports[0]),
        source_raw: plain(ports[1]),
        source_ni: plain(ports[1]),
        echo: plain(ports[2]),
        pong: Hop {
            connect: local(ports[3]),
            route: Some(wire::route(sink.pong, "127.0.0.1", sink.pong, true)),
        },
    }
}

/// Sizes of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub bytes: u64,
    pub reps: usize,
    pub rounds: usize,
    pub setup_clients: usize,
    pub setup_time: Duration,
    /// Which groups of rows to run (`throughput`, `latency`, `setups`); empty = all.
    pub only: Vec<String>,
    /// The sink process (its CPU time and the client's are the ends' cost).
    pub sink_pid: Option<u32>,
}

impl Plan {
    /// True when the group of rows is to run.
    pub fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

/// NI frame payload size of the framed bulk streams.
const FRAME: u32 = 64 * 1024;

/// A bulk row: label, client function, which hop, NI frame size (0 = plain).
pub type BulkRow = (
    &'static str,
    fn(&Hop, u64, u32) -> std::io::Result<f64>,
    fn(&Hops) -> &Hop,
    u32,
);

/// Bulk raw upload.
pub const RAW_UPLOAD: BulkRow = (
    "raw upload, 1 stream",
    client::upload,
    |h| &h.discard_raw,
    0,
);
/// Bulk raw download.
pub const RAW_DOWNLOAD: BulkRow = (
    "raw download, 1 stream",
    client::download,
    |h| &h.source_raw,
    0,
);
/// Bulk NI upload.
pub const NI_UPLOAD: BulkRow = (
    "NI upload, 64 KiB frames",
    client::upload,
    |h| &h.discard_ni,
    FRAME,
);
/// Bulk NI download.
pub const NI_DOWNLOAD: BulkRow = (
    "NI download, 64 KiB frames",
    client::download,
    |h| &h.source_ni,
    FRAME,
);

/// Raw upload to the sink's user-space consumer (16 KiB reads, every byte used).
pub const CONSUMER_UPLOAD: BulkRow = (
    "raw upload, user-space consumer",
    client::upload_to_consumer,
    |h| &h.discard_raw,
    0,
);
/// Raw download read by a user-space consumer in the client (16 KiB reads, every byte used).
pub const CONSUMER_DOWNLOAD: BulkRow = (
    "raw download, user-space consumer",
    client::download_to_consumer,
    |h| &h.source_raw,
    0,
);

/// The single-hop bulk rows.
pub const BULK_ROWS: [BulkRow; 6] = [
    RAW_UPLOAD,
    RAW_DOWNLOAD,
    NI_UPLOAD,
    NI_DOWNLOAD,
    CONSUMER_UPLOAD,
    CONSUMER_DOWNLOAD,
];

/// Runs the single-hop rows into `table` (columns in the order of `paths`).
pub fn measure(paths: &[Path], plan: &Plan, rt: &tokio::runtime::Runtime, table: &mut Table) {
    if plan.wants("throughput") {
        bulk(paths, plan, &BULK_ROWS, table);
    }
    if plan.wants("latency") {
        latency(paths, plan, table);
    }
    if plan.wants("setups") {
        setups(paths, plan, rt, table);
    }
}

/// Bulk rows: each measured `plan.reps` times per path, interleaved; the median, and the
/// CPU time of the path's processes per GB.
pub fn bulk(paths: &[Path], plan: &Plan, rows: &[BulkRow], table: &mut Table) {
    for &(label, run, pick, frame) in rows {
        let total = wire::round_total(plan.bytes, frame) as f64;
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
        let mut cpu: Vec<Option<f64>> = vec![Some(0.0); paths.len()];
        let mut ends: Vec<Option<f64>> = vec![Some(0.0); paths.len()];
        let mut failed: Vec<Option<String>> = vec![None; paths.len()];
        for _ in 0..plan.reps {
            for (i, path) in paths.iter().enumerate() {
                if let Ok(hops) = &path.hops {
                    let before = cpu_of(path);
                    let ends_before = ends_cpu(plan);
                    match run(pick(hops), plan.bytes, frame) {
                        Ok(v) => samples[i].push(v),
                        Err(e) => failed[i] = Some(format!("failed: {e}")),
                    }
                    cpu[i] = match (cpu[i], before, cpu_of(path)) {
                        (Some(sum), Some(b), Some(a)) => Some(sum + a - b),
                        _ => None,
                    };
                    ends[i] = match (ends[i], ends_before, ends_cpu(plan)) {
                        (Some(sum), Some(b), Some(a)) => Some(sum + a - b),
                        _ => None,
                    };
                }
            }
        }
        let mut cells = Vec::new();
        let mut cpu_cells = Vec::new();
        let ends_cells = paths
            .iter()
            .enumerate()
            .map(|(i, p)| match (&p.hops, ends[i]) {
                (Err(why), _) => Cell::Note(why.clone()),
                (Ok(_), Some(c)) if !samples[i].is_empty() => {
                    Cell::Value(c * 1e9 / (total * samples[i].len() as f64))
                }
                _ => Cell::Note("unknown".into()),
            })
            .collect();
        for (i, p) in paths.iter().enumerate() {
            let (cell, cpu_cell) = match (&p.hops, failed[i].take()) {
                (Err(why), _) => (Cell::Note(why.clone()), Cell::Note(why.clone())),
                (_, Some(e)) => (Cell::Note(e.clone()), Cell::Note(e)),
                _ if p.pids.is_empty() || p.cpu_note.is_some() => (
                    Cell::Value(median(&mut samples[i])),
                    Cell::Note(p.cpu_note.clone().unwrap_or_else(|| "—".into())),
                ),
                _ => (
                    Cell::Value(median(&mut samples[i])),
                    cpu[i].map_or(Cell::Note("unknown".into()), |c| {
                        Cell::Value(c * 1e9 / (total * samples[i].len().max(1) as f64))
                    }),
                ),
            };
            cells.push(cell);
            cpu_cells.push(cpu_cell);
        }
        table.push(label, Kind::Throughput, cells);
        table.push(
            format!("… CPU time of the middle process per GB ({label})"),
            Kind::CpuPerGb,
            cpu_cells,
        );
        table.push(
            format!("… CPU time of client and sink per GB ({label})"),
            Kind::CpuPerGb,
            ends_cells,
        );
    }
}

/// 64-byte NI round trips, p50 and p99.
/// The paths take turns in blocks, so that changing load on the machine touches all alike.
pub fn latency(paths: &[Path], plan: &Plan, table: &mut Table) {
    const BLOCKS: usize = 20;
    let mut sessions: Vec<Result<(std::net::TcpStream, Vec<u64>), String>> = paths
        .iter()
        .map(|path| {
            let h = path.hops.as_ref().map_err(Clone::clone)?;
            let mut s = h.echo.open().map_err(|e| format!("failed: {e}"))?;
            let warm = (plan.rounds / 10).clamp(10, 1000);
            client::timed_round_trips(&mut s, warm, 64).map_err(|e| format!("failed: {e}"))?;
            Ok((s, Vec::with_capacity(plan.rounds)))
        })
        .collect();
    let per_block = plan.rounds.div_ceil(BLOCKS);
    for _ in 0..BLOCKS {
        for session in sessions.iter_mut() {
            let Ok((s, times)) = session else { continue };
            match client::timed_round_trips(s, per_block, 64) {
                Ok(t) => times.extend(t),
                Err(e) => *session = Err(format!("failed: {e}")),
            }
        }
    }
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for session in sessions {
        let result = session.map(|(_, mut times)| {
            times.sort_unstable();
            times
        });
        match result {
            Ok(times) => {
                p50.push(Cell::Value(client::quantile(&times, 0.5) as f64));
                p99.push(Cell::Value(client::quantile(&times, 0.99) as f64));
            }
            Err(why) => {
                p50.push(Cell::Note(why.clone()));
                p99.push(Cell::Note(why));
            }
        }
    }
    table.push("NI round trip, 64 B, p50", Kind::Latency, p50);
    table.push("NI round trip, 64 B, p99", Kind::Latency, p99);
}

/// Rounds of the set-up measurement: the paths take turns, so that the load of other work
/// and the order of the columns touch all alike.
const SETUP_ROUNDS: u32 = 3;

fn setups(paths: &[Path], plan: &Plan, rt: &tokio::runtime::Runtime, table: &mut Table) {
    let slice = plan.setup_time / SETUP_ROUNDS;
    let mut done = vec![0u64; paths.len()];
    let mut in_time = vec![0u64; paths.len()];
    let mut secs = vec![0f64; paths.len()];
    let mut errors = vec![0u64; paths.len()];
    let mut cpu: Vec<Option<f64>> = vec![Some(0.0); paths.len()];
    for _ in 0..SETUP_ROUNDS {
        for (i, path) in paths.iter().enumerate() {
            let Ok(h) = &path.hops else { continue };
            let before = cpu_of(path);
            let s = rt.block_on(client::setups(&h.pong, plan.setup_clients, slice));
            cpu[i] = match (cpu[i], before, cpu_of(path)) {
                (Some(sum), Some(b), Some(a)) => Some(sum + a - b),
                _ => None,
            };
            done[i] += s.done;
            in_time[i] += s.in_time;
            secs[i] += s.secs;
            errors[i] += s.errors;
            // Let TIME_WAIT sockets of this path age before the next one starts.
            std::thread::sleep(slice.min(Duration::from_secs(1)));
        }
    }
    let mut rates = Vec::new();
    let mut cpu_cells = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (rate, cpu_cell) = match &path.hops {
            Err(why) => (Cell::Note(why.clone()), Cell::Note(why.clone())),
            Ok(_) => {
                let rate = if in_time[i] == 0 || secs[i] <= 0.0 {
                    Cell::Note(format!("failed ({} errors)", errors[i]))
                } else {
                    Cell::Value(in_time[i] as f64 / secs[i])
                };
                let cpu_cell = match (&path.cpu_note, cpu[i]) {
                    (Some(note), _) => Cell::Note(note.clone()),
                    _ if path.pids.is_empty() => Cell::Note("—".into()),
                    (None, Some(c)) if done[i] > 0 => Cell::Value(c * 1e9 / done[i] as f64),
                    _ => Cell::Note("unknown".into()),
                };
                (rate, cpu_cell)
            }
        };
        rates.push(rate);
        cpu_cells.push(cpu_cell);
    }
    table.push(
        format!(
            "set-ups per second ({} clients: connect, NI_ROUTE, NI_PONG, close)",
            plan.setup_clients
        ),
        Kind::Rate,
        rates,
    );
    table.push(
        "CPU time of the middle process per set-up",
        Kind::CpuTime,
        cpu_cells,
    );
}

/// CPU seconds used so far by the client (this thread) and the sink process.
fn ends_cpu(plan: &Plan) -> Option<f64> {
    let sink = procs::cpu_secs(plan.sink_pid?)?;
    Some(sink + procs::thread_cpu_secs()?)
}

/// CPU seconds used so far by the processes of a path (none for direct: `Some(0)`).
fn cpu_of(path: &Path) -> Option<f64> {
    path.pids.iter().map(|p| procs::cpu_secs(*p)).sum()
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}
