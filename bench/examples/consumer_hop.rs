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

use saprouter_bench::hop;
use saprouter_bench::rounds::{self, Means, Setup};
use saprouter_bench::{paths, procs};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(sink) = rounds::sink_if_asked(&args) {
        return sink;
    }
    let setup = Setup::start(&args, "consumer_hop ROUTER [MiB] [OTHER_ROUTER]", 512)?;
    let (sink, total) = (&setup.sink, setup.total);
    let run = paths::start(
        &setup.router,
        setup.other.as_deref(),
        true,
        &setup.ports,
        setup.dir.path(),
    )?;
    println!(
        "{:<14} {:<34} {:>8} {:>14} {:>14}",
        "path", "row", "GB/s", "middle s/GB", "ends s/GB"
    );
    let print = |path: &str, row: &str, f: &[f64], when: &str| {
        println!(
            "{path:<14} {row:<34} {:>8.2} {:>14.3} {:>14.3}   ({when})",
            f[0], f[1], f[2]
        );
    };
    let cpu = |pids: &[u32]| -> f64 { pids.iter().filter_map(|p| procs::cpu_secs(*p)).sum() };
    let mut means = Means::default();
    for round in 0..rounds::count() {
        for path in &run.paths {
            let Ok(hops) = &path.hops else { continue };
            if path.name == "socat" || !rounds::wanted(&path.name) {
                continue;
            }
            for (row, measure, hop, frame) in [hop::CONSUMER_UPLOAD, hop::CONSUMER_DOWNLOAD] {
                let ends = || cpu(&[sink.pid()]) + procs::thread_cpu_secs().unwrap_or(0.0);
                let (middle0, ends0) = (cpu(&path.pids), ends());
                let rate = measure(hop(hops), total, frame)?;
                let gb = total as f64 / 1e9;
                let figures = [
                    rate / 1e9,
                    (cpu(&path.pids) - middle0) / gb,
                    (ends() - ends0) / gb,
                ];
                print(&path.name, row, &figures, &format!("round {round}"));
                means.add(&path.name, row, &figures);
            }
        }
    }
    for (path, row, figures) in means.means() {
        print(path, row, &figures, "mean");
    }
    Ok(())
}
