//! `--explain` against the table's own decision: random tables and routes (property), and
//! the steps around the table (names, services, own port, SNC checks).

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::routtab::{parse_table, Resolver};

struct Names;

impl Resolver for Names {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        lookup(name)
    }
    fn resolve_service(&self, name: &str) -> Option<u16> {
        crate::services::builtin_sap_service(name)
    }
}

fn lookup(name: &str) -> Result<Vec<IpAddr>, String> {
    match name {
        "app.example" => Ok(vec![
            "2001:db8::5".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
        ]),
        "v6only.example" => Ok(vec!["2001:db8::6".parse().unwrap()]),
        "empty.example" => Ok(vec![]),
        _ => Err(format!("{name}: Name or service not known")),
    }
}

fn load(text: &str) -> RoutTab {
    parse_table(text, Path::new("t"), &Names).unwrap()
}

fn question(source: &str, route: &str) -> Question {
    Question {
        source: source.parse().unwrap(),
        route: route.into(),
        snc_name: None,
        raw: false,
        hop: 1,
        snc: false,
        own_ports: vec![3299],
        exclusive: false,
    }
}

fn ask(text: &str, q: &Question) -> Explanation {
    let t = load(text);
    let src = Source {
        path: Path::new("t"),
        text,
    };
    explain(&t, src, &Services::builtin_only(), &lookup, q).unwrap()
}

#[test]
fn names_the_deciding_line_and_why_earlier_lines_did_not_match() {
    let text =
        "P 10.1.0.0/16 * *\nD * 10.0.0.6 *\nP * 10.0.0.5 3300\nP0,0 * 10.0.0.5 sapdp00\nP * * *\n";
    let e = ask(
        text,
        &question("192.0.2.7", "/H/r1/H/10.0.0.5/S/sapdp00/H/10.0.0.99/S/3200"),
    );
    assert_eq!(
        e.verdict,
        Verdict::Deny {
            line: Some(4),
            reason: DenyReason::HopLimit
        }
    );
    let reasons: Vec<String> = e.lines.iter().map(|(_, _, r)| r.join("; ")).collect();
    assert_eq!(reasons[0], "source 192.0.2.7 does not match 10.1.0.0/16");
    assert_eq!(reasons[1], "destination 10.0.0.5 does not match 10.0.0.6");
    assert_eq!(reasons[2], "service 3200 does not match 3300");
    assert!(reasons[3].is_empty());
    assert!(
        e.decider_note
            .contains("1 after; the line allows 0 before and 0 after"),
        "{}",
        e.decider_note
    );
    assert_eq!(
        e.log,
        "PERM DENIED host 192.0.2.7 to 10.0.0.5/sapdp00 (hop limit exceeded)"
    );
    let text_out = render_text(&e);
    assert!(
        text_out.contains("verdict: refused by line 4"),
        "{text_out}"
    );
    let json = render_json(&e);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["line"], 4);
    assert_eq!(v["rc"], -94);
    assert_eq!(v["lines"].as_array().unwrap().len(), 4);
    assert_eq!(v["lines"][3]["decides"], true);
}

#[test]
fn the_second_router_counts_one_before() {
    let text = "P0,* * * *\n";
    let mut q = question("10.0.0.1", "/H/r1/H/r2/H/10.0.0.5/S/3200");
    q.hop = 2;
    assert!(ask(text, &q).header[0].contains("hop 2 of 3: 1 router(s) before it, 0 after"));
    let e = ask(text, &q);
    assert_eq!(
        e.verdict,
        Verdict::Deny {
            line: Some(1),
            reason: DenyReason::HopLimit
        }
    );
    let mut q = question("10.0.0.1", "/H/r1/H/10.0.0.5/S/3200");
    assert_eq!(ask(text, &q).verdict, Verdict::Permit { line: 1 });
    q.hop = 2;
    let t = load(text);
    let src = Source {
        path: Path::new("t"),
        text,
    };
    assert!(explain(&t, src, &Services::builtin_only(), &lookup, &q).is_err());
}

