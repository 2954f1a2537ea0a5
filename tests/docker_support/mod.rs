//! What the container tests share: commands with a deadline, the docker engine (started
//! for the tests when none answers, stopped again by its last user), the image built once
//! per run from this build's binaries, NI sessions and niping runs from the host, and the
//! compose set-ups of `examples/` ([`Setup`], brought up and down by [`run_setup`]). The
//! set-ups' checks are in [`dmz_lan`] and [`ha`].

pub mod dmz_lan;
pub mod ha;

use crate::common::{self, frame, read_frame, route, rterr, tool_available, PONG};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const SAPROUTER: &str = env!("CARGO_BIN_EXE_saprouter");
pub const NIPING: &str = env!("CARGO_BIN_EXE_niping");
/// The tag `scripts/docker-image.sh` gives the image by default.
pub const IMAGE: &str = "saprouter-rs";
/// The image's non-root user.
pub const UID: &str = "3299";

// ---------------------------------------------------------------------------------------
// Commands with a deadline

/// Runs `cmd` (no standard input) and returns its output; kills it past `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_child(&mut child, limit).ok_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        format!("{what} did not finish within {limit:?}")
    })?;
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Reads a child's pipe to its end in a thread.
pub fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The child's exit status, or `None` when it is still running after `limit`.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output and standard error of a finished command.
pub fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Runs `cmd`, which must succeed within `limit`; its standard output.
pub fn ok(cmd: &mut Command, limit: Duration) -> String {
    let what = format!("{cmd:?}");
    let out = run(cmd, limit).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn docker(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}

pub fn script(name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(ROOT).join("scripts").join(name))
        .current_dir(ROOT);
    cmd
}

/// Polls `probe` every 100 ms until it returns `Some`, at most `limit`.
pub fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// The engine and the image

/// Who uses the engine now, and the dockerd these tests started, if they did.
pub struct EngineState {
    users: usize,
    started: Option<u32>,
}

pub static ENGINE: Mutex<EngineState> = Mutex::new(EngineState {
    users: 0,
    started: None,
});

/// A docker engine in use; the last user stops the dockerd that `scripts/docker-up.sh`
/// started for these tests (never one that was running before).
pub struct Engine;

/// The engine, started when needed; `None` (the test says why and passes) where docker
/// cannot be used, except under CI, where that fails the test.
pub fn engine() -> Option<Engine> {
    if !tool_available("docker") {
        return None;
    }
    let mut state = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    if state.users == 0 {
        let up = run(&mut script("docker-up.sh"), Duration::from_secs(90));
        let started = match &up {
            Ok(out) if out.status.success() => text(&out.stdout),
            Ok(out) => return no_engine(&format!("{}{}", text(&out.stdout), text(&out.stderr))),
            Err(e) => return no_engine(e),
        };
        state.started = started
            .trim()
            .strip_prefix("started ")
            .and_then(|pid| pid.parse().ok());
    }
    state.users += 1;
    Some(Engine)
}

pub fn no_engine(why: &str) -> Option<Engine> {
    assert!(
        std::env::var_os("CI").is_none(),
        "no docker engine, and CI must run the container tests: {why}"
    );
    common::skipped(&format!(
        "no docker engine could be used; the container tests did not run: {why}"
    ));
    None
}

impl Drop for Engine {
    fn drop(&mut self) {
        let mut state = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
        state.users -= 1;
        if state.users == 0 {
            if let Some(pid) = state.started.take() {
                stop_process(pid);
            }
        }
    }
}

/// SIGTERM to `pid`, then SIGKILL if it still runs after 30 s.
pub fn stop_process(pid: u32) {
    let gone = || {
        // A zombie has stopped too: nobody may be left to reap it.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
        .then_some(())
    };
    let _ = run(
        Command::new("kill").args(["-TERM", &pid.to_string()]),
        Duration::from_secs(5),
    );
    if poll(Duration::from_secs(30), gone).is_none() {
        eprintln!("dockerd {pid} did not stop within 30 s of SIGTERM: killed");
        let _ = run(
            Command::new("kill").args(["-KILL", &pid.to_string()]),
            Duration::from_secs(5),
        );
    }
}

