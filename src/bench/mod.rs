//! `saprouter-bench`: one run on loopback measures the router against a direct connection,
//! socat and haproxy with the same client and sink, and writes `docs/performance.md`.

pub mod client;
pub mod hop;
pub mod net;
pub mod procs;
pub mod report;
pub mod sessions;
pub mod sink;
pub mod table;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use procs::Proc;
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
    /// Groups to run (`throughput`, `latency`, `setups`, `sessions`); empty = all.
    pub only: Vec<String>,
}

/// Runs everything and writes the report; returns the generated Markdown.
pub fn run(opts: &Options) -> std::io::Result<String> {
    saprouter::router::limits::raise_nofile();
    let dir = procs::TempDir::new()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (_sink_proc, sink) = procs::start_sink(ALIASES)?;
    let mut notes = Vec::new();
    let mut tools = vec![(
        "saprouter".to_string(),
        format!("{} (release build under test)", opts.router.display()),
    )];

    // Keep every process alive until the single-hop rows are done.
    let mut keep: Vec<Proc> = Vec::new();
    let router_dir = dir.path().join("router");
    std::fs::create_dir_all(&router_dir)?;
    let (router, router_port) = procs::start_router(&opts.router, &router_dir, &sink)?;
    let router_pid = router.pid();
    keep.push(router);
    let mut paths = vec![
        hop::Path {
            name: "direct".into(),
            hops: Ok(hop::direct(&sink)),
            pids: Vec::new(),
        },
        hop::Path {
            name: "saprouter-rs".into(),
            hops: Ok(hop::routed(router_port, &sink)),
            pids: vec![router_pid],
        },
    ];
    let targets = [sink.discard, sink.source, sink.echo, sink.pong];
    let first_socat = keep.len();
    let socat = start_socats(&targets, &mut keep, &mut tools)?;
    paths.push(hop::Path {
        name: "socat".into(),
        hops: socat.map(|p| hop::proxied(p, &sink)),
        pids: keep[first_socat..].iter().map(Proc::pid).collect(),
    });
    let haproxy = procs::start_haproxy(dir.path(), &targets, sink.echo, 1, 20_000)?;
    paths.push(hop::Path {
        name: "haproxy".into(),
        pids: haproxy.as_ref().map(|(p, _)| p.pid()).into_iter().collect(),
        hops: match haproxy {
            Some((proc, ports)) => {
                keep.push(proc);
                tools.push(tool_version("haproxy", &["-v"]));
                Ok(hop::proxied(
                    [ports[0], ports[1], ports[2], ports[3]],
                    &sink,
                ))
            }
            None => Err("not installed".into()),
        },
    });

    let names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
    let mut single = Table::new(&names);
    let plan = if opts.quick {
        hop::Plan {
            bytes: 8 << 20,
            reps: 1,
            rounds: 200,
            setup_clients: 8,
            setup_time: Duration::from_millis(200),
            only: opts.only.clone(),
        }
    } else {
        hop::Plan {
            bytes: 1 << 30,
            reps: 3,
            rounds: 20_000,
            setup_clients: 32,
            setup_time: Duration::from_secs(3),
            only: opts.only.clone(),
        }
    };
    eprintln!("saprouter-bench: single hop ...");
    hop::measure(&paths, &plan, &rt, &mut single);
    drop(keep);

    eprintln!("saprouter-bench: idle sessions ...");
    let counts: &[usize] = if opts.quick {
        &[100]
    } else {
        &[10_000, 50_000]
    };
    let session_plan = sessions::Plan {
        counts,
        aliases: ALIASES,
        router: &opts.router,
        dir: &router_dir,
        columns: names.len(),
        router_column: 1,
        socat_column: names.iter().position(|n| *n == "socat"),
        haproxy_column: names.iter().position(|n| *n == "haproxy"),
    };
    if opts.only.is_empty() || opts.only.iter().any(|g| g == "sessions") {
        sessions::measure(&session_plan, &sink, &rt, &mut single, &mut notes);
    }

    let report = report::Report {
        quick: opts.quick,
        sections: vec![(
            "Single hop: client → router → sink".to_string(),
            single.markdown(),
        )],
        tools,
        goals: goals(&single),
        notes,
    };
    report::write(&opts.out, &report)?;
    Ok(report.markdown())
}

/// One socat per sink service; `Err(note)` when socat is missing.
fn start_socats(
    targets: &[u16; 4],
    keep: &mut Vec<Proc>,
    tools: &mut Vec<(String, String)>,
) -> std::io::Result<Result<[u16; 4], String>> {
    let mut ports = [0u16; 4];
    for (slot, target) in ports.iter_mut().zip(targets) {
        match procs::start_socat(*target)? {
            Some((proc, port)) => {
                keep.push(proc);
                *slot = port;
            }
            None => return Ok(Err("not installed".into())),
        }
    }
    tools.push(tool_version("socat", &["-V"]));
    Ok(Ok(ports))
}

fn tool_version(name: &str, args: &[&str]) -> (String, String) {
    let v = procs::which(name)
        .and_then(|p| procs::version(&p, args))
        .unwrap_or_else(|| "unknown version".into());
    (name.to_string(), v)
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
            "{row}: {ratio:.2}× direct (goal ≥ 0.90), {vs_h} (goal ≥ 1.00): {}",
            verdict(ratio >= 0.9 && h.map_or(true, |h| r >= h))
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