#[test]
fn passwords_snc_names_and_native_mode() {
    let text =
        "P * 10.0.0.5 3200 pw\nKP \"p:CN=A\" 10.0.0.6 *\nS * 10.0.0.7 3200\nP * 10.0.0.8 *\n";
    let e = ask(text, &question("10.0.0.1", "/H/r/H/10.0.0.5/S/3200"));
    assert_eq!(
        e.verdict,
        Verdict::Deny {
            line: Some(1),
            reason: DenyReason::Password
        }
    );
    assert!(e.decider_note.contains("carries none"));
    let e = ask(text, &question("10.0.0.1", "/H/r/H/10.0.0.5/S/3200/W/pw"));
    assert_eq!(e.verdict, Verdict::Permit { line: 1 });
    assert!(!render_text(&e).contains("pw\n") && !render_json(&e).contains("/pw"));
    let e = ask(text, &question("10.0.0.1", "/H/r/H/10.0.0.6/S/3200"));
    assert_eq!(
        e.verdict,
        Verdict::Deny {
            line: None,
            reason: DenyReason::NoMatch
        }
    );
    assert!(
        e.lines[1].2[0].contains("carries no SNC name"),
        "{:?}",
        e.lines[1]
    );
    let mut q = question("10.0.0.1", "/H/r/H/10.0.0.6/S/3200");
    q.snc_name = Some("p:CN=B".into());
    assert!(ask(text, &q).lines[1].2[0].contains("SNC name p:CN=B does not match \"p:CN=A\""));
    q.snc_name = Some("p:cn=A".into());
    assert_eq!(ask(text, &q).verdict, Verdict::Permit { line: 2 });
    let mut q = question("10.0.0.1", "/H/r/H/10.0.0.7/S/3200");
    q.raw = true;
    assert_eq!(
        ask(text, &q).verdict,
        Verdict::Deny {
            line: Some(3),
            reason: DenyReason::NativeNotAllowed
        }
    );
    let mut q = question("10.0.0.1", "/H/r/H/10.0.0.8/S/22");
    q.raw = true;
    let e = ask(text, &q);
    assert_eq!(
        e.verdict,
        Verdict::Deny {
            line: None,
            reason: DenyReason::NoMatch
        }
    );
    assert!(
        e.lines[3].2.iter().any(|r| r.contains("native (raw)")),
        "{:?}",
        e.lines[3]
    );
}

#[test]
fn steps_around_the_table() {
    let text = "KT \"p:CN=A\" 10.0.0.9 *\nP * * *\n";
    // Names resolve like the router's: the first IPv4 address.
    let e = ask(text, &question("10.0.0.1", "/H/r/H/app.example/S/3200"));
    assert!(
        e.header
            .iter()
            .any(|h| h.contains("app.example -> 10.0.0.5 port 3200")),
        "{:?}",
        e.header
    );
    assert_eq!(e.log, "CONNECT TO host 10.0.0.5/3200 (app.example)");
    let refused = |route: &str, source: &str| match ask(text, &question(source, route)).verdict {
        Verdict::Refused { rc, why } => (rc, why),
        other => panic!("{route}: {other:?}"),
    };
    assert_eq!(refused("/H/r/H/nowhere.example/S/3200", "10.0.0.1").0, -90);
    assert_eq!(refused("/H/r/H/empty.example/S/3200", "10.0.0.1").0, -90);
    assert_eq!(
        refused("/H/r/H/10.0.0.5/S/nosuchservice", "10.0.0.1").0,
        -91
    );
    // SAP's order: the host first (an unknown host is -90 whatever the service).
    let (rc, _) = refused("/H/r/H/nowhere.example/S/nosuchservice", "10.0.0.1");
    assert_eq!(rc, -90);
    // exclusive = yes: said, and the table's verdict still given.
    let mut q = question("10.0.0.1", "/H/r/H/10.0.0.5/S/3200");
    q.exclusive = true;
    let e = ask(text, &q);
    assert_eq!(e.verdict, Verdict::Permit { line: 2 });
    let said = e
        .header
        .iter()
        .any(|h| h.contains("registered 10.0.0.5/3200"));
    assert!(said, "{:?}", e.header);
    let (rc, why) = refused("/H/r/H/127.0.0.1/S/3299", "10.0.0.1");
    assert_eq!((rc, why.as_str()), (-94, "route to the router itself"));
    let (rc, why) = refused("/H/r/H/10.0.0.5/S/3200", "10.0.0.9");
    assert_eq!(rc, -104);
    assert!(why.contains("KT line 1"), "{why}");
    let (rc, why) = refused("/H/r/H/10.0.0.9/S/3200", "10.0.0.1");
    assert_eq!(rc, -104);
    assert!(why.contains("without -K"), "{why}");
    let mut q = question("10.0.0.1", "/H/r/H/10.0.0.9/S/3200");
    q.snc = true;
    let e = ask(text, &q);
    assert_eq!(e.verdict, Verdict::Permit { line: 2 });
    assert!(
        e.decider_note.contains("TLS with peer name p:cn=A"),
        "{}",
        e.decider_note
    );
}

