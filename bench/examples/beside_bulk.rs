//! The interactive round trip beside a bulk download, alone and crossed: a linkmux chain of
//! this project's routers and a rathole chain run side by side over one sink, and the
//! 64-byte NI round trip through one chain is timed while the bulk download runs through
//! the same chain or through the other, and while a bulk upload runs through the same
//! chain (the answers then travel against the bulk bytes). Crossing them tells apart a bulk
//! path that disturbs everything on the machine from an interactive path that is slow to
//! get its turn; "bulk other ours" runs the bulk download through a second linkmux chain of
//! the same binary (other processes), which tells the routers' threads crowding the cores
//! apart from the two sessions meeting inside one router. "two-hop" is the same two routers
//! on a plain multi-hop route (a TCP connection per session, no link): the floor for a
//! chain of this project's relays. Loopback only; seconds per row instead of the minutes of
//! `--only chain`.
//!
//! ```text
//! cargo build --release
//! target/release/examples/beside_bulk target/release/saprouter [rounds] [LAN cf line ...]
//! ```

use std::path::PathBuf;

use saprouter_bench::{chain, client, procs};

fn micros(sorted: &[u64], q: f64) -> f64 {
    client::quantile(sorted, q) as f64 / 1000.0
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(sink) = saprouter_bench::rounds::sink_if_asked(&args) {
        return sink;
    }
    let Some(router) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: beside_bulk ROUTER [ROUNDS] [LAN cf line ...]");
        std::process::exit(2);
    };
    let rounds = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let mut lan = String::from("link_protocol = linkmux\n");
    for line in args.iter().skip(3) {
        lan.push_str(line);
        lan.push('\n');
    }
    let (_sink, ports) = procs::start_sink(1)?;
    let dir = procs::TempDir::new()?;
    let ours = chain::saprouter(&router, &ports, &dir.path().join("ours"), None, &lan)?;
    let Some(rathole) = chain::rathole(&ports, dir.path())? else {
        eprintln!("rathole is not installed");
        std::process::exit(2);
    };
    let floor = chain::two_hops(&router, &ports, &dir.path().join("two-hop"))?;
    let other = chain::saprouter(&router, &ports, &dir.path().join("other"), None, &lan)?;
    let rows = [
        (
            "echo ours,    bulk other ours",
            &ours.hops.echo,
            &other.hops.source_raw,
        ),
        (
            "echo two-hop, bulk two-hop",
            &floor.hops.echo,
            &floor.hops.source_raw,
        ),
        (
            "echo ours,    bulk ours",
            &ours.hops.echo,
            &ours.hops.source_raw,
        ),
        (
            "echo rathole, bulk rathole",
            &rathole.hops.echo,
            &rathole.hops.source_raw,
        ),
        (
            "echo ours,    bulk rathole",
            &ours.hops.echo,
            &rathole.hops.source_raw,
        ),
        (
            "echo rathole, bulk ours",
            &rathole.hops.echo,
            &ours.hops.source_raw,
        ),
    ];
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "", "idle p50", "p50", "p99", "bulk GB/s"
    );
    let uploads = [
        (
            "echo ours,    upload ours",
            &ours.hops.echo,
            &ours.hops.discard_raw,
        ),
        (
            "echo rathole, upload rathole",
            &rathole.hops.echo,
            &rathole.hops.discard_raw,
        ),
    ];
    let rows = rows
        .iter()
        .map(|r| (r, false))
        .chain(uploads.iter().map(|r| (r, true)));
    for (&(name, echo, bulk), upload) in rows {
        let idle = client::round_trips(echo, rounds, 64)?;
        let (beside, rate) = if upload {
            client::round_trips_beside_upload(echo, bulk, rounds, 64)?
        } else {
            client::round_trips_beside_bulk(echo, bulk, rounds, 64)?
        };
        println!(
            "{name:<28} {:>10.1} {:>10.1} {:>10.1} {:>10.2}",
            micros(&idle, 0.5),
            micros(&beside, 0.5),
            micros(&beside, 0.99),
            rate / 1e9
        );
    }
    Ok(())
}
