//! The single hop with a user-space consumer, in seconds: this project's router (and an
//! optional second binary) beside haproxy and the direct path, raw upload to the sink's
//! consumer and raw download read by a consuming client. Prints for each path the rate,
//! the middle process's CPU per GB and the ends' (client thread and sink) CPU per GB, so
//! an A/B of the relay takes one command instead of the minutes of `--only throughput`.
//!
//! ```text
//! cargo build --release
//! target/release/examples/consumer_hop $PWD/target/release/saprouter [MiB] [OTHER_SAPROUTER]
//! ```
//!
//! `OTHER_SAPROUTER` may be a script that sets options or environment and `exec`s a router
//! (it is measured as the column "baseline"). `ROUNDS=N` (default 3) repeats every row;
//! `ONLY=NAME` measures one column (for a profiler). The last lines are the means.

use std::path::PathBuf;

use saprouter_bench::{client, paths, procs};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sink") {
        let aliases = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
        return saprouter_bench::sink::main(aliases);
    }
    let Some(router) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: consumer_hop ROUTER [MiB] [OTHER_ROUTER]");
        std::process::exit(2);
    };
    let mib: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(512);
    let other = args.get(3).map(PathBuf::from);
    let total = mib << 20;
    let (sink, ports) = procs::start_sink(1)?;
    let dir = procs::TempDir::new()?;
    let run = paths::start(&router, other.as_deref(), true, &ports, dir.path())?;
    println!(
        "{:<14} {:<9} {:>8} {:>14} {:>14}",
        "path", "row", "GB/s", "middle s/GB", "ends s/GB"
    );
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("ONLY").ok();
    // (path, row) → sums of rate, middle and ends per GB, and the count.
    let mut means: Vec<(String, &str, [f64; 3], u32)> = Vec::new();
    for round in 0..rounds {
        for path in &run.paths {
            let Ok(hops) = &path.hops else { continue };
            if path.name == "socat" || only.as_ref().is_some_and(|o| *o != path.name) {
                continue;
            }
            type Measure = fn(&saprouter_bench::net::Hop, u64, u32) -> std::io::Result<f64>;
            let rows: [(&str, &saprouter_bench::net::Hop, Measure); 2] = [
                ("upload", &hops.discard_raw, client::upload_to_consumer),
                ("download", &hops.source_raw, client::download_to_consumer),
            ];
            for (row, hop, measure) in rows {
                let cpu =
                    |pids: &[u32]| -> f64 { pids.iter().filter_map(|p| procs::cpu_secs(*p)).sum() };
                let (m0, s0, c0) = (
                    cpu(&path.pids),
                    cpu(&[sink.pid()]),
                    procs::thread_cpu_secs().unwrap_or(0.0),
                );
                let rate = measure(hop, total, 0)?;
                let (m1, s1, c1) = (
                    cpu(&path.pids),
                    cpu(&[sink.pid()]),
                    procs::thread_cpu_secs().unwrap_or(0.0),
                );
                let gb = total as f64 / 1e9;
                let figures = [rate / 1e9, (m1 - m0) / gb, ((s1 - s0) + (c1 - c0)) / gb];
                println!(
                    "{:<14} {:<9} {:>8.2} {:>14.3} {:>14.3}   (round {round})",
                    path.name, row, figures[0], figures[1], figures[2]
                );
                match means.iter_mut().find(|m| m.0 == path.name && m.1 == row) {
                    Some(m) => {
                        for (sum, f) in m.2.iter_mut().zip(figures) {
                            *sum += f;
                        }
                        m.3 += 1;
                    }
                    None => means.push((path.name.clone(), row, figures, 1)),
                }
            }
        }
    }
    for (path, row, sums, n) in means {
        let n = f64::from(n);
        println!(
            "{:<14} {:<9} {:>8.2} {:>14.3} {:>14.3}   (mean)",
            path,
            row,
            sums[0] / n,
            sums[1] / n,
            sums[2] / n
        );
    }
    Ok(())
}
