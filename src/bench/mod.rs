//! `saprouter-bench`: one run on loopback measures the router against a direct connection,
//! socat and haproxy with the same client and sink, and writes `docs/performance.md`.

pub mod chain;
pub mod client;
pub mod hop;
pub mod net;
pub mod paths;
pub mod procs;
pub mod report;
pub mod sessions;
pub mod sink;
pub mod table;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use table::Table;

/// Loopback addresses the sink's echo service and the idle clients spread over.
const ALIASES: u8 = 4;

/// Command-line options.
pub struct Options {
    /// Brief smoke run.
    pub quick: bool,
    /// Where the report goes.
    pub out: PathBuf,
    /// The `saprouter` binary under test.
    pub router: PathBuf,
    /// A second `saprouter` binary measured beside the first (before/after comparisons).
    pub baseline: Option<PathBuf>,
    /// Leave socat and haproxy out (quicker iterations).
    pub skip_peers: bool,
    /// Groups to run (`throughput`, `latency`, `setups`, `sessions`); empty = all.
    pub only: Vec<String>,
}

/// Runs everything and writes the report; returns the generated Markdown.
pub fn run(opts: &Options) -> std::io::Result<String> {
    saprouter::router::fdlimit::raise_nofile();
    let dir = procs::TempDir::new()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (sink_proc, sink) = procs::start_sink(ALIASES)?;
    let mut notes = Vec::new();
    let load_before = report::load_average();
    let started = paths::start(
        &opts.router,
        opts.baseline.as_deref(),
        !opts.skip_peers,
        &sink,
        dir.path(),
    )?;
    let names: Vec<&str> = started.paths.iter().map(|p| p.name.as_str()).collect();
    let mut single = Table::new(&names);
    let plan = if opts.quick {
        hop::Plan {
            bytes: 8 << 20,
            reps: 1,
            rounds: 200,
            setup_clients: 8,
            setup_time: Duration::from_millis(200),
            only: opts.only.clone(),
            sink_pid: Some(sink_proc.pid()),
        }
    } else {
        hop::Plan {
            bytes: 1 << 30,
            reps: 3,
            rounds: 20_000,
            setup_clients: 32,
            setup_time: Duration::from_secs(3),
            only: opts.only.clone(),
            sink_pid: Some(sink_proc.pid()),
        }
    };
    eprintln!("saprouter-bench: single hop ...");
    hop::measure(&started.paths, &plan, &rt, &mut single);
    drop(started.keep);

    let counts: &[usize] = if opts.quick {
        &[100]
    } else {
        &[10_000, 50_000]
    };
    let session_plan = sessions::Plan {
        counts,
        aliases: ALIASES,
        routers: &started.routers,
        dir: dir.path(),
        columns: names.len(),
        socat_column: names.iter().position(|n| *n == "socat"),
        haproxy_column: names.iter().position(|n| *n == "haproxy"),
    };
    if opts.only.is_empty() || opts.only.iter().any(|g| g == "sessions") {
        eprintln!("saprouter-bench: idle sessions ...");
        sessions::measure(&session_plan, &sink, &rt, &mut single, &mut notes);
    }
    notes.push(format!(
        "every saprouter-rs process runs with `{}` (and `-H 127.0.0.1`, a table permitting the \
         sink's ports); haproxy with `mode tcp` and its defaults, `nbthread 2`; socat with \
         `fork,nodelay`",
        procs::ROUTER_OPTIONS.join(" ")
    ));
    notes.push(format!(
        "load average (1 min) when the run started: {load_before}; when it ended: {} \
         (other work on the machine skews every figure; ratios from the same run are the \
         figures to compare)",
        report::load_average()
    ));

    let mut sections = Vec::new();
    if !single.rows.is_empty() {
        sections.push((
            "Single hop: client → router → sink".to_string(),
            single.markdown(),
        ));
    }
    let mut chain_table = None;
    if opts.only.is_empty() || opts.only.iter().any(|g| g == "chain") {
        eprintln!("saprouter-bench: reverse-invoke chain ...");
        let t = chain_section(opts, &plan, &sink, dir.path())?;
        sections.push((
            "Reverse-invoke chain: client → DMZ router → link → LAN router → sink".to_string(),
            t.markdown(),
        ));
        chain_table = Some(t);
    }

    let mut goal_lines = goals(&single);
    if let Some(t) = &chain_table {
        goal_lines.extend(chain_goals(t));
    }
    let report = report::Report {
        quick: opts.quick,
        sections,
        tools: started.tools,
        goals: goal_lines,
        notes,
    };
    report::write(&opts.out, &report)?;
    Ok(report.markdown())
}

