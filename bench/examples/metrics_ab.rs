//! A/B throughput of one raw route through the router, without and with `--metrics`
//! (scraped once a second during the transfer), alternating rounds; prints the median of
//! each and their ratio. Loopback only.
//!
//! ```text
//! cargo build --release
//! cargo run --release -p saprouter-bench --example metrics_ab -- target/release/saprouter [MiB per round] [rounds]
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;
const STEP: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A server that reads everything, then closes (the client's EOF comes back as EOF).
fn sink() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = vec![0u8; CHUNK];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                let _ = conn.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

fn route(target: u16, router: u16) -> Vec<u8> {
    let mut string = Vec::new();
    for (h, s) in [("127.0.0.1", router), ("127.0.0.1", target)] {
        string.extend_from_slice(format!("{h}\0{s}\0\0").as_bytes());
    }
    let first = format!("127.0.0.1\0{router}\0\0").len() as u32;
    let mut p = b"NI_ROUTE\0".to_vec();
    p.extend_from_slice(&[2, 40, 2, 1, 0, 0, 1]);
    p.extend_from_slice(&(string.len() as u32).to_be_bytes());
    p.extend_from_slice(&first.to_be_bytes());
    p.extend_from_slice(&string);
    let mut framed = (p.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&p);
    framed
}

struct Router(Child);

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &str, dir: &std::path::Path, port: u16, metrics: Option<u16>) -> Router {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .args(["-r", "-S", &port.to_string(), "-R", "saprouttab"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(m) = metrics {
        cmd.args(["--metrics", &format!("127.0.0.1:{m}")]);
    }
    let router = Router(cmd.spawn().expect("start saprouter"));
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < STEP, "router did not start");
        thread::sleep(Duration::from_millis(20));
    }
    router
}

fn scrape(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(STEP));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut body = String::new();
    s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1.1 200")
}

/// Sends `bytes` through one raw route; returns MiB/s from the first byte to the EOF back.
fn transfer(router: u16, target: u16, bytes: usize) -> f64 {
    let mut s = TcpStream::connect(("127.0.0.1", router)).expect("connect");
    s.set_read_timeout(Some(STEP)).expect("timeout");
    s.write_all(&route(target, router)).expect("route");
    let mut pong = [0u8; 12];
    s.read_exact(&mut pong).expect("answer");
    assert_eq!(&pong[4..], b"NI_PONG\0", "route refused");
    let data = vec![0x5au8; CHUNK];
    let started = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        s.write_all(&data[..n]).expect("send");
        left -= n;
    }
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut rest = [0u8; 64];
    while matches!(s.read(&mut rest), Ok(n) if n > 0) {}
    bytes as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .map_or("target/release/saprouter", String::as_str);
    let bin = std::fs::canonicalize(bin).expect("saprouter binary");
    let bin = bin.to_str().expect("binary path");
    let mib: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let target = sink();
    let dir = std::env::temp_dir().join(format!("metrics-ab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("saprouttab"),
        format!("P 127.0.0.1 127.0.0.1 {target}\n"),
    )
    .expect("table");
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for with_metrics in [round % 2 == 1, round % 2 == 0] {
            let port = free_port();
            let mport = with_metrics.then(free_port);
            let _router = start(bin, &dir, port, mport);
            let stop = Arc::new(AtomicBool::new(false));
            let scraper = mport.map(|m| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut scrapes = 0;
                    while !stop.load(Ordering::Relaxed) {
                        scrapes += usize::from(scrape(m));
                        thread::sleep(Duration::from_secs(1));
                    }
                    scrapes
                })
            });
            let rate = transfer(port, target, mib << 20);
            stop.store(true, Ordering::Relaxed);
            let scrapes = scraper.map(|t| t.join().unwrap_or(0));
            println!(
                "round {round}: {:>11} {rate:8.0} MiB/s{}",
                if with_metrics {
                    "--metrics"
                } else {
                    "no metrics"
                },
                scrapes.map_or(String::new(), |n| format!(" ({n} scrapes)"))
            );
            if with_metrics {
                on.push(rate);
            } else {
                off.push(rate);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b) = (median(off), median(on));
    println!(
        "median of {rounds} x {mib} MiB: without {a:.0} MiB/s, with --metrics {b:.0} MiB/s, ratio {:.3}",
        b / a
    );
}
