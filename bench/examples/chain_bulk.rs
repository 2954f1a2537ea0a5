//! The reverse-invoke chain's bulk rows in seconds: a linkmux chain of the router given (and
//! of an optional second binary) beside rathole's chain over one sink, raw upload, raw
//! download and NI download (64 KiB frames) through each. Prints the rate and the CPU per
//! GB of the chain's two middle processes, and the means of the rounds, so an A/B of the
//! link's data path takes a minute instead of the minutes of `--only chain`. The column
//! "two-hop" is the floor: the same two routers on a plain multi-hop route, a TCP
//! connection per session and no link between them.
//!
//! ```text
//! cargo build --release
//! target/release/examples/chain_bulk $PWD/target/release/saprouter [MiB] [OTHER_SAPROUTER]
//! ```
//!
//! `OTHER_SAPROUTER` may be a script that sets environment and `exec`s a router (measured as
//! "baseline", also with `link_protocol = linkmux`). `ROUNDS=N` (default 3) repeats every
//! row; `ONLY=NAME` measures one chain (for a profiler).

use saprouter_bench::hop::{self, BulkRow};
use saprouter_bench::rounds::{self, Means, Setup};
use saprouter_bench::{chain, procs};

/// The chain's bulk rows, as `saprouter-bench --only chain` measures them.
const ROWS: [BulkRow; 3] = [hop::RAW_UPLOAD, hop::RAW_DOWNLOAD, hop::NI_DOWNLOAD];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(sink) = rounds::sink_if_asked(&args) {
        return sink;
    }
    // Held to the end: dropping it stops the sink.
    let setup = Setup::start(&args, "chain_bulk ROUTER [MiB] [OTHER_ROUTER]", 256)?;
    let (ports, dir, total) = (&setup.ports, setup.dir.path(), setup.total);
    let lan = "link_protocol = linkmux\n";
    let mut chains = vec![(
        "linkmux",
        chain::saprouter(&setup.router, ports, &dir.join("ours"), None, lan)?,
    )];
    if let Some(other) = &setup.other {
        let path = dir.join("baseline");
        chains.push((
            "baseline",
            chain::saprouter(other, ports, &path, None, lan)?,
        ));
    }
    chains.push((
        "two-hop",
        chain::two_hops(&setup.router, ports, &dir.join("two-hop"))?,
    ));
    if let Some(rathole) = chain::rathole(ports, dir)? {
        chains.push(("rathole", rathole));
    }
    println!(
        "{:<10} {:<28} {:>8} {:>14}",
        "chain", "row", "GB/s", "routers s/GB"
    );
    let print = |name: &str, row: &str, f: &[f64], when: &str| {
        println!(
            "{name:<10} {row:<28} {:>8.2} {:>14.3}   ({when})",
            f[0], f[1]
        );
    };
    let mut means = Means::default();
    for round in 0..rounds::count() {
        for (name, chain) in &chains {
            if !rounds::wanted(name) {
                continue;
            }
            let pids = chain.pids();
            let cpu = || -> f64 { pids.iter().filter_map(|p| procs::cpu_secs(*p)).sum() };
            for (row, measure, hop, frame) in ROWS {
                let before = cpu();
                let rate = measure(hop(&chain.hops), total, frame)?;
                let figures = [rate / 1e9, (cpu() - before) / (total as f64 / 1e9)];
                print(name, row, &figures, &format!("round {round}"));
                means.add(name, row, &figures);
            }
        }
    }
    for (name, row, figures) in means.means() {
        print(name, row, &figures, "mean");
    }
    Ok(())
}
