//! The rules one by one: each fires on the table it is about and stays quiet on its
//! near miss.

use std::path::Path;

use super::*;
use crate::routtab::tests::table;

fn run(text: &str, snc: bool) -> Vec<Finding> {
    let t = table(text);
    let src = Source {
        path: Path::new("t"),
        text,
    };
    check_table(
        &t,
        src,
        &CheckContext {
            snc,
            own_ports: vec![3299],
        },
    )
}

/// (line, rule id) of every finding.
fn ids(text: &str, snc: bool) -> Vec<(usize, &'static str)> {
    run(text, snc)
        .iter()
        .map(|f| (f.line, f.rule.id()))
        .collect()
}

#[test]
fn open_route_is_an_error_in_every_spelling() {
    for line in [
        "P * * *",
        "S * * * *",
        "P *.*.*.* * *",
        "P 0.0.0.0/0 0.0.0.0/0 *",
        "P*,0 * * *",
    ] {
        let f = run(line, false);
        assert!(
            f.iter()
                .any(|f| f.rule == Rule::OpenRoute && f.severity == Severity::Error),
            "{line}: {f:?}"
        );
        assert_eq!(exit_code(&f), 2, "{line}");
    }
    assert!(ids("D * * *", false).is_empty());
    assert!(ids("P * * 3200", false).is_empty());
    assert!(ids("P 10.0.0.1 * *", false)
        .iter()
        .all(|(_, r)| *r != "open-route"));
}

#[test]
fn wildcard_sources_to_sensitive_ports() {
    for (line, hit) in [
        ("P * 10.0.0.5 3299", true),
        ("P * 10.0.0.5 sapgw00", true),
        ("S * 10.0.0.5 3600", true),
        ("P * 10.0.0.5 4800.4801", true),
        ("P * 10.0.0.5 3901", true),
        ("P * 10.0.0.5 *", true),
        ("P * 10.0.0.5 3200.3298", false),
        ("P*,0 * 10.0.0.5 3299", false),
        ("P0,* * 10.0.0.5 3300", false),
        ("P 10.0.0.0/8 10.0.0.5 3299", false),
        ("D * 10.0.0.5 3299", false),
    ] {
        let found = ids(line, false).contains(&(1, "wildcard-to-sensitive-port"));
        assert_eq!(found, hit, "{line}");
    }
    // The router's own -S port counts as a SAProuter port.
    let t = table("P * 10.0.0.5 4001");
    let src = Source {
        path: Path::new("t"),
        text: "P * 10.0.0.5 4001",
    };
    let ctx = CheckContext {
        snc: false,
        own_ports: vec![4001],
    };
    assert!(check_table(&t, src, &ctx)
        .iter()
        .any(|f| f.message.contains("own port")));
}

#[test]
fn shadowed_lines_name_the_earlier_line() {
    let f = run(
        "P 10.0.0.0/8 * 3200.3299\nP 10.1.0.0/16 10.0.0.5 3201 pw\n",
        false,
    );
    let s = f
        .iter()
        .find(|f| f.rule == Rule::Shadowed)
        .expect("shadowed");
    assert_eq!((s.line, s.related), (2, Some(1)));
    // Conditions of the earlier line are named: they refuse, they do not fall through.
    let f = run("P0,0 * 10.0.0.5 3200\nP * 10.0.0.5 3200\n", false);
    let s = f
        .iter()
        .find(|f| f.rule == Rule::Shadowed)
        .expect("shadowed");
    assert!(s.message.contains("does not fall through"), "{}", s.message);
}

#[test]
fn shadowing_is_claimed_only_when_certain() {
    for text in [
        // Wider later line.
        "P 10.1.0.0/16 * 3200\nP 10.0.0.0/8 * 3200\n",
        // Overlap, not subset.
        "P * * 3200.3210\nP * * 3205.3220\n",
        // Two lines together cover it: not recognised (conservative).
        "P 10.0.0.0/9 * *\nP 10.128.0.0/9 * *\nD 10.0.0.0/8 * *\n",
        // `*` service does not match native routes on the last router; a listed port does.
        "P * 10.0.0.5 *\nP * 10.0.0.5 3200\n",
        "P * * *\nP * 10.0.0.5 3200\n",
        // ... and a deny line with `*` keeps matching them.
        "P * 10.0.0.5 *\nD * 10.0.0.5 *\n",
        // K* lines never match plaintext connections that a P line matches.
        "KP * * *\nP * * 3200\n",
        // A P line with a narrow source does not cover a K* line (its peer may come from anywhere).
        "P 10.0.0.1 * *\nKP * * 3200\n",
        // KT lines never decide.
        "KT \"p:CN=A\" * *\nP * * 3200\n",
        // Different SNC names.
        "KP \"p:CN=A\" * *\nKP \"p:CN=B\" * *\n",
        // IPv4 pattern does not cover IPv6.
        "P 0.0.0.0/0 * 3200\nP ::1 * 3200\n",
    ] {
        assert!(
            !ids(text, true).iter().any(|(_, r)| *r == "shadowed-line"),
            "{text}"
        );
    }
    for text in [
        "P * * 3200.3299\nP * 10.0.0.5 3200\n",
        "D * 10.0.0.5 *\nP * 10.0.0.5 3200\n",
        "P * 10.0.0.5 *\nP * 10.0.0.5 *\n",
        "P * * *\nKP * 10.0.0.5 *\n",
        "KP * * *\nKS \"p:CN=A\" 10.0.0.5 *\n",
        "P 10.2.00001xxx.* * *\nP 10.2.8.0/30 * *\n",
        "S host1 * 3200\nD host1 * 3200\n",
    ] {
        assert!(
            ids(text, true).contains(&(2, "shadowed-line")),
            "{text}: {:?}",
            ids(text, true)
        );
    }
}

