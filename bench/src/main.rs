//! `saprouter-bench`: measures the router against a direct connection, socat and haproxy on
//! loopback, in one run, and writes `docs/performance.md`. See the README.

#![forbid(unsafe_code)]

use saprouter_bench as bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

const USAGE: &str = "\
usage: saprouter-bench [--quick] [--out FILE] [--router BIN] [--baseline BIN]
                       [--skip-peers] [--only GROUPS] [--bulk-mib N]

  --quick          run every measurement briefly (smoke test)
  --out FILE       where to write the report (default docs/performance.md)
  --router BIN     saprouter binary to measure (default: the one beside this program)
  --baseline BIN   a second saprouter binary measured beside the first
  --skip-peers     leave socat and haproxy out
  --only GROUPS    comma-separated groups: throughput,latency,setups,sessions,chain
                   (default all)
  --bulk-mib N     bytes per bulk measurement, in MiB (default 1024; --quick 8)
  -h, --help       this text;  --version  the version
";

fn command() -> Command {
    Command::new("saprouter-bench")
        .about("Benchmarks saprouter-rs against a direct connection, socat and haproxy on loopback")
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::SetTrue),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::SetTrue),
        )
        .arg(
            Arg::new("quick")
                .long("quick")
                .action(ArgAction::SetTrue)
                .help("run every measurement briefly (smoke test)"),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .num_args(1)
                .default_value("docs/performance.md")
                .help("where to write the report"),
        )
        .arg(
            Arg::new("router")
                .long("router")
                .num_args(1)
                .help("saprouter binary to measure (default: the one beside this program)"),
        )
        .arg(
            Arg::new("baseline")
                .long("baseline")
                .num_args(1)
                .help("a second saprouter binary measured beside the first"),
        )
        .arg(
            Arg::new("skip_peers")
                .long("skip-peers")
                .action(ArgAction::SetTrue)
                .help("leave socat and haproxy out"),
        )
        .arg(
            Arg::new("only")
                .long("only")
                .num_args(1)
                .help("comma-separated groups: throughput,latency,setups,sessions (default all)"),
        )
        .arg(
            Arg::new("bulk_mib")
                .long("bulk-mib")
                .num_args(1)
                .value_parser(clap::value_parser!(u64).range(1..=65536))
                .help("bytes per bulk measurement, in MiB"),
        )
        .arg(
            Arg::new("sink")
                .long("sink")
                .num_args(1)
                .hide(true)
                .help("internal: run as the sink process"),
        )
}

fn main() -> ExitCode {
    let m = match command().try_get_matches() {
        Ok(m) => m,
        Err(err) => {
            let _ = err.print();
            eprint!("\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Asked for, help and the version go to stdout and succeed (clap is built without its
    // help renderer, so the text is written out here).
    if m.get_flag("help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if m.get_flag("version") {
        println!(
            "saprouter-bench (saprouter-rs {})",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(aliases) = m.get_one::<String>("sink") {
        return match bench::sink::main(aliases.parse().unwrap_or(1)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("saprouter-bench sink: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let router = match m.get_one::<String>("router") {
        Some(path) => PathBuf::from(path),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("saprouter"),
            Err(err) => {
                eprintln!("saprouter-bench: cannot find my own path: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let opts = bench::Options {
        quick: m.get_flag("quick"),
        out: PathBuf::from(
            m.get_one::<String>("out")
                .map_or("docs/performance.md", |s| s),
        ),
        router,
        baseline: m.get_one::<String>("baseline").map(PathBuf::from),
        skip_peers: m.get_flag("skip_peers"),
        bulk_bytes: m.get_one::<u64>("bulk_mib").map(|mib| mib << 20),
        only: m
            .get_one::<String>("only")
            .map(|s| s.split(',').map(|g| g.trim().to_string()).collect())
            .unwrap_or_default(),
    };
    match bench::run(&opts) {
        Ok(markdown) => {
            println!("{markdown}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("saprouter-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
