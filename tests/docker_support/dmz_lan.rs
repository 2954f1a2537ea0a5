//! The checks of `examples/dmz-lan`: a DMZ router and a LAN router that registers with it
//! across a firewall that lets nothing from the DMZ into the LAN.

use super::*;

pub const DMZ_LAN: Setup = Setup {
    dir: "dmz-lan",
    prepare: &[&[
        "docker-base.sh",
        "saprouter-rs-base:bookworm-nftables",
        "nftables",
    ]],
    env: &[("LAN_HOST_BASE", "saprouter-rs-base:bookworm-nftables")],
    check: dmz_lan,
};

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