#[test]
fn host_names_that_do_not_resolve_or_resolve_to_several() {
    let f = run("P nosuchname.invalid * 3200\n", false);
    let u = f
        .iter()
        .find(|f| f.rule == Rule::UnresolvedHost)
        .expect("unresolved");
    assert_eq!(u.line, 1);
    assert!(u.message.contains("nosuchname.invalid"), "{}", u.message);
    // A line that matches nothing is not also called shadowed.
    assert!(!ids("P * * *\nP nosuchname.invalid * 3200\n", false).contains(&(2, "shadowed-line")));
    let f = run("P 10.0.0.1 multi 3200\n", false);
    let m = f
        .iter()
        .find(|f| f.rule == Rule::MultiAddressHost)
        .expect("multi");
    assert_eq!(m.severity, Severity::Warning);
    assert!(
        m.message.contains("'multi' resolves to 3 addresses"),
        "{}",
        m.message
    );
    // localhost (127.0.0.1 and ::1) is only a note, and does not fail a check.
    let f = run("P localhost localhost 3298\n", false);
    assert!(f.iter().all(|f| f.severity == Severity::Note), "{f:?}");
    assert_eq!(exit_code(&f), 0);
}

#[test]
fn passwords_are_reported_but_never_printed() {
    let f = run("P 10.0.0.1 10.0.0.2 3200 s3cr3t\n", false);
    let p = f
        .iter()
        .find(|f| f.rule == Rule::Password)
        .expect("password");
    assert!(p.message.contains("-K"), "{}", p.message);
    assert!(f.iter().all(|f| !f.to_string().contains("s3cr3t")), "{f:?}");
    let f = run("P 10.0.0.1 10.0.0.2 3200 s3cr3t\n", true);
    assert!(f.iter().any(|f| f.message.contains("KP or KS line naming")));
    assert!(ids("P 10.0.0.1 10.0.0.2 3200 *\n", false).is_empty());
}

#[test]
fn snc_lines_without_k() {
    let text =
        "KT \"p:CN=A\" 10.0.0.5 3200\nKP * 10.0.0.6 3200\nKS * 10.0.0.6 3201\nKD * 10.0.0.6 *\n";
    let found = ids(text, false);
    for line in 1..=4 {
        assert!(
            found.contains(&(line, "snc-line-without-k")),
            "{line}: {found:?}"
        );
    }
    assert!(!ids(text, true)
        .iter()
        .any(|(_, r)| *r == "snc-line-without-k"));
}

#[test]
fn plaintext_routes_to_kt_destinations() {
    let text = "KT \"p:CN=A\" 10.0.0.5 3200\nP 10.1.0.0/16 10.0.0.0/24 3200.3210\nP 10.1.0.0/16 10.0.0.6 3200\nKP * 10.0.0.5 3200\n";
    let f = run(text, true);
    let p: Vec<_> = f.iter().filter(|f| f.rule == Rule::PlaintextToKt).collect();
    assert_eq!(p.len(), 1, "{f:?}");
    assert_eq!((p[0].line, p[0].related), (2, Some(1)));
}

#[test]
fn exit_codes_and_ordering() {
    assert_eq!(exit_code(&[]), 0);
    let f = run("P 10.0.0.1 10.0.0.2 3200 pw\n", false);
    assert_eq!(exit_code(&f), 1);
    let f = run("P 10.0.0.1 10.0.0.2 3200 pw\nP * * *\n", false);
    assert_eq!(exit_code(&f), 2);
    assert!(f.windows(2).all(|w| w[0].line <= w[1].line));
    assert_eq!(counts(&f).0, 1);
}