const HOSTS: &[&str] = &[
    "*",
    "10.0.0.1",
    "10.0.0.0/30",
    "10.0.*.*",
    "0.0.0.0/0",
    "10.0.0.000000x1",
];
const SERVICES: &[&str] = &["*", "3200", "3200.3201", "3201.3299", "22"];
const ACTIONS: &[&str] = &["P", "S", "D", "P0,0", "P*,0", "P0,*", "KP", "KS", "KD"];
const ADDRS: &[&str] = &["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.1.1", "192.0.2.1"];
const PORTS: &[u16] = &[22, 3200, 3201, 3250];

fn table_text() -> impl Strategy<Value = String> {
    let line = (
        0..ACTIONS.len(),
        0..HOSTS.len(),
        0..HOSTS.len(),
        0..SERVICES.len(),
        any::<bool>(),
    )
        .prop_map(|(a, s, d, sv, pw)| {
            let source = if ACTIONS[a].starts_with('K') {
                "*"
            } else {
                HOSTS[s]
            };
            let pw = if pw { " pw" } else { "" };
            format!("{} {source} {} {}{pw}", ACTIONS[a], HOSTS[d], SERVICES[sv])
        });
    proptest::collection::vec(line, 0..7).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// --explain's verdict is `decide`'s for a query built independently from the route.
    #[test]
    fn explain_agrees_with_decide(
        text in table_text(),
        source in 0..ADDRS.len(),
        dest in 0..ADDRS.len(),
        port in 0..PORTS.len(),
        before in 0usize..3,
        after in 0usize..3,
        raw: bool,
        password: bool,
        snc: bool,
    ) {
        // Routers up to this one (the last of them carries the password for the hop), the
        // next hop, then the routers behind it.
        let hop = before + 1;
        let mut route = String::new();
        for i in 0..hop {
            route.push_str(&format!("/H/r{i}"));
        }
        if password {
            route.push_str("/W/pw");
        }
        route.push_str(&format!("/H/{}/S/{}", ADDRS[dest], PORTS[port]));
        for i in 0..after {
            route.push_str(&format!("/H/s{i}"));
        }
        let q = Question {
            source: ADDRS[source].parse().unwrap(),
            route,
            snc_name: snc.then(|| "p:CN=A".to_string()),
            raw,
            hop,
            snc: true,
            own_ports: vec![3299],
            exclusive: false,
        };
        let t = load(&text);
        let src = Source { path: Path::new("t"), text: &text };
        let e = explain(&t, src, &Services::builtin_only(), &lookup, &q).unwrap();
        let passwords: &[&str] = if password { &["pw"] } else { &[] };
        let independent = RouteQuery {
            source: q.source,
            snc_name: q.snc_name.as_deref(),
            destination: ADDRS[dest].parse().unwrap(),
            port: PORTS[port],
            passwords,
            raw,
            routers_before: before,
            routers_after: after,
        };
        let expected = t.decide(&independent);
        prop_assert_eq!(e.decision, Some(expected));
        let verdict = match expected {
            Decision::Permit { line } => Verdict::Permit { line },
            Decision::Deny { line, reason } => Verdict::Deny { line, reason },
        };
        prop_assert_eq!(e.verdict, verdict);
    }
}