/// Starts the chains (ours, the baseline's, rathole's) and measures them.
fn chain_section(
    opts: &Options,
    plan: &hop::Plan,
    sink: &procs::SinkPorts,
    dir: &std::path::Path,
) -> std::io::Result<Table> {
    let mut keep = Vec::new();
    let mut paths = vec![hop::Path {
        name: "direct".into(),
        hops: Ok(hop::direct(sink)),
        pids: Vec::new(),
        cpu_note: None,
    }];
    let mut binaries = vec![("saprouter-rs", opts.router.clone())];
    if let Some(b) = &opts.baseline {
        binaries.push(("baseline", b.clone()));
    }
    for (name, binary) in binaries {
        match chain::saprouter(&binary, sink, &dir.join(format!("chain-{name}")), None) {
            Ok(c) => {
                paths.push(hop::Path {
                    name: name.into(),
                    hops: Ok(c.hops.clone()),
                    pids: c.pids(),
                    cpu_note: None,
                });
                keep.push(c);
            }
            Err(e) => paths.push(hop::Path {
                name: name.into(),
                hops: Err(format!("failed: {e}")),
                pids: Vec::new(),
                cpu_note: None,
            }),
        }
    }
    let tls = chain::make_pki(dir).and_then(|pki| {
        chain::saprouter(&opts.router, sink, &dir.join("chain-tls"), Some(&pki))
            .map_err(|e| format!("failed: {e}"))
    });
    paths.push(hop::Path {
        name: "saprouter-rs, TLS link".into(),
        hops: tls.as_ref().map(|c| c.hops.clone()).map_err(Clone::clone),
        pids: tls.as_ref().map(chain::Chain::pids).unwrap_or_default(),
        cpu_note: None,
    });
    let rathole = chain::rathole(sink, dir).map_err(|e| format!("failed: {e}"));
    let rathole_hops = match &rathole {
        Ok(Some(c)) => Ok(c.hops.clone()),
        Ok(None) => Err("not installed".to_string()),
        Err(e) => Err(e.clone()),
    };
    let rathole = rathole.ok().flatten();
    paths.push(hop::Path {
        name: "rathole".into(),
        hops: rathole_hops,
        pids: rathole.as_ref().map(chain::Chain::pids).unwrap_or_default(),
        cpu_note: None,
    });
    let names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
    let mut table = Table::new(&names);
    chain::measure(&paths, plan, &mut table);
    drop(keep);
    drop(tls);
    drop(rathole);
    Ok(table)
}

/// The reverse-invoke goals of issue 7 that this run can check.
fn chain_goals(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for row in ["raw upload", "raw download", "NI download"] {
        if let (Some(ours), Some(r)) = (t.value(row, "saprouter-rs"), t.value(row, "rathole")) {
            out.push(format!(
                "reverse-invoke chain, {row}: {:.2}× rathole (goal ≥ 1.00): {}",
                ours / r,
                verdict(ours >= r)
            ));
        }
    }
    for row in ["raw upload", "raw download", "NI download"] {
        let tls = t.value(row, "saprouter-rs, TLS link");
        if let (Some(tls), Some(plain)) = (tls, t.value(row, "saprouter-rs")) {
            out.push(format!(
                "reverse-invoke chain with a TLS link, {row}: {:.2}× the plain chain (goal ≥ 0.50): {}",
                tls / plain,
                verdict(tls >= 0.5 * plain)
            ));
        }
    }
    if let Some(rise) = t.value("… rise of the interactive p50", "saprouter-rs") {
        out.push(format!(
            "interactive stream beside a bulk stream on one link: p50 rises by {:.2} ms (goal < 2 ms): {}",
            rise / 1e6,
            verdict(rise < 2e6)
        ));
    }
    out
}

