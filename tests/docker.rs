//! The container files, run under docker: the image that `scripts/docker-image.sh` builds
//! from this build's binaries, on its own and in the compose set-ups of `examples/`, each
//! brought up with every Compose installed (v1 `docker-compose`, v2 `docker compose`),
//! checked, and taken down again.
//!
//! Needs docker, and root to start dockerd: `scripts/docker-up.sh` starts it when no engine
//! answers, and the tests stop it again when they started it. Where docker is missing or
//! cannot be started the tests say so and pass, except under CI (`CI` set), where they fail.
//! The first run on a machine makes the Debian base images with debootstrap (a few minutes);
//! later runs find them by tag.
//!
//! A compose set-up is a [`Setup`]: its directory, what to prepare before `up`, the
//! environment of every compose command, and a function with its checks; another set-up
//! is one more `Setup`, its check function and a `#[test]` that calls [`run_setup`]. The
//! set-ups run one at a time (they may share addresses and published ports).

mod common;

use common::{frame, read_frame, route, rterr, tool_available, PONG};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SAPROUTER: &str = env!("CARGO_BIN_EXE_saprouter");
const NIPING: &str = env!("CARGO_BIN_EXE_niping");
/// The tag `scripts/docker-image.sh` gives the image by default.
const IMAGE: &str = "saprouter-rs";
/// The image's non-root user.
const UID: &str = "3299";

// ---------------------------------------------------------------------------------------
// Commands with a deadline

/// Runs `cmd` (no standard input) and returns its output; kills it past `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
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
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The child's exit status, or `None` when it is still running after `limit`.
fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output and standard error of a finished command.
fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Runs `cmd`, which must succeed within `limit`; its standard output.
fn ok(cmd: &mut Command, limit: Duration) -> String {
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

fn docker(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}

fn script(name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(ROOT).join("scripts").join(name))
        .current_dir(ROOT);
    cmd
}

/// Polls `probe` every 100 ms until it returns `Some`, at most `limit`.
fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
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
struct EngineState {
    users: usize,
    started: Option<u32>,
}

static ENGINE: Mutex<EngineState> = Mutex::new(EngineState {
    users: 0,
    started: None,
});

/// A docker engine in use; the last user stops the dockerd that `scripts/docker-up.sh`
/// started for these tests (never one that was running before).
struct Engine;