pub static IMAGE_BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// `scripts/docker-image.sh`, once per test run, from the binaries cargo built for it.
pub fn build_image() {
    let built = IMAGE_BUILT.get_or_init(|| {
        let start = Instant::now();
        // The first run on a machine makes the Debian base with debootstrap.
        let out = run(
            script("docker-image.sh")
                .env("SAPROUTER_BIN", SAPROUTER)
                .env("NIPING_BIN", NIPING),
            Duration::from_secs(900),
        )?;
        if !out.status.success() {
            return Err(format!(
                "scripts/docker-image.sh failed:\n{}",
                text(&out.stderr)
            ));
        }
        eprintln!("image {IMAGE} built in {:?}", start.elapsed());
        Ok(())
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// The `{{...}}` template of `docker inspect` for `container`, trimmed.
pub fn inspect(container: &str, format: &str) -> String {
    ok(
        &mut docker(&["inspect", "--format", format, container]),
        Duration::from_secs(30),
    )
    .trim()
    .to_string()
}

/// Waits until `container`'s HEALTHCHECK says healthy (60 s at most).
pub fn wait_healthy(container: &str) {
    let mut last = String::new();
    let healthy = poll(Duration::from_secs(60), || {
        last = inspect(container, "{{.State.Health.Status}}");
        (last == "healthy").then_some(())
    });
    assert!(
        healthy.is_some(),
        "{container} not healthy within 60 s (status {last}): {}",
        inspect(container, "{{json .State.Health.Log}}")
    );
}

/// `docker exec container args...`, bounded; its output whatever the exit code.
pub fn exec(container: &str, args: &[&str], limit: Duration) -> Output {
    let mut all = vec!["exec", container];
    all.extend_from_slice(args);
    run(&mut docker(&all), limit).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------
// NI sessions and niping from the host

/// An NI session routed along `hops` (host, service) through the router at `host`:`port`,
/// checked with one echoed message.
pub fn ni_session(host: &str, port: u16, hops: &[(&str, &str)]) -> TcpStream {
    let mut s = TcpStream::connect((host, port)).expect("connect to the router");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let hops: Vec<(&str, &str, &str)> = hops.iter().map(|&(h, p)| (h, p, "")).collect();
    s.write_all(&frame(&route(&hops, 0))).expect("send route");
    assert_eq!(read_frame(&mut s), PONG, "route {hops:?} refused");
    s.write_all(&frame(b"through the container"))
        .expect("send message");
    assert_eq!(read_frame(&mut s), b"through the container");
    s
}

/// `niping -c -H route -L loops` from the host, bounded; its output.
pub fn niping(route: &str, loops: &str) -> Output {
    run(
        Command::new(NIPING).args(["-c", "-H", route, "-L", loops]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A long niping run through `route` in the background, its output to a file in `dir`;
/// returned once the router lists one more session with a partner than before (`listing`
/// gives the router's `saprouter -l`).
pub fn niping_running(route: &str, dir: &Path, listing: impl Fn() -> String) -> Child {
    let before = partners(&listing());
    let out = std::fs::File::create(dir.join("niping.out")).expect("niping output file");
    let err = out.try_clone().expect("niping output file");
    let mut child = Command::new(NIPING)
        .args(["-c", "-H", route, "-L", "100000", "-D", "20"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start niping");
    let mut last = String::new();
    let routed = poll(Duration::from_secs(10), || {
        last = listing();
        (partners(&last) > before).then_some(())
    });
    if routed.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "niping's session never showed in the router's list ({before} before):\n{last}\n{}",
            std::fs::read_to_string(dir.join("niping.out")).unwrap_or_default()
        );
    }
    child
}

/// Sessions with a partner in a `saprouter -l` listing (rows "ID CLIENT | PARTNER ...").
pub fn partners(listing: &str) -> usize {
    listing
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|id| id.parse::<u32>().is_ok())
                && l.contains('|')
                && !l.contains("(no partner)")
        })
        .count()
}

/// Stops `child` (a niping of [`niping_running`]) and returns its output, when it has
/// ended by itself within `limit`.
pub fn niping_ended(mut child: Child, dir: &Path, limit: Duration) -> (Option<ExitStatus>, String) {
    let status = wait_child(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (
        status,
        std::fs::read_to_string(dir.join("niping.out")).unwrap_or_default(),
    )
}

/// Asserts that `s` gets the router's shutdown goodbye: `NI_RTERR` -98.
pub fn assert_goodbye(s: &mut TcpStream) {
    let reply = read_frame(s);
    assert_eq!(rterr(&reply).rc, -98, "not the shutdown goodbye");
}

// ---------------------------------------------------------------------------------------
// The image on its own

/// A container (name or id) removed with its anonymous volumes when dropped.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(
            &mut docker(&["rm", "--force", "--volumes", &self.0]),
            Duration::from_secs(60),
        );
    }
}
// ---------------------------------------------------------------------------------------
// Compose set-ups

/// One compose set-up of `examples/`.
pub struct Setup {
    /// Its directory under `examples/`.
    pub dir: &'static str,
    /// Scripts of `scripts/` with their arguments, run before `up` (base images it needs).
    pub prepare: &'static [&'static [&'static str]],
    /// The environment of every compose command.
    pub env: &'static [(&'static str, &'static str)],
    /// The checks, run while the set-up is up.
    pub check: fn(&Compose),
}

/// A Compose command line: v1 `docker-compose` or v2 `docker compose`.
#[derive(Clone, Copy, Debug)]
pub enum Flavour {
    V1,
    V2,
}

impl Flavour {
    fn argv(self) -> &'static [&'static str] {
        match self {
            Flavour::V1 => &["docker-compose"],
            Flavour::V2 => &["docker", "compose"],
        }
    }
}

/// Every Compose installed; under CI at least one (`.ci/run` installs `docker-compose`).
pub fn composes() -> Vec<Flavour> {
    let mut found = Vec::new();
    let v2 = run(
        &mut docker(&["compose", "version"]),
        Duration::from_secs(30),
    );
    if v2.is_ok_and(|out| out.status.success()) {
        found.push(Flavour::V2);
    }
    let v1 = Command::new("sh")
        .args(["-c", "command -v docker-compose"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if v1 {
        found.push(Flavour::V1);
    }
    if found.is_empty() {
        // Says that the set-up did not run, or fails the test under CI.
        tool_available("docker-compose");
    }
    found
}

/// A set-up brought up with one Compose; brought down (containers, networks, volumes) when
/// dropped, also when a check failed.
pub struct Compose {
    flavour: Flavour,
    dir: PathBuf,
    env: &'static [(&'static str, &'static str)],
}

impl Compose {
    fn command(&self, args: &[&str]) -> Command {
        let argv = self.flavour.argv();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).args(args).current_dir(&self.dir);
        for (key, value) in self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// A compose command that must succeed within `limit`; its standard output.
    fn ok(&self, args: &[&str], limit: Duration) -> String {
        ok(&mut self.command(args), limit)
    }

    /// `exec -T service args...`, bounded; its output whatever the exit code.
    fn exec(&self, service: &str, args: &[&str], limit: Duration) -> Output {
        let mut all = vec!["exec", "-T", service];
        all.extend_from_slice(args);
        run(&mut self.command(&all), limit).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The container id of `service`.
    fn container(&self, service: &str) -> String {
        let id = self.ok(&["ps", "-q", service], Duration::from_secs(60));
        let id = id.trim().to_string();
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    fn down(&self) -> Result<Output, String> {
        run(
            &mut self.command(&["down", "--volumes", "--remove-orphans"]),
            Duration::from_secs(120),
        )
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        match self.down() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("compose down failed: {}", text(&out.stderr)),
            Err(e) => eprintln!("{e}"),
        }
    }
}

/// One compose set-up at a time.
pub static ONE_SETUP: Mutex<()> = Mutex::new(());

/// Prepares `setup`, then for each Compose installed: up, its checks, down.
pub fn run_setup(setup: &Setup) {
    let Some(_engine) = engine() else { return };
    let _one = ONE_SETUP.lock().unwrap_or_else(|p| p.into_inner());
    build_image();
    for step in setup.prepare {
        ok(script(step[0]).args(&step[1..]), Duration::from_secs(900));
    }
    let flavours = composes();
    for flavour in flavours {
        let start = Instant::now();
        let compose = Compose {
            flavour,
            dir: Path::new(ROOT).join("examples").join(setup.dir),
            env: setup.env,
        };
        // What an interrupted earlier run may have left.
        let _ = compose.down();
        compose.ok(&["up", "--detach", "--build"], Duration::from_secs(300));
        (setup.check)(&compose);
        drop(compose);
        eprintln!(
            "examples/{} with {flavour:?}: {:?}",
            setup.dir,
            start.elapsed()
        );
    }
}

#[test]
fn partners_are_counted_in_a_listing() {
    let listing = "ID  CLIENT                      | PARTNER                     service\n\
                   --------------------------------+------------------------------------\n\
                   2   127.0.0.1                   | (no partner)                \n\
                   3   172.17.0.1                  | 127.0.0.1                   3298\n\
                   Total no. of clients: 2\n";
    assert_eq!(partners(listing), 1);
}