/// Why a relay cannot reach the direct rate when client, router and sink share the cores:
/// the CPU a gigabyte needs on each path, and the best ratio that leaves.
fn cpu_bound(t: &Table, row: &str) -> String {
    let ends = format!("… CPU time of client and sink per GB ({row}");
    let middle = format!("… CPU time of the middle process per GB ({row}");
    let (Some(e_direct), Some(e_routed), Some(router)) = (
        t.value(&ends, "direct"),
        t.value(&ends, "saprouter-rs"),
        t.value(&middle, "saprouter-rs"),
    ) else {
        return String::new();
    };
    if e_routed + router <= 0.0 {
        return String::new();
    }
    format!(
        " (a GB took {e_direct:.2} CPU-s direct and {:.2} CPU-s through the router, {router:.2} \
         of them the router's: with every core busy the ratio cannot exceed {:.2})",
        e_routed + router,
        e_direct / (e_routed + router)
    )
}

/// The goals of issue 7 that this run can check.
fn goals(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    let ours = "saprouter-rs";
    for row in ["raw upload", "raw download", "NI upload", "NI download"] {
        let (Some(r), Some(d)) = (t.value(row, ours), t.value(row, "direct")) else {
            continue;
        };
        let h = t.value(row, "haproxy");
        let ratio = r / d;
        let vs_h = h.map_or("haproxy not measured".to_string(), |h| {
            format!("{:.2}× haproxy", r / h)
        });
        out.push(format!(
            "{row}: {ratio:.2}× direct (goal ≥ 0.90), {vs_h} (goal ≥ 1.00): {}{}",
            verdict(ratio >= 0.9 && h.map_or(true, |h| r >= h)),
            cpu_bound(t, row)
        ));
    }
    let p50 = "NI round trip, 64 B, p50";
    if let (Some(r), Some(d), Some(h)) = (
        t.value(p50, ours),
        t.value(p50, "direct"),
        t.value(p50, "haproxy"),
    ) {
        out.push(format!(
            "added p50 latency: {:.1} µs, haproxy adds {:.1} µs: {}",
            (r - d) / 1e3,
            (h - d) / 1e3,
            verdict(r <= h)
        ));
    }
    if let Some(r) = t.value("set-ups per second", ours) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        match t.value("CPU time of the middle process", ours) {
            Some(ns) if ns > 0.0 => {
                let capacity = cores * 1e9 / ns;
                out.push(format!(
                    "route set-ups (goal ≥ 10 000/s on 2 cores): {r:.0}/s observed with client \
                     and sink on the same {cores} cores; the router spent {:.1} µs of CPU per \
                     set-up, i.e. {capacity:.0}/s if it had the {cores} cores to itself: {}",
                    ns / 1e3,
                    verdict(capacity >= 10_000.0)
                ));
            }
            _ => out.push(format!(
                "route set-ups: {r:.0}/s (goal ≥ 10 000/s): {}",
                verdict(r >= 10_000.0)
            )),
        }
    }
    if t.rows.iter().any(|r| r.label.starts_with("RSS per idle"))
        && !t.rows.iter().any(|r| r.label.contains("50000 sessions"))
    {
        out.push(format!(
            "50 000 concurrent sessions: **not measurable here**: the open-file hard limit \
             allows {} routed sessions per process (two descriptors each); the router raises \
             its soft limit to the hard limit at start and `-l` shows it",
            sessions::max_sessions()
        ));
    }
    for row in &t.rows {
        if row.label.starts_with("RSS per idle") {
            if let Some(v) = t.value(&row.label, ours) {
                out.push(format!(
                    "{}: {v:.1} KiB (goal ≤ 16 KiB): {}",
                    row.label,
                    verdict(v <= 16.0)
                ));
            }
        }
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}