/// The engine, started when needed; `None` (the test says why and passes) where docker
/// cannot be used, except under CI, where that fails the test.
fn engine() -> Option<Engine> {
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

fn no_engine(why: &str) -> Option<Engine> {
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
fn stop_process(pid: u32) {
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

static IMAGE_BUILT: OnceLock<Result<(), String>> = OnceLock::new();

/// `scripts/docker-image.sh`, once per test run, from the binaries cargo built for it.
fn build_image() {
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
fn inspect(container: &str, format: &str) -> String {
    ok(
        &mut docker(&["inspect", "--format", format, container]),
        Duration::from_secs(30),
    )
    .trim()
    .to_string()
}

/// Waits until `container`'s HEALTHCHECK says healthy (60 s at most).
fn wait_healthy(container: &str) {
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
fn exec(container: &str, args: &[&str], limit: Duration) -> Output {
    let mut all = vec!["exec", container];
    all.extend_from_slice(args);
    run(&mut docker(&all), limit).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------
// NI sessions and niping from the host

/// An NI session routed along `hops` (host, service) through the router at `host`:`port`,
/// checked with one echoed message.
fn ni_session(host: &str, port: u16, hops: &[(&str, &str)]) -> TcpStream {
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
fn niping(route: &str, loops: &str) -> Output {
    run(
        Command::new(NIPING).args(["-c", "-H", route, "-L", loops]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A long niping run through `route` in the background, its output to a file in `dir`;
/// returned once the router lists one more session with a partner than before (`listing`
/// gives the router's `saprouter -l`).
fn niping_running(route: &str, dir: &Path, listing: impl Fn() -> String) -> Child {
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
fn partners(listing: &str) -> usize {
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
fn niping_ended(mut child: Child, dir: &Path, limit: Duration) -> (Option<ExitStatus>, String) {
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
fn assert_goodbye(s: &mut TcpStream) {
    let reply = read_frame(s);
    assert_eq!(rterr(&reply).rc, -98, "not the shutdown goodbye");
}

// ---------------------------------------------------------------------------------------
// The image on its own

/// A container (name or id) removed with its anonymous volumes when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(
            &mut docker(&["rm", "--force", "--volumes", &self.0]),
            Duration::from_secs(60),
        );
    }
}

/// The image as the README runs it: read-only root, the table directory mounted read-only,
/// the trace on a tmpfs, the route port published. Runs as the non-root user with the
/// router as PID 1, writes its trace, re-reads its table on SIGHUP, turns healthy, and
/// stops on `docker stop` with exit code 0 after telling a running NI session -98.
#[test]
fn image_runs_read_only_reloads_on_hup_and_stops_cleanly() {
    let Some(_engine) = engine() else { return };
    build_image();

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("config dir");
    let table = config.join("saprouttab");
    // The container's user reads the table; nothing permits the niping server yet.
    std::fs::write(&table, "P * * 3297\n").expect("write table");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o644)).unwrap();

    let name = format!("saprouter-rs-test-{}", std::process::id());
    let mount = format!("{}:/usr/sap/saprouter:ro", config.display());
    // Removed by name, also when `docker run` fails half-way.
    let container = Container(name.clone());
    let c = container.0.as_str();
    ok(
        &mut docker(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--read-only",
            "--tmpfs",
            "/var/log/saprouter:uid=3299,gid=3299",
            "--volume",
            &mount,
            "--publish",
            "127.0.0.1::3299",
            IMAGE,
        ]),
        Duration::from_secs(60),
    );
    let port: u16 = ok(
        &mut docker(&["port", c, "3299/tcp"]),
        Duration::from_secs(30),
    )
    .lines()
    .next()
    .and_then(|l| l.rsplit(':').next())
    .and_then(|p| p.trim().parse().ok())
    .expect("published port");

    // Up and answering its admin client inside the container.
    let listed = poll(Duration::from_secs(30), || {
        let out = exec(c, &["saprouter", "-l"], Duration::from_secs(20));
        out.status.success().then_some(())
    });
    assert!(
        listed.is_some(),
        "saprouter -l in the container never answered; logs:\n{}",
        text(
            &run(&mut docker(&["logs", c]), Duration::from_secs(30))
                .unwrap()
                .stderr
        )
    );

    // The user, PID 1, the read-only root, the trace on the tmpfs.
    let id_u = exec(c, &["id", "-u"], Duration::from_secs(20));
    assert_eq!(text(&id_u.stdout).trim(), UID, "the container's user");
    let pid1 = exec(c, &["cat", "/proc/1/cmdline"], Duration::from_secs(20));
    assert!(
        text(&pid1.stdout).starts_with("/usr/local/bin/saprouter\0"),
        "PID 1 is not the router: {:?}",
        text(&pid1.stdout)
    );
    for path in ["/probe", "/usr/sap/saprouter/probe"] {
        let touch = exec(c, &["touch", path], Duration::from_secs(20));
        assert!(!touch.status.success(), "{path} is writable");
    }
    let trace = exec(
        c,
        &["test", "-s", "/var/log/saprouter/dev_rout"],
        Duration::from_secs(20),
    );
    assert!(trace.status.success(), "no trace on the tmpfs");

    // A niping server inside the container stands in for a backend.
    ok(
        &mut docker(&[
            "exec", "--detach", c, "niping", "-s", "-S", "3298", "-I", "0",
        ]),
        Duration::from_secs(30),
    );
    let through = format!("/H/127.0.0.1/S/{port}/H/127.0.0.1/S/3298");
    let denied = niping(&through, "1");
    assert!(
        !denied.status.success() && both(&denied).contains("-94"),
        "the route was not refused by the first table:\n{}",
        both(&denied)
    );

    // SIGHUP: the table is read again (rewritten in place: the mount shows the same file).
    std::fs::write(&table, "P * 127.0.0.1 3298\n").expect("rewrite table");
    ok(
        &mut docker(&["kill", "--signal", "HUP", c]),
        Duration::from_secs(30),
    );
    let reloaded = poll(Duration::from_secs(20), || {
        niping(&through, "1").status.success().then_some(())
    });
    assert!(reloaded.is_some(), "SIGHUP did not bring in the new table");

    wait_healthy(c);

    // docker stop: SIGTERM to PID 1; the sessions are told -98, the exit code is 0. They
    // connect to the container's address, as a client on another machine reaches it
    // (published ports from other hosts are forwarded in the kernel; only connections to
    // 127.0.0.1 go through docker's userland proxy, which dockerd stops with the container).
    let ip = inspect(
        c,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    let mut session = ni_session(&ip, 3299, &[(&ip, "3299"), ("127.0.0.1", "3298")]);
    let direct = format!("/H/{ip}/S/3299/H/127.0.0.1/S/3298");
    let niping_dir = tempfile::tempdir().expect("temp dir");
    let long = niping_running(&direct, niping_dir.path(), || {
        text(&exec(c, &["saprouter", "-l"], Duration::from_secs(20)).stdout)
    });
    let stopped = Instant::now();
    ok(&mut docker(&["stop", c]), Duration::from_secs(60));
    assert_goodbye(&mut session);
    assert_eq!(
        inspect(c, "{{.State.ExitCode}}"),
        "0",
        "exit code after docker stop"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "docker stop took {:?}",
        stopped.elapsed()
    );
    let (status, output) = niping_ended(long, niping_dir.path(), Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()) && output.contains("-98"),
        "the running niping did not end with the -98 goodbye ({status:?}):\n{output}"
    );
}

// ---------------------------------------------------------------------------------------
// Compose set-ups

/// One compose set-up of `examples/`.
struct Setup {
    /// Its directory under `examples/`.
    dir: &'static str,
    /// Scripts of `scripts/` with their arguments, run before `up` (base images it needs).
    prepare: &'static [&'static [&'static str]],
    /// The environment of every compose command.
    env: &'static [(&'static str, &'static str)],
    /// The checks, run while the set-up is up.
    check: fn(&Compose),
}

/// A Compose command line: v1 `docker-compose` or v2 `docker compose`.
#[derive(Clone, Copy, Debug)]
enum Flavour {
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
fn composes() -> Vec<Flavour> {
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
struct Compose {
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
static ONE_SETUP: Mutex<()> = Mutex::new(());

/// Prepares `setup`, then for each Compose installed: up, its checks, down.
fn run_setup(setup: &Setup) {
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

// ---------------------------------------------------------------------------------------
// examples/dmz-lan

const DMZ_LAN: Setup = Setup {
    dir: "dmz-lan",
    prepare: &[&[
        "docker-base.sh",
        "saprouter-rs-base:bookworm-nftables",
        "nftables",
    ]],
    env: &[("LAN_HOST_BASE", "saprouter-rs-base:bookworm-nftables")],
    check: dmz_lan,
};

#[test]
fn dmz_lan_compose() {
    run_setup(&DMZ_LAN);
}

/// The route from the DMZ host to the dispatcher over the LAN router's pseudo port.
const ROUTE_IN_DMZ: &str = "/H/10.200.0.1/S/4001/H/10.200.0.2/S/5002/H/127.0.0.1/S/sapdp01";
/// The same route from the host, through the published port.
const ROUTE_FROM_HOST: &str = "/H/127.0.0.1/S/4001/H/10.200.0.2/S/5002/H/127.0.0.1/S/sapdp01";

/// Whether the DMZ router lists the LAN router's registration (`saprouter -l`).
fn lan_registered(compose: &Compose) -> bool {
    let out = compose.exec(
        "dmz",
        &["saprouter", "-l", "-S", "4001"],
        Duration::from_secs(30),
    );
    out.status.success() && text(&out.stdout).contains("srv no 1 ")
}

/// The DMZ router's trace lines that record a registration.
fn registrations(compose: &Compose) -> String {
    let out = compose.exec(
        "dmz",
        &[
            "grep",
            "LAN router registered",
            "/var/log/saprouter/dev_rout",
        ],
        Duration::from_secs(30),
    );
    text(&out.stdout)
}

/// The published scenario's three tests from the DMZ container, niping through the
/// published port, the DMZ restart, the HEALTHCHECK, and `docker stop` with a session open.
fn dmz_lan(compose: &Compose) {
    let dmz = compose.container("dmz");
    let registered = poll(Duration::from_secs(30), || {
        lan_registered(compose).then_some(())
    });
    assert!(
        registered.is_some(),
        "the LAN router did not register within 30 s; DMZ trace:\n{}",
        text(
            &exec(
                &dmz,
                &["cat", "/var/log/saprouter/dev_rout"],
                Duration::from_secs(20)
            )
            .stdout
        )
    );

    // Test 1: direct TCP connections from the DMZ host. The DMZ router answers; the LAN
    // host answers nothing (its firewall drops the SYN: the connect times out).
    let tcp = |host: &str, port: &str| {
        let dev = format!("exec 3<>/dev/tcp/{host}/{port}");
        compose
            .exec(
                "dmz",
                &["timeout", "3", "bash", "-c", &dev],
                Duration::from_secs(30),
            )
            .status
            .code()
    };
    assert_eq!(
        tcp("10.200.0.1", "4001"),
        Some(0),
        "DMZ 4001 does not answer"
    );
    for port in ["3299", "3201"] {
        assert_eq!(tcp("10.200.0.2", port), Some(124), "LAN {port} answered");
    }

    // Test 2: niping straight to the LAN host fails.
    let direct = compose.exec(
        "dmz",
        &[
            "timeout",
            "10",
            "niping",
            "-c",
            "-H",
            "10.200.0.2",
            "-S",
            "3201",
            "-L",
            "1",
        ],
        Duration::from_secs(30),
    );
    assert!(
        !direct.status.success(),
        "niping reached the LAN host directly"
    );

    // Test 3: niping through the DMZ router over the registered pseudo port.
    let routed = compose.exec(
        "dmz",
        &["niping", "-c", "-H", ROUTE_IN_DMZ],
        Duration::from_secs(30),
    );
    assert!(
        routed.status.success(),
        "niping through the DMZ router failed:\n{}",
        both(&routed)
    );

    // From the host, through the published port.
    let from_host = niping(ROUTE_FROM_HOST, "10");
    assert!(
        from_host.status.success(),
        "niping from the host failed:\n{}",
        both(&from_host)
    );

    // The health checks: the image's own for the LAN router, the compose file's for the
    // DMZ router (port 4001) and the dispatcher (a niping).
    for service in ["dmz", "lan", "sapdp01"] {
        wait_healthy(&compose.container(service));
    }

    // DMZ restart: the LAN router registers again within 2 s of the DMZ router's start
    // (the container's start time against the registration's time in the DMZ trace).
    compose.ok(&["restart", "dmz"], Duration::from_secs(60));
    let started = inspect(&dmz, "{{.State.StartedAt}}");
    let started_ns = rfc3339_ns(&started).unwrap_or_else(|| panic!("StartedAt {started:?}"));
    let again = poll(Duration::from_secs(20), || {
        lan_registered(compose).then_some(())
    });
    let trace = registrations(compose);
    assert!(
        again.is_some(),
        "no registration within 20 s of the restart:\n{trace}"
    );
    let registered_ns = trace
        .lines()
        .filter(|l| l.contains("reverse-invoke: LAN router registered"))
        .filter_map(|l| l.split_whitespace().next().and_then(rfc3339_ns))
        .find(|&t| t >= started_ns)
        .unwrap_or_else(|| panic!("no registration after {started} in the trace:\n{trace}"));
    let after_ms = (registered_ns - started_ns) / 1_000_000;
    eprintln!("the LAN router registered again {after_ms} ms after the DMZ container started");
    assert!(
        after_ms <= 2000,
        "registration {after_ms} ms after the DMZ router's start"
    );
    let after_restart = niping(ROUTE_FROM_HOST, "10");
    assert!(
        after_restart.status.success(),
        "niping after the restart failed:\n{}",
        both(&after_restart)
    );

    // docker stop with sessions open: the goodbye -98 and exit code 0. The sessions connect
    // to the DMZ container's address, as in the image test.
    let mut session = ni_session(
        "10.200.0.1",
        4001,
        &[
            ("10.200.0.1", "4001"),
            ("10.200.0.2", "5002"),
            ("127.0.0.1", "sapdp01"),
        ],
    );
    let niping_dir = tempfile::tempdir().expect("temp dir");
    let long = niping_running(ROUTE_IN_DMZ, niping_dir.path(), || {
        let out = compose.exec(
            "dmz",
            &["saprouter", "-l", "-S", "4001"],
            Duration::from_secs(30),
        );
        text(&out.stdout)
    });
    compose.ok(&["stop", "dmz"], Duration::from_secs(60));
    assert_goodbye(&mut session);
    assert_eq!(
        inspect(&dmz, "{{.State.ExitCode}}"),
        "0",
        "DMZ exit code after stop"
    );
    let (status, output) = niping_ended(long, niping_dir.path(), Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()) && output.contains("-98"),
        "the running niping did not end with the -98 goodbye ({status:?}):\n{output}"
    );
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time (`2026-01-31T12:34:56.789Z`, as
/// docker and the trace write them).
fn rfc3339_ns(s: &str) -> Option<i128> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let mut nanos: i64 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        nanos += i64::from(c.to_digit(10)?) * 10i64.pow(8 - i as u32);
    }
    // Days from the civil date (proleptic Gregorian).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
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

#[test]
fn rfc3339_times_parse() {
    assert_eq!(rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        rfc3339_ns("2026-12-01T20:35:46.123456789Z"),
        Some(1_796_157_346_123_456_789)
    );
    assert_eq!(
        rfc3339_ns("2000-03-01T00:00:01.5Z"),
        Some(951_868_801_500_000_000)
    );
    assert_eq!(rfc3339_ns("2026-12-01 20:35:46"), None);
}

// ---------------------------------------------------------------------------------------
// examples/ha

const HA: Setup = Setup {
    dir: "ha",
    prepare: &[
        &[
            "docker-base.sh",
            "saprouter-rs-base:bookworm-nftables",
            "nftables",
        ],
        &[
            "docker-base.sh",
            "saprouter-rs-base:bookworm-haproxy",
            "haproxy",
        ],
    ],
    env: &[
        ("LAN_HOST_BASE", "saprouter-rs-base:bookworm-nftables"),
        ("HAPROXY_BASE", "saprouter-rs-base:bookworm-haproxy"),
    ],
    check: ha,
};

#[test]
fn ha_compose() {
    run_setup(&HA);
}

/// From the host through haproxy's published port to the pseudo address both LAN routers
/// serve, and on to their dispatchers.
const HA_ROUTE: &str = "/H/127.0.0.1/S/3299/H/10.201.9.9/S/5002/H/127.0.0.1/S/sapdp01";
/// haproxy's address: the DMZ routers must never log it as a client.
const HA_BALANCER: &str = "10.201.0.100";
/// The network's gateway (docker-compose.yml): the source of connections from the host
/// through the published port (docker's proxy, or the host's own address on the bridge).
const HA_GATEWAY: &str = "10.201.0.254";

/// The lines of a router's `saprouter -l` that name a registered instance.
fn ha_instances(compose: &Compose, service: &str) -> usize {
    let out = compose.exec(service, &["saprouter", "-l"], Duration::from_secs(30));
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains("instance"))
        .count()
}

/// A router's -G log.
fn ha_log(compose: &Compose, service: &str) -> String {
    let out = compose.exec(
        service,
        &["cat", "/var/log/saprouter/saprouter.log"],
        Duration::from_secs(30),
    );
    text(&out.stdout)
}

/// CONNECT FROM lines of a -G log whose client address begins with `prefix`
/// (`CONNECT FROM C3/-    host 10.201.0.254/57446`).
fn ha_connects(log: &str, prefix: &str) -> usize {
    let needle = format!("host {prefix}");
    log.lines()
        .filter(|l| l.contains("CONNECT FROM") && l.contains(&needle))
        .count()
}

/// One niping session from the host through the balancer, killed past `limit`.
fn ha_niping(limit: Duration) -> Result<Output, String> {
    run(
        Command::new(NIPING).args(["-c", "-H", HA_ROUTE, "-L", "1"]),
        limit,
    )
}

/// Both LAN routers register with both DMZ routers; sessions from the host through the
/// published haproxy port spread over both DMZ routers (and both LAN routers), whose -G
/// logs name the client, never haproxy; with one LAN and one DMZ container stopped a
/// session succeeds again within 2 s.
fn ha(compose: &Compose) {
    for dmz in ["dmz-a", "dmz-b"] {
        let mut last = 0;
        let both = poll(Duration::from_secs(30), || {
            last = ha_instances(compose, dmz);
            (last >= 2).then_some(())
        });
        assert!(
            both.is_some(),
            "{dmz} lists {last} instances after 30 s (want both LAN routers):\n{}",
            text(
                &compose
                    .exec(dmz, &["saprouter", "-l"], Duration::from_secs(30))
                    .stdout
            )
        );
    }

    // haproxy is up and has found the routers healthy once a session goes through.
    let mut last = String::new();
    let through = poll(Duration::from_secs(30), || {
        match ha_niping(Duration::from_secs(10)) {
            Ok(out) if out.status.success() => Some(()),
            Ok(out) => {
                last = both(&out);
                None
            }
            Err(e) => {
                last = e;
                None
            }
        }
    });
    assert!(
        through.is_some(),
        "no niping through the balancer within 30 s:\n{last}"
    );

    // Spread: 16 sessions, counted in the -G logs of all four routers (a LAN router's
    // client is the DMZ router that carried the session).
    let before: Vec<usize> = ["dmz-a", "dmz-b"]
        .iter()
        .map(|s| ha_connects(&ha_log(compose, s), &format!("{HA_GATEWAY}/")))
        .collect();
    let lan_before: Vec<usize> = ["lan-a", "lan-b"]
        .iter()
        .map(|s| ha_connects(&ha_log(compose, s), "10.201.0."))
        .collect();
    for i in 0..16 {
        let out = ha_niping(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "niping {i} through the balancer failed:\n{}",
            both(&out)
        );
    }
    let logs: Vec<String> = ["dmz-a", "dmz-b"]
        .iter()
        .map(|s| ha_log(compose, s))
        .collect();
    for (i, dmz) in ["dmz-a", "dmz-b"].iter().enumerate() {
        let after = ha_connects(&logs[i], &format!("{HA_GATEWAY}/"));
        eprintln!("{dmz}: {} of 16 sessions", after - before[i]);
        assert!(
            after > before[i],
            "{dmz} took none of 16 sessions from {HA_GATEWAY}; its -G log:\n{}",
            logs[i]
        );
        // The PROXY v2 header gave the router the client's address: haproxy's own
        // address is never logged as a client (its health checks are not sessions).
        assert_eq!(
            ha_connects(&logs[i], &format!("{HA_BALANCER}/")),
            0,
            "{dmz} logged the balancer as a client:\n{}",
            logs[i]
        );
    }
    for (i, lan) in ["lan-a", "lan-b"].iter().enumerate() {
        let after = ha_connects(&ha_log(compose, lan), "10.201.0.");
        eprintln!("{lan}: {} of 16 sessions", after - lan_before[i]);
        assert!(after > lan_before[i], "{lan} took none of 16 sessions");
    }

    // One LAN router and one DMZ router stopped: a session succeeds again within 2 s.
    // Each try is cut off after 1 s (a connect to the stopped DMZ container's address
    // hangs until haproxy's connect timeout); haproxy's round robin sends the next one to
    // the other router.
    let survivors_before = (
        ha_connects(&ha_log(compose, "dmz-a"), &format!("{HA_GATEWAY}/")),
        ha_connects(&ha_log(compose, "lan-b"), "10.201.0.1/"),
    );
    compose.ok(&["stop", "lan-a", "dmz-b"], Duration::from_secs(60));
    let stopped = Instant::now();
    let mut tries = 0;
    let mut last = String::new();
    let back = poll(Duration::from_secs(10), || {
        tries += 1;
        match ha_niping(Duration::from_secs(1)) {
            Ok(out) if out.status.success() => Some(stopped.elapsed()),
            Ok(out) => {
                last = both(&out);
                None
            }
            Err(e) => {
                last = e;
                None
            }
        }
    });
    let back = back.unwrap_or_else(|| {
        panic!("no session within 10 s of stopping lan-a and dmz-b ({tries} tries):\n{last}")
    });
    eprintln!("a session went through {back:?} after lan-a and dmz-b stopped ({tries} tries)");
    assert!(
        back <= Duration::from_secs(2),
        "first session {back:?} after the stop ({tries} tries; last failure:\n{last})"
    );
    // The survivors carry every session: dmz-a and lan-b log each one, and also a try cut
    // off above whose connection haproxy then handed to dmz-a.
    for i in 0..8 {
        let out = ha_niping(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "niping {i} after the stop failed:\n{}",
            both(&out)
        );
    }
    let survivors = (
        ha_connects(&ha_log(compose, "dmz-a"), &format!("{HA_GATEWAY}/")) - survivors_before.0,
        ha_connects(&ha_log(compose, "lan-b"), "10.201.0.1/") - survivors_before.1,
    );
    let want = 9..=8 + tries;
    assert!(
        want.contains(&survivors.0) && want.contains(&survivors.1),
        "sessions taken by dmz-a and lan-b after the stop: {survivors:?} (want {want:?} each)"
    );
}
