//! The checks of `examples/ha`: DMZ routers behind haproxy (PROXY protocol) and LAN routers
//! registering the same service with each of them.

use super::*;

pub const HA: Setup = Setup {
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

/// `count` nipings of [`ha_niping`], each of which must pass (`when` tells which in a
/// failure).
fn ha_nipings_pass(count: usize, when: &str) {
    for i in 0..count {
        let out = ha_niping(Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "niping {i} {when} failed:\n{}",
            both(&out)
        );
    }
}

/// Whether one niping of [`ha_niping`] went through; when not, `last` says why.
fn ha_niping_passed(limit: Duration, last: &mut String) -> bool {
    match ha_niping(limit) {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            *last = both(&out);
            false
        }
        Err(e) => {
            *last = e;
            false
        }
    }
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
        ha_niping_passed(Duration::from_secs(10), &mut last).then_some(())
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
    ha_nipings_pass(16, "through the balancer");
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
        ha_niping_passed(Duration::from_secs(1), &mut last).then(|| stopped.elapsed())
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
    ha_nipings_pass(8, "after the stop");
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
