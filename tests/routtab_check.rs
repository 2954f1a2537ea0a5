//! `saprouter --check` and `--explain` against the real binary: the corpus of bad tables in
//! tests/routtab-check/ gives exactly its expected findings and exit code; the bundled
//! samples report only what their comments announce; `--explain`'s verdict is what the
//! running router does; start-up and reload report findings in the trace and the metrics.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use saprouter::ri::params::{self, RiParams};
use saprouter::routtab::check::{check_ri_client, check_table, CheckContext, Source};
use saprouter::routtab::{Resolver, RoutTab};
use saprouter::services::Services;

fn saprouter(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_saprouter"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run saprouter");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/routtab-check")
}

/// The resolver's own words differ between systems; the corpus keeps a placeholder.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            match (
                l.find("cannot resolve host name: "),
                l.find("; the line matches"),
            ) {
                (Some(a), Some(b)) if a < b => format!(
                    "{}cannot resolve host name: <resolver error>{}",
                    &l[..a],
                    &l[b..]
                ),
                _ => l.to_string(),
            }
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn corpus_cases_give_their_expected_findings_and_exit_codes() {
    let mut cases = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let Some(case) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".saprouttab"))
        else {
            continue;
        };
        let expected = std::fs::read_to_string(corpus().join(format!("{case}.expected")))
            .unwrap_or_else(|_| panic!("{case}.expected missing"));
        let extra =
            std::fs::read_to_string(corpus().join(format!("{case}.args"))).unwrap_or_default();
        let table = format!("{case}.saprouttab");
        let mut args = vec!["--check", "-R", table.as_str()];
        args.extend(extra.lines().filter(|l| !l.is_empty()));
        let (code, out, err) = saprouter(&corpus(), &args);
        assert_eq!(normalise(&out), expected, "{case}: stderr {err}");
        // The exit code follows the worst finding.
        let want = if expected.lines().any(|l| l.contains(": error: ")) {
            2
        } else if expected.lines().any(|l| l.contains(": warning: ")) {
            1
        } else {
            0
        };
        assert_eq!(code, want, "{case}");
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} cases");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("clean", "P 10.0.0.1 10.0.0.2 3200\nD * * *\n");
    write("warn", "P 10.0.0.1 10.0.0.2 3200 pw\n");
    write("error", "P * * *\n");
    write("broken", "P 10.0.0.1 10.0.0.2 70000\n");
    write("cf", "client = yes\n");
    for (args, code) in [
        (vec!["--check", "-R", "clean"], 0),
        (vec!["--check", "-R", "warn"], 1),
        (vec!["--check", "-R", "error"], 2),
        (vec!["--check", "-R", "broken"], 2),
        (vec!["--check", "-R", "missing"], 2),
        (vec!["--check", "-R", "clean", "-i", "cf"], 2),
        (vec!["--check", "-R", "clean", "--format", "yaml"], 2),
        (
            vec![
                "--explain",
                "10.0.0.1",
                "/H/r/H/10.0.0.2/S/3200",
                "-R",
                "clean",
            ],
            0,
        ),
        (
            vec![
                "--explain",
                "10.0.0.9",
                "/H/r/H/10.0.0.2/S/3200",
                "-R",
                "clean",
            ],
            1,
        ),
        (
            vec![
                "--explain",
                "10.0.0.9",
                "/H/r/H/10.0.0.2/S/3200",
                "-R",
                "broken",
            ],
            2,
        ),
        (
            vec![
                "--explain",
                "not-an-ip",
                "/H/r/H/10.0.0.2/S/3200",
                "-R",
                "clean",
            ],
            2,
        ),
        (vec!["--explain", "10.0.0.1", "no-route", "-R", "clean"], 2),
    ] {
        let (got, out, err) = saprouter(dir.path(), &args);
        assert_eq!(got, code, "{args:?}: {out}{err}");
    }
    // The default table is ./saprouttab, as for the router.
    write("saprouttab", "P 10.0.0.1 10.0.0.2 3200 pw\n");
    assert_eq!(saprouter(dir.path(), &["--check"]).0, 1);
    // A file that does not load is named with its line.
    let (_, out, _) = saprouter(dir.path(), &["--check", "-R", "broken"]);
    assert!(
        out.starts_with("broken:1: error: column 21: service: '70000'"),
        "{out}"
    );
    let (_, out, _) = saprouter(dir.path(), &["--check", "-R", "clean", "-i", "cf"]);
    assert!(
        out.contains("cf:0: error: cf: 'client_service' is required"),
        "{out}"
    );
}

