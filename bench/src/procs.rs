//! The processes a run starts: the sink, the router under test, socat and haproxy. Each is
//! killed when its handle drops; readiness is a successful connect, never a fixed sleep.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::{net, pin};

/// How long a process may take to start listening.
const START: Duration = Duration::from_secs(15);

/// A child process, killed on drop.
pub struct Proc {
    child: Child,
    /// Held so the child sees EOF on stdin when we go.
    _stdin: Option<ChildStdin>,
}

impl Proc {
    /// Process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new() -> std::io::Result<Self> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("saprouter-bench-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `VmRSS` of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, own and reaped children) of a process, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    let hz = rustix::param::clock_ticks_per_second();
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// CPU time (user + system) of the calling thread, in seconds.
pub fn thread_cpu_secs() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9)
}

/// Ports of the sink's services.
#[derive(Clone, Copy, Debug)]
pub struct SinkPorts {
    pub discard: u16,
    pub source: u16,
    pub echo: u16,
    pub pong: u16,
}

/// Starts `<self> --sink <aliases>` and reads its ports.
pub fn start_sink(aliases: u8) -> std::io::Result<(Proc, SinkPorts)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--sink", &aliases.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let proc = Proc {
        child,
        _stdin: stdin,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let ports: Vec<u16> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    match ports.as_slice() {
        [discard, source, echo, pong] => Ok((
            proc,
            SinkPorts {
                discard: *discard,
                source: *source,
                echo: *echo,
                pong: *pong,
            },
        )),
        _ => Err(std::io::Error::other(format!("sink said {line:?}"))),
    }
}

/// Options every router under test runs with: room for 50 000 sessions (`-C`, two clients
/// each), and 256 KiB in flight per direction (`-B 8` reads of 32 KiB, `-Q` = `-C` × 256 KiB;
/// SAP's defaults `-B 1 -Q 20000000 -C 800` allow 25 000 bytes).
pub const ROUTER_OPTIONS: [&str; 6] = ["-C", "100000", "-B", "8", "-Q", "26214400000"];

/// Starts the router under test with a table that permits every sink service, in both talk
/// modes (raw targets must be listed by port); returns it and its port.
pub fn start_router(binary: &Path, dir: &Path, sink: &SinkPorts) -> std::io::Result<(Proc, u16)> {
    let table: String = [sink.discard, sink.source, sink.echo, sink.pong]
        .iter()
        .map(|port| format!("P * * {port}\n"))
        .collect();
    start_router_with(binary, dir, &table, &["-r"])
}

