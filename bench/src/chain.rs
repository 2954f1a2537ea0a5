//! The reverse-invoke chain: client → DMZ router → link (opened by the LAN router) → LAN
//! router → sink, and rathole's equivalent (client → rathole server → data channel →
//! rathole client → sink) when rathole is installed.

use std::path::Path;
use std::time::{Duration, Instant};

use super::hop::{self, Hops};
use super::net;
use super::procs::{self, Proc, SinkPorts};

/// How long a chain may take until a route passes end to end.
const READY: Duration = Duration::from_secs(20);

/// A running chain: its processes (killed on drop) and how to reach the sink through it.
pub struct Chain {
    pub procs: Vec<Proc>,
    pub hops: Hops,
}

impl Chain {
    /// Process ids (their CPU time is the chain's cost).
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}

/// Test certificates for a TLS link: the directory made by `scripts/make-test-pki.sh` with
/// `SAPROUTER1` (DMZ) and `SAPROUTER2` (LAN).
pub fn make_pki(dir: &Path) -> Result<std::path::PathBuf, String> {
    // The script is the workspace's (bench/ is a crate inside it).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-pki.sh");
    let pki = dir.join("pki");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&pki)
        .args(["SAPROUTER1", "SAPROUTER2"])
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .last()
            .unwrap_or("make-test-pki.sh failed")
            .to_string());
    }
    Ok(pki)
}

/// `-K` and certificate options of a router of the test PKI.
fn snc_args(pki: &Path, cn: &str) -> Vec<String> {
    let d = pki.join(cn.to_ascii_lowercase());
    let file = |f: &str| d.join(f).to_string_lossy().into_owned();
    vec![
        "-K".into(),
        format!("p:CN={cn}"),
        "--snc-cert".into(),
        file("saprouter.crt"),
        "--snc-key".into(),
        file("saprouter.key"),
        "--snc-ca".into(),
        file("ca.crt"),
    ]
}

/// The table of the router next to the sink: every sink service from this host, nothing
/// else.
fn sink_table(sink: &SinkPorts) -> String {
    [sink.discard, sink.source, sink.echo, sink.pong]
        .iter()
        .map(|p| format!("P 127.0.0.1 * {p}\n"))
        .chain(["D * * *\n".to_string()])
        .collect()
}

/// Starts a DMZ router (reverse-invoke client) and a LAN router registering with it, both
/// `binary`, and waits until a route passes. With `pki` (from [`make_pki`]) both run with
/// SNC, so the link between them is TLS (the client's and the sink's hops stay plain).
/// `lan_extra`: more lines of the LAN router's `-i` file (`link_protocol = linkmux`).
pub fn saprouter(
    binary: &Path,
    sink: &SinkPorts,
    dir: &Path,
    pki: Option<&Path>,
    lan_extra: &str,
) -> std::io::Result<Chain> {
    let reg_port = net::free_port()?;
    let pseudo = net::free_port()?;
    let dmz_dir = dir.join("dmz");
    let lan_dir = dir.join("lan");
    std::fs::create_dir_all(&dmz_dir)?;
    std::fs::create_dir_all(&lan_dir)?;
    std::fs::write(
        dmz_dir.join("cf"),
        format!("client = true\nclient_hostname = 127.0.0.1\nclient_service = {reg_port}\n"),
    )?;
    std::fs::write(
        lan_dir.join("cf"),
        format!(
            "server = true\nclient_hostname = 127.0.0.1\nclient_service = {reg_port}\nreg_service = {pseudo}\n{lan_extra}"
        ),
    )?;
    let dmz_table = format!("P * 127.0.0.1 {pseudo}\nD * * *\n");
    let lan_table = sink_table(sink);
    let start = |cn: &str| {
        let mut args = vec!["-i".to_string(), "cf".to_string()];
        if let Some(pki) = pki {
            args.extend(snc_args(pki, cn));
        }
        args
    };
    let dmz_args = start("SAPROUTER1");
    let lan_args = start("SAPROUTER2");
    let dmz_args: Vec<&str> = dmz_args.iter().map(String::as_str).collect();
    let lan_args: Vec<&str> = lan_args.iter().map(String::as_str).collect();
    let (dmz, dmz_port) = procs::start_router_with(binary, &dmz_dir, &dmz_table, &dmz_args)?;
    let (lan, _) = procs::start_router_with(binary, &lan_dir, &lan_table, &lan_args)?;
    let chain = Chain {
        procs: vec![dmz, lan],
        hops: hop::chained(dmz_port, pseudo, sink),
    };
    wait_passing(&chain)?;
    Ok(chain)
}

