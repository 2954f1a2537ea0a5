//! First-match decisions: order, no fall-through, hop limits, passwords, S and raw mode,
//! SAP's native-`*` rule, K* lines, KT targets.

use super::*;
use crate::routtab::{RouteQuery, SncName};

#[test]
fn empty_table_denies_everything() {
    assert_eq!(
        table("").decide(&query("10.0.0.1", "10.0.0.2", 3200)),
        NO_MATCH
    );
}

#[test]
fn first_match_wins() {
    let t = table("D host1 host2 serviceX\nP * * serviceX\n");
    assert_eq!(
        t.decide(&query("10.0.0.1", "10.0.0.2", 4444)),
        deny(1, DenyReason::DenyLine)
    );
    assert_eq!(t.decide(&query("10.0.0.3", "10.0.0.2", 4444)), permit(2));
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.3", 4444)), permit(2));
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.2", 4445)), NO_MATCH);
}

#[test]
fn permit_before_deny() {
    let t = table("P 10.0.0.1 * 3200\nD * * *\nP * * *\n");
    assert_eq!(t.decide(&query("10.0.0.1", "1.1.1.1", 3200)), permit(1));
    assert_eq!(
        t.decide(&query("10.0.0.1", "1.1.1.1", 3201)),
        deny(2, DenyReason::DenyLine)
    );
}

#[test]
fn all_three_keys_must_match() {
    let t = table("P 10.0.0.1 10.0.0.2 3200\n");
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.2", 3200)), permit(1));
    assert_eq!(t.decide(&query("10.0.0.9", "10.0.0.2", 3200)), NO_MATCH);
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.9", 3200)), NO_MATCH);
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.2", 3201)), NO_MATCH);
}

#[test]
fn mapped_peers_are_matched_as_ipv4() {
    let t = table("P 10.0.0.0/8 192.168.1.1 3200\n");
    assert_eq!(
        t.decide(&query("::ffff:10.9.8.7", "::ffff:192.168.1.1", 3200)),
        permit(1)
    );
}

#[test]
fn hop_limits_are_conditions_without_fall_through() {
    let t = table("P0,1 * * 3299\nP * * 3299\n");
    let mut q = query("10.0.0.1", "10.0.0.2", 3299);
    assert_eq!(t.decide(&q), permit(1));
    q.routers_after = 1;
    assert_eq!(t.decide(&q), permit(1));
    q.routers_after = 2;
    assert_eq!(t.decide(&q), deny(1, DenyReason::HopLimit));
    q.routers_after = 0;
    q.routers_before = 1;
    assert_eq!(t.decide(&q), deny(1, DenyReason::HopLimit));
}

#[test]
fn star_hop_limit_is_unlimited() {
    let t = table("P*,0 * * *\nS*,* * * *\n");
    let mut q = query("10.0.0.1", "10.0.0.2", 3200);
    q.routers_before = 100_000;
    assert_eq!(t.decide(&q), permit(1));
    q.routers_after = 1;
    assert_eq!(t.decide(&q), deny(1, DenyReason::HopLimit));
    let t = table("S*,* * * *\n");
    q.routers_after = 300;
    assert_eq!(t.decide(&q), permit(1));
    let t = table("P254,254 * * *\n");
    q.routers_before = 254;
    q.routers_after = 254;
    assert_eq!(t.decide(&q), permit(1));
    q.routers_after = 255;
    assert_eq!(t.decide(&q), deny(1, DenyReason::HopLimit));
}

#[test]
fn deny_lines_ignore_hops_and_passwords() {
    let t = table("D * * * pw\n");
    let q = RouteQuery {
        passwords: &["pw"],
        ..query("10.0.0.1", "10.0.0.2", 3200)
    };
    assert_eq!(t.decide(&q), deny(1, DenyReason::DenyLine));
}

#[test]
fn passwords() {
    let t = table("P * * 3200 secret\nP * * * \n");
    let q = query("10.0.0.1", "10.0.0.2", 3200);
    assert_eq!(t.decide(&q), deny(1, DenyReason::Password));
    for offered in [
        &["secret"][..],
        &["", "secret"],
        &["secret", "other"],
        &["x", "y", "secret"],
    ] {
        let q = RouteQuery {
            passwords: offered,
            ..q.clone()
        };
        assert_eq!(t.decide(&q), permit(1), "{offered:?}");
    }
    for offered in [
        &["Secret"][..],
        &["secret "],
        &["secre"],
        &["secrett"],
        &[""],
        &["secret\0"],
    ] {
        let q = RouteQuery {
            passwords: offered,
            ..q.clone()
        };
        assert_eq!(t.decide(&q), deny(1, DenyReason::Password), "{offered:?}");
    }
    let long = "secret".repeat(100);
    let q2 = RouteQuery {
        passwords: &[long.as_str()],
        ..q.clone()
    };
    assert_eq!(t.decide(&q2), deny(1, DenyReason::Password));
    // Lines without a password ignore what the route offers.
    let q3 = RouteQuery {
        passwords: &["anything"],
        ..query("10.0.0.1", "10.0.0.2", 3201)
    };
    assert_eq!(t.decide(&q3), permit(2));
}