#[test]
fn quoting_masks_passwords_and_keeps_quoted_names() {
    let text = "P  *\t10.0.0.1   3200   secret  # note\nKP \"p:CN=A, O=B\" * 3200\n";
    let src = Source {
        path: Path::new("t"),
        text,
    };
    assert_eq!(src.quote(1), "'P * 10.0.0.1 3200 <password>'");
    assert_eq!(src.quote(2), "'KP \"p:CN=A, O=B\" * 3200'");
    assert_eq!(src.field(2, 1).as_deref(), Some("\"p:CN=A, O=B\""));
}

mod ri {
    use super::*;
    use crate::ri::params::{parse, RiParams};
    use crate::services::Services;

    fn ri_ids(cf: &str, routtab: &str, snc: bool) -> Vec<(String, usize, &'static str)> {
        let RiParams::Client(p) = parse(cf, Path::new("cf"), &Services::builtin_only()).unwrap()
        else {
            panic!("not a client file")
        };
        let t = table(routtab);
        let src = Source {
            path: Path::new("t"),
            text: routtab,
        };
        let ctx = CheckContext {
            snc,
            own_ports: vec![3299],
        };
        check_ri_client(&p, Path::new("cf"), cf, &t, src, &ctx)
            .iter()
            .map(|f| (f.file.display().to_string(), f.line, f.rule.id()))
            .collect()
    }

    #[test]
    fn no_ace_and_unvetted_servers() {
        let found = ri_ids(
            "# dmz\nclient = 1\nclient_service = 5001\nmax_servers = 2\n",
            "P * 10.0.0.2 5002\n",
            false,
        );
        assert!(found.contains(&("cf".into(), 2, "ri-no-ace")), "{found:?}");
        assert!(
            found.contains(&("cf".into(), 4, "ri-max-servers-unvetted")),
            "{found:?}"
        );
        // A narrow ACE list vets them.
        let found = ri_ids(
            "client = 1\nclient_service = 5001\nmax_servers = 2\nACE = P 10.0.0.2/31\nACE = D 0.0.0.0/0\n",
            "P * 10.0.0.2 5002\n",
            false,
        );
        assert!(found.is_empty(), "{found:?}");
        // An ACE list that permits everyone does not.
        let found = ri_ids(
            "client = 1\nclient_service = 5001\nmax_servers = 3\nACE = P 0.0.0.0/0\n",
            "P * 10.0.0.2 5002\n",
            false,
        );
        assert_eq!(found, vec![("cf".into(), 3, "ri-max-servers-unvetted")]);
        // -K vets them (TLS with the CA's certificates).
        let found = ri_ids(
            "client = 1\nclient_service = 5001\nmax_servers = 3\n",
            "P * 10.0.0.2 5002\n",
            true,
        );
        assert_eq!(found, vec![("cf".into(), 1, "ri-no-ace")]);
    }

    #[test]
    fn exclusive_with_a_table_permitting_more_than_pseudo_ports() {
        let cf = "client = 1\nclient_service = 5001\nACE = P 10.0.0.2/32\n";
        let found = ri_ids(
            cf,
            "P * 10.0.0.2 5002\nP 10.9.0.0/16 * *\nS * 10.0.0.3 3200.3201\nD * * *\n",
            false,
        );
        assert_eq!(
            found,
            vec![
                ("t".into(), 2, "ri-exclusive-table"),
                ("t".into(), 3, "ri-exclusive-table")
            ]
        );
        // max_servers = 2 allows two pseudo ports; exclusive = no allows anything.
        let found = ri_ids(
            &format!("{cf}max_servers = 2\n"),
            "S * 10.0.0.3 3200.3201\n",
            false,
        );
        assert!(found.is_empty(), "{found:?}");
        let found = ri_ids(
            &format!("{cf}exclusive = no\n"),
            "P 10.9.0.0/16 * *\n",
            false,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}

mod exact_sets {
    use proptest::prelude::*;

    use crate::routtab::check::sets::{host_subset, hosts_intersect};
    use crate::routtab::tests::{ip, table};
    use crate::routtab::HostPattern;

    fn pattern(bits: &str) -> HostPattern {
        table(&format!("P * 10.0.0.{bits} *"))
            .entries
            .remove(0)
            .destination
    }

    proptest! {
        /// For one-mask patterns over the last octet, subset and intersection are exact:
        /// checked against every address of 10.0.0.0/24.
        #[test]
        fn subset_and_intersection_agree_with_every_address(a in "[01x]{8}", b in "[01x]{8}") {
            let (pa, pb) = (pattern(&a), pattern(&b));
            let addrs: Vec<_> = (0..=255u8).map(|n| ip(&format!("10.0.0.{n}"))).collect();
            let subset = addrs.iter().all(|x| !pa.matches(*x) || pb.matches(*x));
            let meet = addrs.iter().any(|x| pa.matches(*x) && pb.matches(*x));
            prop_assert_eq!(host_subset(&pa, &pb), subset);
            prop_assert_eq!(hosts_intersect(&pa, &pb), meet);
        }
    }
}
