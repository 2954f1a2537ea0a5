//! `saprouter-bench`: one run on loopback measures the router against a direct connection,
//! socat and haproxy with the same client and sink, and writes `docs/performance.md`.

#![forbid(unsafe_code)]

pub mod chain;
pub mod client;
pub mod goals;
pub mod hop;
pub mod net;
pub mod nofile;
pub mod own_core;
pub mod paths;
pub mod pin;
pub mod procs;
pub mod report;
pub mod rounds;
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
    /// Bytes per bulk measurement instead of the default 1 GiB (quicker A/B iterations).
    pub bulk_bytes: Option<u64>,
    /// Groups to run (`throughput`, `latency`, `setups`, `sessions`); empty = all.
    pub only: Vec<String>,
}

/// Runs everything and writes the report; returns the generated Markdown.
pub fn run(opts: &Options) -> std::io::Result<String> {
    nofile::raise();
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
    let plan = hop::Plan {
        bytes: opts.bulk_bytes.unwrap_or(plan.bytes),
        ..plan
    };
    eprintln!("saprouter-bench: single hop ...");
    hop::measure(&started.paths, &plan, &rt, &mut single);
    drop(started.keep);
    eprintln!("saprouter-bench: single hop, the relay on a core of its own ...");
    let own_core = own_core::measure(opts, &plan, dir.path())?;
    if own_core.is_none() {
        notes.push(
            "the rows with the relay on a core of its own need two CPUs: not measured".into(),
        );
    }

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
         sink's ports); haproxy with `mode tcp` and its defaults, `nbthread` = the CPUs it may \
         use (2 shared, 1 on a core of its own); socat with `fork,nodelay`",
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
    if let Some(own) = &own_core {
        sections.push((
            format!(
                "Single hop, the relay on a core of its own: client and sink on CPU {}, the \
                 router (socat, haproxy) on CPU {}",
                own.ends, own.middle
            ),
            own.table.markdown(),
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

    let own_table = own_core.as_ref().map(|o| &o.table);
    let mut goal_lines = Vec::new();
    if let Some(t) = &chain_table {
        goal_lines.extend(goals::chain(t));
    }
    if !single.rows.is_empty() {
        goal_lines.extend(goals::consumer_hop(&single, own_table));
    }
    let goal_lists = vec![
        (
            "Goals: the reverse-invoke data path and the single hop with a user-space \
             consumer, checked against this run"
                .to_string(),
            goal_lines,
        ),
        (
            "Earlier single-hop goals, checked against this run".to_string(),
            goals::single_hop(&single, own_table),
        ),
    ];
    let report = report::Report {
        quick: opts.quick,
        sections,
        tools: started.tools,
        goals: goal_lists,
        notes,
    };
    report::write(&opts.out, &report)?;
    Ok(report.markdown())
}

/// A column of the chain table: a chain that started, or why it did not.
fn chain_column(name: &str, started: &Result<chain::Chain, String>) -> hop::Path {
    hop::Path {
        name: name.into(),
        hops: started
            .as_ref()
            .map(|c| c.hops.clone())
            .map_err(Clone::clone),
        pids: started.as_ref().map(chain::Chain::pids).unwrap_or_default(),
        cpu_note: None,
    }
}

/// Starts the chains (ours, the baseline's, the two-hop floor, rathole's) and measures them.
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
    // The default link (yamux), the same routers with the LAN router asking for linkmux,
    // and the baseline's default link.
    let mut chains = vec![
        ("saprouter-rs", opts.router.clone(), ""),
        (
            goals::LINKMUX,
            opts.router.clone(),
            "link_protocol = linkmux\n",
        ),
    ];
    if let Some(b) = &opts.baseline {
        chains.push(("baseline", b.clone(), ""));
    }
    for (name, binary, lan_extra) in chains {
        let dir = dir.join(format!("chain-{}", name.replace([' ', ','], "")));
        let started = chain::saprouter(&binary, sink, &dir, None, lan_extra)
            .map_err(|e| format!("failed: {e}"));
        paths.push(chain_column(name, &started));
        keep.extend(started.ok());
    }
    // The floor: the same two routers on a plain multi-hop route, no link between them.
    let floor = chain::two_hops(&opts.router, sink, &dir.join("chain-two-hops"))
        .map_err(|e| format!("failed: {e}"));
    paths.push(chain_column(goals::TWO_HOPS, &floor));
    let tls = chain::make_pki(dir).and_then(|pki| {
        chain::saprouter(&opts.router, sink, &dir.join("chain-tls"), Some(&pki), "")
            .map_err(|e| format!("failed: {e}"))
    });
    paths.push(chain_column(goals::TLS, &tls));
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
    drop(floor);
    drop(tls);
    drop(rathole);
    Ok(table)
}