#[test]
fn longest_password_compares_fully() {
    let pw = "p".repeat(255);
    let t = table(&format!("P * * * {pw}\n"));
    let mut other = "p".repeat(254);
    other.push('q');
    let longer = format!("{pw}p");
    for (offered, expect) in [
        (pw.as_str(), permit(1)),
        (other.as_str(), deny(1, DenyReason::Password)),
        (longer.as_str(), deny(1, DenyReason::Password)),
    ] {
        let list = [offered];
        let q = RouteQuery {
            passwords: &list,
            ..query("10.0.0.1", "10.0.0.2", 1)
        };
        assert_eq!(t.decide(&q), expect);
    }
}

#[test]
fn non_ascii_passwords() {
    let t = table("P * * * pässwört\n");
    let q = RouteQuery {
        passwords: &["pässwört"],
        ..query("10.0.0.1", "10.0.0.2", 1)
    };
    assert_eq!(t.decide(&q), permit(1));
}

#[test]
fn secure_lines_refuse_native_mode() {
    let t = table("S * * 3200\nP * * 3200\n");
    let mut q = query("10.0.0.1", "10.0.0.2", 3200);
    assert_eq!(t.decide(&q), permit(1));
    q.raw = true;
    assert_eq!(t.decide(&q), deny(1, DenyReason::NativeNotAllowed));
    q.routers_after = 1;
    assert_eq!(t.decide(&q), deny(1, DenyReason::NativeNotAllowed));
    let t = table("P * * 3200\n");
    assert_eq!(t.decide(&q), permit(1));
}

#[test]
fn check_order_hops_then_password_then_talk_mode() {
    let t = table("S0,0 * * 3200 pw\n");
    let q = RouteQuery {
        raw: true,
        routers_after: 1,
        ..query("10.0.0.1", "10.0.0.2", 3200)
    };
    assert_eq!(t.decide(&q), deny(1, DenyReason::HopLimit));
    let q = RouteQuery {
        routers_after: 0,
        ..q
    };
    assert_eq!(t.decide(&q), deny(1, DenyReason::Password));
    let q = RouteQuery {
        passwords: &["pw"],
        ..q
    };
    assert_eq!(t.decide(&q), deny(1, DenyReason::NativeNotAllowed));
}

#[test]
fn native_targets_on_the_last_router_need_an_explicit_port() {
    // H34: `P * host *` must not let a raw route reach port 22.
    let t = table("P * 10.0.0.2 *\n");
    let raw_last = RouteQuery {
        raw: true,
        ..query("10.0.0.1", "10.0.0.2", 22)
    };
    assert_eq!(t.decide(&raw_last), NO_MATCH);
    // Not the last router: the next router checks the target.
    let raw_middle = RouteQuery {
        routers_after: 1,
        ..raw_last.clone()
    };
    assert_eq!(t.decide(&raw_middle), permit(1));
    // NI talk mode: `*` matches.
    let ni = RouteQuery {
        raw: false,
        ..raw_last.clone()
    };
    assert_eq!(t.decide(&ni), permit(1));
    // The scan continues to a line that names the port.
    let t = table("P * 10.0.0.2 *\nP * 10.0.0.2 22\n");
    assert_eq!(t.decide(&raw_last), permit(2));
    let t = table("P * 10.0.0.2 *\nP * 10.0.0.2 1.1024\n");
    assert_eq!(t.decide(&raw_last), permit(2));
    // A secure `*` line is skipped the same way.
    let t = table("S * * *\nP * * 22\n");
    assert_eq!(t.decide(&raw_last), permit(2));
}