/// Two routers of `binary` in series on a plain multi-hop route (client → front router →
/// back router → sink), no reverse invoke: every session has TCP connections of its own and
/// each router splices it from socket to socket. The floor of any chain of two relays that
/// leave the copying to the kernel: what a multiplexed link adds is measured against it.
pub fn two_hops(binary: &Path, sink: &SinkPorts, dir: &Path) -> std::io::Result<Chain> {
    let (back, back_port) =
        procs::start_router_with(binary, &dir.join("back"), &sink_table(sink), &["-r"])?;
    let front_table = format!("P * 127.0.0.1 {back_port}\nD * * *\n");
    let (front, front_port) =
        procs::start_router_with(binary, &dir.join("front"), &front_table, &["-r"])?;
    let chain = Chain {
        procs: vec![front, back],
        hops: hop::chained(front_port, back_port, sink),
    };
    wait_passing(&chain)?;
    Ok(chain)
}

/// Starts rathole's server and client with one service per sink port; `None` when rathole
/// is not installed.
pub fn rathole(sink: &SinkPorts, dir: &Path) -> std::io::Result<Option<Chain>> {
    let Some(program) = procs::which("rathole") else {
        return Ok(None);
    };
    let control = net::free_port()?;
    let names = ["discard", "source", "echo", "pong"];
    let targets = [sink.discard, sink.source, sink.echo, sink.pong];
    let mut visitor = [0u16; 4];
    let mut server = format!("[server]\nbind_addr = \"127.0.0.1:{control}\"\n");
    let mut client = format!("[client]\nremote_addr = \"127.0.0.1:{control}\"\n");
    for ((name, target), port) in names.iter().zip(targets).zip(visitor.iter_mut()) {
        *port = net::free_port()?;
        server.push_str(&format!(
            "\n[server.services.{name}]\ntoken = \"bench\"\nbind_addr = \"127.0.0.1:{port}\"\n"
        ));
        client.push_str(&format!(
            "\n[client.services.{name}]\ntoken = \"bench\"\nlocal_addr = \"127.0.0.1:{target}\"\n"
        ));
    }
    let rdir = dir.join("rathole");
    std::fs::create_dir_all(&rdir)?;
    std::fs::write(rdir.join("server.toml"), server)?;
    std::fs::write(rdir.join("client.toml"), client)?;
    let mut server = procs::spawn(&program, &["--server", "server.toml"], &rdir)?;
    let client = procs::spawn(&program, &["--client", "client.toml"], &rdir)?;
    if !procs::running(&mut server) {
        return Err(std::io::Error::other("rathole server exited at start"));
    }
    let chain = Chain {
        procs: vec![server, client],
        hops: hop::proxied(visitor, sink),
    };
    wait_passing(&chain)?;
    Ok(Some(chain))
}

/// Polls every service through the chain until each works (rathole registers its services
/// one by one).
fn wait_passing(chain: &Chain) -> std::io::Result<()> {
    use super::client;
    let h = &chain.hops;
    let start = Instant::now();
    loop {
        let tried = client::round_trips(&h.echo, 1, 8)
            .and_then(|_| client::upload(&h.discard_raw, 1, 0))
            .and_then(|_| client::download(&h.source_raw, 1, 0))
            .and_then(|_| h.pong.open().map(drop));
        match tried {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > READY => {
                return Err(std::io::Error::other(format!("chain not ready: {e}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The chain table's rows for `paths`: bulk both ways, NI round trips idle and beside a bulk
/// download on the same link.
pub fn measure(paths: &[hop::Path], plan: &hop::Plan, table: &mut super::table::Table) {
    use super::client;
    use super::table::{Cell, Kind};
    hop::bulk(
        paths,
        plan,
        &[
            hop::RAW_UPLOAD,
            hop::RAW_DOWNLOAD,
            hop::NI_DOWNLOAD,
            hop::CONSUMER_UPLOAD,
            hop::CONSUMER_DOWNLOAD,
        ],
        table,
    );
    hop::latency(paths, plan, table);
    let (mut p50, mut p99, mut rise, mut rate) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for path in paths {
        let idle = table.value("NI round trip, 64 B, p50", &path.name);
        let result = path.hops.as_ref().map_err(Clone::clone).and_then(|h| {
            client::round_trips_beside_bulk(&h.echo, &h.source_raw, plan.rounds, 64)
                .map_err(|e| format!("failed: {e}"))
        });
        match result {
            Ok((times, bulk_rate)) => {
                let median = client::quantile(&times, 0.5) as f64;
                p50.push(Cell::Value(median));
                p99.push(Cell::Value(client::quantile(&times, 0.99) as f64));
                rise.push(idle.map_or(Cell::Note("—".into()), |i| Cell::Value(median - i)));
                rate.push(Cell::Value(bulk_rate));
            }
            Err(why) => {
                for row in [&mut p50, &mut p99, &mut rise, &mut rate] {
                    row.push(Cell::Note(why.clone()));
                }
            }
        }
    }
    let beside = "beside a bulk download on the same link";
    table.push(
        format!("NI round trip, 64 B, p50, {beside}"),
        Kind::Latency,
        p50,
    );
    table.push(
        format!("NI round trip, 64 B, p99, {beside}"),
        Kind::Latency,
        p99,
    );
    table.push(
        "… rise of the interactive p50 while the bulk download runs",
        Kind::Rise,
        rise,
    );
    table.push(
        "… the bulk download's rate meanwhile",
        Kind::Throughput,
        rate,
    );
}
