//! The columns of the single-hop table: direct, the router under test, an optional baseline
//! router binary, socat and haproxy, with the processes that serve them.

use std::path::{Path, PathBuf};

use super::hop;
use super::procs::{self, Proc, SinkPorts};

/// The paths of a run and the processes to keep alive while they are measured.
pub struct Paths {
    pub paths: Vec<hop::Path>,
    pub keep: Vec<Proc>,
    /// Router binaries and their column numbers (for the session rows).
    pub routers: Vec<(usize, PathBuf)>,
    /// Programs and versions, for the report.
    pub tools: Vec<(String, String)>,
}

/// Starts everything the paths need.
pub fn start(
    router: &Path,
    baseline: Option<&Path>,
    peers: bool,
    sink: &SinkPorts,
    dir: &Path,
) -> std::io::Result<Paths> {
    let mut p = Paths {
        paths: vec![hop::Path {
            name: "direct".into(),
            hops: Ok(hop::direct(sink)),
            pids: Vec::new(),
            cpu_note: None,
        }],
        keep: Vec::new(),
        routers: Vec::new(),
        tools: vec![(
            "saprouter".to_string(),
            format!("{} (release build under test)", router.display()),
        )],
    };
    add_router(&mut p, "saprouter-rs", router, sink, &dir.join("router"))?;
    if let Some(baseline) = baseline {
        p.tools.push((
            "baseline".to_string(),
            format!("{} (saprouter binary compared)", baseline.display()),
        ));
        add_router(&mut p, "baseline", baseline, sink, &dir.join("baseline"))?;
    }
    if peers {
        add_socat(&mut p, sink)?;
        add_haproxy(&mut p, sink, dir)?;
    }
    Ok(p)
}

fn add_router(
    p: &mut Paths,
    name: &str,
    binary: &Path,
    sink: &SinkPorts,
    dir: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (proc, port) = procs::start_router(binary, dir, sink)?;
    p.routers.push((p.paths.len(), binary.to_path_buf()));
    p.paths.push(hop::Path {
        name: name.into(),
        hops: Ok(hop::routed(port, sink)),
        pids: vec![proc.pid()],
        cpu_note: None,
    });
    p.keep.push(proc);
    Ok(())
}

/// One socat per sink service.
fn add_socat(p: &mut Paths, sink: &SinkPorts) -> std::io::Result<()> {
    let mut ports = [0u16; 4];
    let mut pids = Vec::new();
    let targets = [sink.discard, sink.source, sink.echo, sink.pong];
    for (slot, target) in ports.iter_mut().zip(targets) {
        match procs::start_socat(target)? {
            Some((proc, port)) => {
                pids.push(proc.pid());
                p.keep.push(proc);
                *slot = port;
            }
            None => {
                p.paths.push(hop::Path {
                    name: "socat".into(),
                    hops: Err("not installed".into()),
                    pids: Vec::new(),
                    cpu_note: None,
                });
                return Ok(());
            }
        }
    }
    p.tools.push(tool_version("socat", &["-V"]));
    p.paths.push(hop::Path {
        name: "socat".into(),
        hops: Ok(hop::proxied(ports, sink)),
        pids,
        cpu_note: Some("n/a (a process per connection)".into()),
    });
    Ok(())
}

fn add_haproxy(p: &mut Paths, sink: &SinkPorts, dir: &Path) -> std::io::Result<()> {
    let targets = [sink.discard, sink.source, sink.echo, sink.pong];
    let started = procs::start_haproxy(dir, &targets, sink.echo, 1, 20_000)?;
    let path = match started {
        Some((proc, ports)) => {
            let path = hop::Path {
                name: "haproxy".into(),
                hops: Ok(hop::proxied([ports[0], ports[1], ports[2], ports[3]], sink)),
                pids: vec![proc.pid()],
                cpu_note: None,
            };
            p.keep.push(proc);
            p.tools.push(tool_version("haproxy", &["-v"]));
            path
        }
        None => hop::Path {
            name: "haproxy".into(),
            hops: Err("not installed".into()),
            pids: Vec::new(),
            cpu_note: None,
        },
    };
    p.paths.push(path);
    Ok(())
}

/// A program's name and the first line of its version output.
pub fn tool_version(name: &str, args: &[&str]) -> (String, String) {
    let v = procs::which(name)
        .and_then(|p| procs::version(&p, args))
        .unwrap_or_else(|| "unknown version".into());
    (name.to_string(), v)
}