#[test]
fn json_output_for_scripts() {
    let (code, out, _) = saprouter(
        &corpus(),
        &["--check", "-R", "open-route.saprouttab", "--format", "json"],
    );
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"], 3);
    assert_eq!(v["warnings"], 3);
    let first = &v["findings"][0];
    assert_eq!(first["file"], "open-route.saprouttab");
    assert_eq!(first["line"], 2);
    assert_eq!(first["severity"], "error");
    assert_eq!(first["rule"], "open-route");
    let shadowed = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "shadowed-line")
        .unwrap();
    assert_eq!(shadowed["related_line"], 2);
    assert!(
        !out.contains("gui"),
        "the password of line 4 must not be printed: {out}"
    );
}

/// Host names of the samples stand for real hosts: each gets its own 10.0.0.x.
struct SampleResolver {
    hosts: RefCell<HashMap<String, IpAddr>>,
    services: Services,
}

impl Resolver for SampleResolver {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let mut hosts = self.hosts.borrow_mut();
        let next = u8::try_from(hosts.len() + 1).map_err(|e| e.to_string())?;
        Ok(vec![*hosts
            .entry(name.to_string())
            .or_insert_with(|| IpAddr::from([10, 0, 0, next]))])
    }
    fn resolve_service(&self, name: &str) -> Option<u16> {
        self.services.resolve(name)
    }
}

/// `# saprouter --check: <rule-id> ...` comments: (file, line of the next rule line, id).
fn announced(path: &Path, shown: &Path) -> BTreeSet<(PathBuf, usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut pending = Vec::new();
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t
            .strip_prefix('#')
            .and_then(|c| c.trim().strip_prefix("saprouter --check:"))
        {
            pending.push(rest.split_whitespace().next().unwrap_or("").to_string());
        } else if !t.is_empty() && !t.starts_with('#') {
            for id in pending.drain(..) {
                out.insert((shown.to_path_buf(), i + 1, id));
            }
        }
    }
    out
}

#[test]
fn bundled_samples_report_only_what_their_comments_announce() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("routtab-samples");
    // (table, -i file, -K as in the sample's start command)
    let samples: &[(&str, Option<&str>, bool)] = &[
        ("saprouttab", None, false),
        ("sap-help-examples", None, false),
        ("sap-help-snc-examples", None, true),
        (
            "reverse-invoke/saprouttab-dmz",
            Some("reverse-invoke/cf1"),
            false,
        ),
        (
            "reverse-invoke/saprouttab-lan",
            Some("reverse-invoke/cf2"),
            false,
        ),
        (
            "reverse-invoke-snc/saprouttab-dmz",
            Some("reverse-invoke-snc/cf1"),
            true,
        ),
        (
            "reverse-invoke-snc/saprouttab-lan",
            Some("reverse-invoke-snc/cf2"),
            true,
        ),
    ];
    let services = Services::parse("telnet 23/tcp\nserviceX 4444/tcp\n");
    for (name, ri, snc) in samples {
        let path = dir.join(name);
        let resolver = SampleResolver {
            hosts: RefCell::new(HashMap::new()),
            services: services.clone(),
        };
        let table = RoutTab::load(&path, &resolver).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = Path::new(name);
        let src = Source {
            path: shown,
            text: &text,
        };
        let mut ctx = CheckContext {
            snc: *snc,
            own_ports: vec![3299],
        };
        let mut expected = announced(&path, shown);
        let mut findings = Vec::new();
        if let Some(ri) = ri {
            let ri_path = dir.join(ri);
            let ri_text = std::fs::read_to_string(&ri_path).unwrap();
            expected.extend(announced(&ri_path, Path::new(ri)));
            if let RiParams::Client(p) = params::parse(&ri_text, Path::new(ri), &services).unwrap()
            {
                ctx.own_ports.push(p.service);
                findings.extend(check_ri_client(
                    &p,
                    Path::new(ri),
                    &ri_text,
                    &table,
                    src,
                    &ctx,
                ));
            }
        }
        findings.extend(check_table(&table, src, &ctx));
        let got: BTreeSet<(PathBuf, usize, String)> = findings
            .iter()
            .map(|f| (f.file.clone(), f.line, f.rule.id().to_string()))
            .collect();
        let shown_findings: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(got, expected, "{name}:\n{}", shown_findings.join("\n"));
    }
}