/// Starts a router in `dir` with `table` and the start arguments `start` (`-r`, or `-i cf`).
pub fn start_router_with(
    binary: &Path,
    dir: &Path,
    table: &str,
    start: &[&str],
) -> std::io::Result<(Proc, u16)> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("saprouttab"), table)?;
    let errors = dir.join("stderr.log");
    for _ in 0..5 {
        let port = net::free_port()?;
        let child = pin::spawn_middle(
            Command::new(binary)
                .current_dir(dir)
                .args(start)
                .args(["-S", &port.to_string(), "-R", "saprouttab"])
                .args(ROUTER_OPTIONS)
                .args(["-H", "127.0.0.1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&errors)?),
        )?;
        let mut proc = Proc {
            child,
            _stdin: None,
        };
        if wait_listening(&mut proc, port)? {
            return Ok((proc, port));
        }
    }
    let said = std::fs::read_to_string(&errors).unwrap_or_default();
    Err(std::io::Error::other(format!(
        "router did not start: {}",
        said.lines().last().unwrap_or("no message")
    )))
}

/// Starts a program with arguments, output discarded.
pub fn spawn(program: &Path, args: &[&str], dir: &Path) -> std::io::Result<Proc> {
    let child = pin::spawn_middle(
        Command::new(program)
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    Ok(Proc {
        child,
        _stdin: None,
    })
}

/// True while the process runs.
pub fn running(proc: &mut Proc) -> bool {
    matches!(proc.child.try_wait(), Ok(None))
}

/// Starts socat forwarding a fresh port to `target`; `None` when socat is not installed.
pub fn start_socat(target: u16) -> std::io::Result<Option<(Proc, u16)>> {
    let Some(socat) = which("socat") else {
        return Ok(None);
    };
    for _ in 0..5 {
        let port = net::free_port()?;
        let child = pin::spawn_middle(
            Command::new(&socat)
                .arg(format!(
                    "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay"
                ))
                .arg(format!("TCP:127.0.0.1:{target},nodelay"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let mut proc = Proc {
            child,
            _stdin: None,
        };
        if wait_listening(&mut proc, port)? {
            return Ok(Some((proc, port)));
        }
    }
    Err(std::io::Error::other("socat did not start"))
}

/// Starts haproxy (mode tcp, defaults otherwise) with one listener per sink port; returns
/// the listening ports in the order of `targets`. `None` when haproxy is not installed.
/// `aliases` spreads the echo backend over 127.0.0.1..=aliases.
pub fn start_haproxy(
    dir: &Path,
    targets: &[u16],
    echo: u16,
    aliases: u8,
    maxconn: u64,
) -> std::io::Result<Option<(Proc, Vec<u16>)>> {
    let Some(haproxy) = which("haproxy") else {
        return Ok(None);
    };
    // haproxy refuses to start when 2 × maxconn does not fit the descriptor limit.
    let hard = crate::nofile::current().map_or(1024, |(_, h)| h);
    let maxconn = maxconn.min(hard.saturating_sub(128) / 2);
    for _ in 0..5 {
        let ports = targets
            .iter()
            .map(|_| net::free_port())
            .collect::<std::io::Result<Vec<u16>>>()?;
        let threads = pin::middle_threads();
        let mut cfg = format!(
            "global\n  maxconn {maxconn}\n  nbthread {threads}\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n  maxconn {maxconn}\n"
        );
        for (i, (listen, target)) in ports.iter().zip(targets).enumerate() {
            cfg.push_str(&format!(
                "\nlisten l{i}\n  bind 127.0.0.1:{listen}\n  balance roundrobin\n"
            ));
            let spread = if *target == echo { aliases.max(1) } else { 1 };
            for a in 1..=spread {
                cfg.push_str(&format!("  server s{a} 127.0.0.{a}:{target}\n"));
            }
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg)?;
        let child = pin::spawn_middle(
            Command::new(&haproxy)
                .args(["-db", "-q", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let mut proc = Proc {
            child,
            _stdin: None,
        };
        let mut all = true;
        for port in &ports {
            all &= wait_listening(&mut proc, *port)?;
        }
        if all {
            return Ok(Some((proc, ports)));
        }
    }
    Err(std::io::Error::other("haproxy did not start"))
}

/// Waits until `port` accepts; false when the process exited first (port taken: retry).
fn wait_listening(proc: &mut Proc, port: u16) -> std::io::Result<bool> {
    let start = Instant::now();
    let addr = net::loopback(1, port);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(true);
        }
        if proc.child.try_wait()?.is_some() {
            return Ok(false);
        }
        if start.elapsed() > START {
            return Err(std::io::Error::other(format!("nothing listens on {port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A program on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The first line a program prints for `args` (its version), if it runs.
pub fn version(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// `SocketAddr` of a local port on 127.0.0.1.
pub fn local(port: u16) -> SocketAddr {
    net::loopback(1, port)
}

#[cfg(test)]
mod cpu_time_tests {
    use super::{cpu_secs, thread_cpu_secs};

    #[test]
    fn cpu_clocks_advance_with_work() {
        let before = thread_cpu_secs().expect("thread clock");
        let mut x = 0u64;
        while thread_cpu_secs().expect("thread clock") - before < 0.02 {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let own = cpu_secs(std::process::id()).expect("own /proc stat");
        assert!(own >= 0.0 && own.is_finite());
    }
}
