//! Properties of the traced decision and of the checker's shadowing claims, on random
//! tables built from a small pool of overlapping patterns (so lines often cover, overlap
//! or miss each other) and random queries.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::routtab::check::{check_table, CheckContext, Rule, Source};

const ACTIONS: &[&str] = &[
    "P", "S", "D", "P0,1", "P*,0", "S0,*", "KP", "KS", "KD", "KT",
];
const HOSTS: &[&str] = &[
    "*",
    "10.0.0.1",
    "10.0.0.0/30",
    "10.0.*.*",
    "10.0.0.000000xx",
    "10.0.0.0/31",
    "0.0.0.0/0",
    "::1",
    "host2",
];
const NAMES: &[&str] = &["*", "\"p:CN=A\"", "\"p:CN=B\""];
const SERVICES: &[&str] = &["*", "3200", "3200.3201", "3201.3299", "3299", "22"];

fn line() -> impl Strategy<Value = String> {
    (
        0..ACTIONS.len(),
        0..HOSTS.len(),
        0..NAMES.len(),
        0..HOSTS.len(),
        0..SERVICES.len(),
        any::<bool>(),
    )
        .prop_map(|(a, s, n, d, sv, pw)| {
            let action = ACTIONS[a];
            let source = if action.starts_with('K') {
                NAMES[n]
            } else {
                HOSTS[s]
            };
            let password = if pw && action != "KT" { " pw" } else { "" };
            format!("{action} {source} {} {}{password}", HOSTS[d], SERVICES[sv])
        })
}

fn table_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(line(), 0..8).prop_map(|lines| lines.join("\n"))
}

const ADDRS: &[&str] = &[
    "10.0.0.0",
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.1.1",
    "192.0.2.1",
    "::1",
];
const PORTS: &[u16] = &[22, 3200, 3201, 3250, 3299];
const PEERS: &[Option<&str>] = &[None, Some("p:CN=A"), Some("p:CN=B")];

#[derive(Debug, Clone)]
struct Q {
    source: usize,
    destination: usize,
    port: usize,
    peer: usize,
    password: bool,
    raw: bool,
    before: usize,
    after: usize,
}

fn q() -> impl Strategy<Value = Q> {
    (
        0..ADDRS.len(),
        0..ADDRS.len(),
        0..PORTS.len(),
        0..PEERS.len(),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        0usize..3,
    )
        .prop_map(
            |(source, destination, port, peer, password, raw, before, after)| Q {
                source,
                destination,
                port,
                peer,
                password,
                raw,
                before,
                after,
            },
        )
}

const PW: &[&str] = &["pw"];

fn route_query(q: &Q) -> RouteQuery<'static> {
    RouteQuery {
        source: ip(ADDRS[q.source]),
        snc_name: PEERS[q.peer],
        destination: ip(ADDRS[q.destination]),
        port: PORTS[q.port],
        passwords: if q.password { PW } else { &[] },
        raw: q.raw,
        routers_before: q.before,
        routers_after: q.after,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn traced_decision_is_the_decision(text in table_text(), queries in proptest::collection::vec(q(), 1..8)) {
        let t = table(&text);
        for q in &queries {
            let query = route_query(q);
            let trace = t.decide_traced(&query);
            prop_assert_eq!(trace.decision, t.decide(&query));
            let decider = match trace.decision {
                Decision::Permit { line } => Some(line),
                Decision::Deny { line, .. } => line,
            };
            // Skipped: exactly the lines before the decider (all when none decided), none
            // of which matches, each with the reasons its own mismatch gives.
            let before: Vec<&crate::routtab::Entry> = t
                .entries
                .iter()
                .take_while(|e| Some(e.line) != decider)
                .collect();
            prop_assert_eq!(trace.skipped.len(), before.len());
            for (s, e) in trace.skipped.iter().zip(before) {
                prop_assert_eq!(s.line, e.line);
                prop_assert!(!s.mismatch.is_match());
                prop_assert_eq!(s.mismatch, e.mismatch(&query));
            }
        }
    }

    #[test]
    fn shadowed_lines_never_decide(text in table_text(), queries in proptest::collection::vec(q(), 1..16)) {
        let t = table(&text);
        let src = Source { path: Path::new("t"), text: &text };
        let findings = check_table(&t, src, &CheckContext { snc: true, own_ports: vec![3299] });
        for f in findings.iter().filter(|f| f.rule == Rule::Shadowed) {
            let shadowed = t.entries.iter().find(|e| e.line == f.line).unwrap();
            let earlier = t.entries.iter().find(|e| Some(e.line) == f.related).unwrap();
            for q in &queries {
                let query = route_query(q);
                if shadowed.mismatch(&query).is_match() {
                    prop_assert!(earlier.mismatch(&query).is_match(), "{} {:?}: line {} matches, line {} not", text, q, f.line, earlier.line);
                }
                let decider = match t.decide(&query) {
                    Decision::Permit { line } => Some(line),
                    Decision::Deny { line, .. } => line,
                };
                prop_assert_ne!(decider, Some(f.line));
            }
        }
    }
}

/// The generator makes tables with shadowed lines often enough for the property to bite.
#[test]
fn random_tables_do_have_shadowed_lines() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut shadowed = 0;
    for _ in 0..200 {
        let text = table_text().new_tree(&mut runner).unwrap().current();
        let t = table(&text);
        let src = Source {
            path: Path::new("t"),
            text: &text,
        };
        let ctx = CheckContext {
            snc: true,
            own_ports: vec![3299],
        };
        shadowed += check_table(&t, src, &ctx)
            .iter()
            .filter(|f| f.rule == Rule::Shadowed)
            .count();
    }
    assert!(
        shadowed >= 20,
        "only {shadowed} shadowed lines in 200 tables"
    );
}
