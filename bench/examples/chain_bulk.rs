//! The reverse-invoke chain's bulk rows in seconds: a linkmux chain of the router given (and
//! of an optional second binary) beside rathole's chain over one sink, raw upload, raw
//! download and NI download (64 KiB frames) through each. Prints the rate and the CPU per
//! GB of the chain's two middle processes, and the means of the rounds, so an A/B of the
//! link's data path takes a minute instead of the minutes of `--only chain`.
//!
//! ```text
//! cargo build --release
//! target/release/examples/chain_bulk $PWD/target/release/saprouter [MiB] [OTHER_SAPROUTER]
//! ```
//!
//! `OTHER_SAPROUTER` may be a script that sets environment and `exec`s a router (measured as
//! "baseline", also with `link_protocol = linkmux`). `ROUNDS=N` (default 3) repeats every
//! row; `ONLY=NAME` measures one chain (for a profiler).

use std::path::PathBuf;

use saprouter_bench::net::Hop;
use saprouter_bench::{chain, client, procs};

type Measure = fn(&Hop, u64, u32) -> std::io::Result<f64>;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sink") {
        let aliases = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
        return saprouter_bench::sink::main(aliases);
    }
    let Some(router) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: chain_bulk ROUTER [MiB] [OTHER_ROUTER]");
        std::process::exit(2);
    };
    let mib: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(256);
    let other = args.get(3).map(PathBuf::from);
    let rounds: u32 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("ONLY").ok();
    let total = mib << 20;
    let lan = "link_protocol = linkmux\n";
    let (_sink, ports) = procs::start_sink(1)?;
    let dir = procs::TempDir::new()?;
    let mut chains = vec![(
        "linkmux",
        chain::saprouter(&router, &ports, &dir.path().join("ours"), None, lan)?,
    )];
    if let Some(other) = &other {
        let path = dir.path().join("baseline");
        chains.push((
            "baseline",
            chain::saprouter(other, &ports, &path, None, lan)?,
        ));
    }
    if let Some(rathole) = chain::rathole(&ports, dir.path())? {
        chains.push(("rathole", rathole));
    }
    println!(
        "{:<10} {:<13} {:>8} {:>14}",
        "chain", "row", "GB/s", "routers s/GB"
    );
    // (chain, row) → sums of rate and CPU per GB, and the count.
    let mut means: Vec<(&str, &str, [f64; 2], u32)> = Vec::new();
    for round in 0..rounds {
        for (name, chain) in &chains {
            if only.as_ref().is_some_and(|o| o != name) {
                continue;
            }
            let rows: [(&str, &Hop, Measure, u32); 3] = [
                ("raw upload", &chain.hops.discard_raw, client::upload, 0),
                ("raw download", &chain.hops.source_raw, client::download, 0),
                (
                    "NI download",
                    &chain.hops.source_ni,
                    client::download,
                    65_536,
                ),
            ];
            let pids = chain.pids();
            let cpu = || -> f64 { pids.iter().filter_map(|p| procs::cpu_secs(*p)).sum() };
            for (row, hop, measure, frame) in rows {
                let before = cpu();
                let rate = measure(hop, total, frame)?;
                let figures = [rate / 1e9, (cpu() - before) / (total as f64 / 1e9)];
                println!(
                    "{:<10} {:<13} {:>8.2} {:>14.3}   (round {round})",
                    name, row, figures[0], figures[1]
                );
                match means.iter_mut().find(|m| m.0 == *name && m.1 == row) {
                    Some(m) => {
                        for (sum, f) in m.2.iter_mut().zip(figures) {
                            *sum += f;
                        }
                        m.3 += 1;
                    }
                    None => means.push((name, row, figures, 1)),
                }
            }
        }
    }
    for (name, row, sums, n) in means {
        let n = f64::from(n);
        println!(
            "{:<10} {:<13} {:>8.2} {:>14.3}   (mean)",
            name,
            row,
            sums[0] / n,
            sums[1] / n
        );
    }
    Ok(())
}