#[test]
fn deny_lines_with_a_star_service_still_deny_native_routes() {
    let t = table("D 10.0.0.1 * *\nP * * 22\n");
    let raw_last = RouteQuery {
        raw: true,
        ..query("10.0.0.1", "10.0.0.2", 22)
    };
    assert_eq!(t.decide(&raw_last), deny(1, DenyReason::DenyLine));
    let t = table("KD * * *\nP * * 22\n");
    let snc = RouteQuery {
        snc_name: Some("p:CN=x"),
        ..raw_last
    };
    assert_eq!(t.decide(&snc), deny(1, DenyReason::DenyLine));
}

#[test]
fn k_lines_need_an_snc_name() {
    let t = table("KP p:CN=alice * 3200\nKD * * 3201\nKS * * 3202\n");
    let plain = query("10.0.0.1", "10.0.0.2", 3200);
    assert_eq!(t.decide(&plain), NO_MATCH);
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.2", 3201)), NO_MATCH);
    let alice = RouteQuery {
        snc_name: Some("p:CN=alice"),
        ..plain.clone()
    };
    assert_eq!(t.decide(&alice), permit(1));
    let alice_no_prefix = RouteQuery {
        snc_name: Some("CN = alice"),
        ..plain.clone()
    };
    assert_eq!(t.decide(&alice_no_prefix), permit(1));
    let bob = RouteQuery {
        snc_name: Some("p:CN=bob"),
        ..plain.clone()
    };
    assert_eq!(t.decide(&bob), NO_MATCH);
    assert_eq!(
        t.decide(&RouteQuery {
            port: 3201,
            ..bob.clone()
        }),
        deny(2, DenyReason::DenyLine)
    );
    assert_eq!(
        t.decide(&RouteQuery {
            port: 3202,
            ..bob.clone()
        }),
        permit(3)
    );
    let raw = RouteQuery {
        port: 3202,
        raw: true,
        ..bob
    };
    assert_eq!(t.decide(&raw), deny(3, DenyReason::NativeNotAllowed));
}

#[test]
fn host_lines_also_apply_to_snc_connections() {
    let t = table("P 10.0.0.1 * 3200\n");
    let q = RouteQuery {
        snc_name: Some("p:CN=x"),
        ..query("10.0.0.1", "10.0.0.2", 3200)
    };
    assert_eq!(t.decide(&q), permit(1));
}

#[test]
fn kt_lines_never_decide() {
    let t = table("KT * * *\nKT p:CN=x * *\n");
    let q = RouteQuery {
        snc_name: Some("p:CN=x"),
        ..query("10.0.0.1", "10.0.0.2", 3200)
    };
    assert_eq!(t.decide(&q), NO_MATCH);
    let t = table("KT p:CN=x * *\nP * * 3200\n");
    assert_eq!(t.decide(&q), permit(2));
}

#[test]
fn snc_target_is_the_first_matching_kt_line() {
    let t = table(
        "P * * *\nKT \"p:CN=r1, O=x\" 10.0.0.2 3299\nKT p:CN=any 10.0.0.0/24 *\nKT * * 4444\n",
    );
    assert_eq!(
        t.snc_target(ip("10.0.0.2"), 3299),
        Some(&SncName::Name("p:cn=r1,o=x".into()))
    );
    assert_eq!(
        t.snc_target(ip("10.0.0.2"), 3200),
        Some(&SncName::Name("p:cn=any".into()))
    );
    assert_eq!(
        t.snc_target(ip("::ffff:10.0.0.9"), 1),
        Some(&SncName::Name("p:cn=any".into()))
    );
    assert_eq!(t.snc_target(ip("10.0.1.1"), 4444), Some(&SncName::Any));
    assert_eq!(t.snc_target(ip("10.0.1.1"), 3299), None);
    assert_eq!(table("KP p:CN=x * *\n").snc_target(ip("1.1.1.1"), 1), None);
}

#[test]
fn snc_sources_are_the_kt_lines_naming_the_peer_host() {
    let t = table("P * * *\nKT p:CN=r1 10.0.0.2 3299\nKT p:CN=r2 10.0.0.0/24 *\nKP p:CN=x * *\n");
    let names = |addr: &str| -> Vec<(usize, String)> {
        t.snc_sources(ip(addr))
            .into_iter()
            .map(|(line, name)| (line, name.to_string()))
            .collect()
    };
    // The service of a KT line concerns the outbound hop; inbound, the host decides.
    assert_eq!(
        names("10.0.0.2"),
        vec![(2, "p:cn=r1".to_string()), (3, "p:cn=r2".to_string())]
    );
    assert_eq!(names("::ffff:10.0.0.7"), vec![(3, "p:cn=r2".to_string())]);
    assert!(names("10.0.1.1").is_empty());
}