#[test]
fn the_default_sample_checks_clean_through_the_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("routtab-samples");
    let (code, out, err) = saprouter(&dir, &["--check", "-R", "saprouttab"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "0 error(s), 0 warning(s), 0 note(s)\n"),
        "{err}"
    );
}

/// The verdict of `--explain --format json` for a route from 127.0.0.1.
fn explain(router: &TestRouter, route: &str, raw: bool) -> serde_json::Value {
    let port = router.port.to_string();
    let mut args = vec![
        "--explain",
        "127.0.0.1",
        route,
        "-R",
        "saprouttab",
        "-S",
        &port,
        "--format",
        "json",
    ];
    if raw {
        args.push("--raw");
    }
    let (_, out, err) = saprouter(router.dir.path(), &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"))
}

/// Waits until the -G log holds `needle`.
fn wait_log(router: &TestRouter, needle: &str) {
    let start = Instant::now();
    while !read_text(&router.path("connlog")).contains(needle) {
        assert!(
            start.elapsed() < STEP,
            "connlog has no {needle:?}:\n{}",
            read_text(&router.path("connlog"))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn explain_says_what_the_running_router_does() {
    let (a, b, c) = (ni_echo(), ni_echo(), raw_echo());
    let table = format!(
        "P    127.0.0.1  127.0.0.1  {a}\n\
         P0,0 *          127.0.0.1  {b}\n\
         P    *          127.0.0.1  {c}  pw\n\
         S    *          127.0.0.1  9\n\
         D    *          *          *\n"
    );
    let router = TestRouter::start(&table, &["-G", "connlog"]);
    let me = router.port.to_string();
    let here = |rest: &str| format!("/H/127.0.0.1/S/{me}{rest}");
    let cases: Vec<(String, Vec<Hop>, u8)> = vec![
        // Permitted by line 1.
        (
            here(&format!("/H/127.0.0.1/S/{a}")),
            vec![hop(&me, ""), hop(&a.to_string(), "")],
            0,
        ),
        // Line 2: a router follows, hop limit 0 after.
        (
            here(&format!("/H/127.0.0.1/S/{b}/H/10.0.0.1/S/3200")),
            vec![
                hop(&me, ""),
                hop(&b.to_string(), ""),
                ("10.0.0.1".into(), "3200".into(), String::new()),
            ],
            0,
        ),
        // Line 3 without and with the password (native mode).
        (
            here(&format!("/H/127.0.0.1/S/{c}")),
            vec![hop(&me, ""), hop(&c.to_string(), "")],
            1,
        ),
        (
            here(&format!("/W/pw/H/127.0.0.1/S/{c}")),
            vec![hop(&me, "pw"), hop(&c.to_string(), "")],
            1,
        ),
        // Line 4 is S: native refused.
        (
            here("/H/127.0.0.1/S/9"),
            vec![hop(&me, ""), hop("9", "")],
            1,
        ),
        // Line 5 denies.
        (
            here("/H/127.0.0.1/S/7"),
            vec![hop(&me, ""), hop("7", "")],
            0,
        ),
    ];
    let mut permits = 0;
    for (route, hops, mode) in &cases {
        let verdict = explain(&router, route, *mode == 1);
        let hops: Vec<(&str, &str, &str)> = hops
            .iter()
            .map(|(h, s, p)| (h.as_str(), s.as_str(), p.as_str()))
            .collect();
        let (_s, reply) = ask_route(&router, &hops, *mode);
        match verdict["verdict"].as_str().unwrap() {
            "permit" => {
                assert_eq!(reply, PONG, "{route}: explain says permit: {verdict}");
                permits += 1;
            }
            "deny" => {
                let err = rterr(&reply);
                assert_eq!(err.rc, -94, "{route}: {verdict}");
                // The router's -G line is the one --explain names.
                let log = verdict["log"].as_str().unwrap();
                let text = log.strip_prefix("PERM DENIED ").expect("PERM DENIED line");
                wait_log(&router, text);
            }
            other => panic!("{route}: {other}: {verdict}"),
        }
    }
    assert_eq!(permits, 2, "two of the routes are permitted");
    let v = explain(&router, &here("/H/127.0.0.1/S/7"), false);
    assert_eq!(
        (v["line"].as_u64(), v["lines"].as_array().unwrap().len()),
        (Some(5), 5)
    );
    // A route to the router itself: refused before the table, as the router does.
    let v = explain(&router, &here(&format!("/H/127.0.0.1/S/{me}")), false);
    assert_eq!(v["verdict"], "refused");
    assert!(v["reason"].as_str().unwrap().contains("router itself"));
    let refused = refused(
        &router,
        &[("127.0.0.1", &me, ""), ("127.0.0.1", &me, "")],
        0,
    );
    assert_eq!(refused.rc, -94);
    wait_log(&router, "(route to the router itself)");
}

/// One hop of a route: host, service, password.
type Hop = (String, String, String);

fn hop(service: &str, password: &str) -> Hop {
    ("127.0.0.1".into(), service.into(), password.into())
}

/// One `GET /metrics`, retried until the endpoint answers.
fn scrape(port: u16) -> String {
    let start = Instant::now();
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(err) => {
                assert!(start.elapsed() < STEP, "metrics endpoint not up: {err}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(STEP)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn wait_metric(port: u16, series: &str) {
    let start = Instant::now();
    loop {
        let body = scrape(port);
        if body.lines().any(|l| l == series) {
            return;
        }
        assert!(start.elapsed() < STEP, "no {series:?} in\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn findings_at_start_up_and_reload_are_warnings_and_a_gauge() {
    let metrics = free_port();
    let addr = format!("127.0.0.1:{metrics}");
    // A table with an error-level finding still starts the router.
    let router = TestRouter::start(
        "P * * *\nP 10.0.0.1 10.0.0.2 3200 pw\n",
        &["--metrics", &addr],
    );
    let trace = wait_trace(&router, "[open-route]");
    assert!(trace.contains("WARN"), "{trace}");
    assert!(trace.contains("[password-in-table]"), "{trace}");
    assert!(
        !trace.contains(" pw"),
        "the password must not reach the trace: {trace}"
    );
    wait_metric(metrics, "saprouter_routtab_findings{severity=\"error\"} 1");
    wait_metric(
        metrics,
        "saprouter_routtab_findings{severity=\"warning\"} 1",
    );
    // -n with a clean table: the gauge follows the table in force.
    std::fs::write(router.path("saprouttab"), "P 10.0.0.1 10.0.0.2 3200\n").unwrap();
    let out = router.admin(&["-n"]);
    assert!(out.status.success(), "{out:?}");
    wait_metric(metrics, "saprouter_routtab_findings{severity=\"error\"} 0");
    wait_metric(
        metrics,
        "saprouter_routtab_findings{severity=\"warning\"} 0",
    );
}

#[test]
fn reverse_invoke_findings_reach_the_trace_at_start_up() {
    let cf_dir = tempfile::tempdir().unwrap();
    let cf = cf_dir.path().join("cf1");
    let registration = free_port();
    std::fs::write(
        &cf,
        format!("client = true\nclient_service = {registration}\nmax_servers = 2\n"),
    )
    .unwrap();
    let cf = cf.display().to_string();
    let router = TestRouter::start("P * 10.200.0.2 5002\nD * * *\n", &["-i", &cf]);
    let trace = wait_trace(&router, "[ri-no-ace]");
    assert!(trace.contains("[ri-max-servers-unvetted]"), "{trace}");
    assert!(
        trace.contains(&format!("{cf}:1: warning: no ACE list")),
        "{trace}"
    );
}
