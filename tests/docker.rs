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
//! is one more `Setup` with its check function in a module of `docker_support/` and a
//! `#[test]` here that calls [`run_setup`]. The set-ups run one at a time (they may share
//! addresses and published ports). What the tests share (commands with a deadline, the
//! engine, the image, sessions from the host, compose) is in `docker_support/mod.rs`.

mod common;
mod docker_support;

use docker_support::*;
use std::time::{Duration, Instant};

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

#[test]
fn dmz_lan_compose() {
    run_setup(&dmz_lan::DMZ_LAN);
}

#[test]
fn ha_compose() {
    run_setup(&ha::HA);
}
