//! SAP's documented examples (docs/configuration.md §1.9) and the reverse-invoke tables
//! (docs/reverse-invoke.md, routtab-samples/reverse-invoke/README.md), decided line by line.
//! FakeResolver: hostN = 10.0.0.N, serviceX = 4444, telnet = 23, lan.example = 192.168.50.2,
//! backend.example = 192.168.50.10.

use super::*;
use crate::routtab::{RouteQuery, SncName};

const SAP_HELP: &str = "\
D  host1  host2  serviceX
D  host3
P  *      *      3200.3298
P  155.56.*.*  155.56.*.*
P  155.57.1011xxxx.*
P  host4  host5  *   pass
S  host6
P  host7  host8  telnet
P*,0 *    *      *   gui
";

#[test]
fn sap_help_examples_parse() {
    let t = table(SAP_HELP);
    assert_eq!(t.entries.len(), 9);
}

#[test]
fn sap_help_deny_lines() {
    let t = table(SAP_HELP);
    assert_eq!(
        t.decide(&query("10.0.0.1", "10.0.0.2", 4444)),
        deny(1, DenyReason::DenyLine)
    );
    // host1 to host2 on another service reaches the range line.
    assert_eq!(t.decide(&query("10.0.0.1", "10.0.0.2", 3200)), permit(3));
    // Everything from host3 is refused, even what line 3 would allow.
    assert_eq!(
        t.decide(&query("10.0.0.3", "10.9.9.9", 3200)),
        deny(2, DenyReason::DenyLine)
    );
    assert_eq!(
        t.decide(&query("10.0.0.3", "10.0.0.8", 23)),
        deny(2, DenyReason::DenyLine)
    );
}

#[test]
fn sap_help_range_and_patterns() {
    let t = table(SAP_HELP);
    assert_eq!(t.decide(&query("192.0.2.1", "10.9.9.9", 3298)), permit(3));
    // 3299 is outside the range: the last line wants the password 'gui'.
    assert_eq!(
        t.decide(&query("192.0.2.1", "10.9.9.9", 3299)),
        deny(9, DenyReason::Password)
    );
    assert_eq!(
        t.decide(&query("155.56.1.1", "155.56.200.2", 8080)),
        permit(4)
    );
    assert_eq!(
        t.decide(&query("155.56.1.1", "155.57.200.2", 8080)),
        deny(9, DenyReason::Password)
    );
    assert_eq!(t.decide(&query("155.57.176.0", "1.2.3.4", 80)), permit(5));
    assert_eq!(t.decide(&query("155.57.191.255", "1.2.3.4", 80)), permit(5));
    assert_eq!(
        t.decide(&query("155.57.192.0", "1.2.3.4", 80)),
        deny(9, DenyReason::Password)
    );
}

#[test]
fn sap_help_password_line() {
    let t = table(SAP_HELP);
    let q = query("10.0.0.4", "10.0.0.5", 80);
    assert_eq!(t.decide(&q), deny(6, DenyReason::Password));
    let q = RouteQuery {
        passwords: &["pass"],
        ..q
    };
    assert_eq!(t.decide(&q), permit(6));
}

#[test]
fn sap_help_secure_line() {
    let t = table(SAP_HELP);
    let ni = query("10.0.0.6", "10.9.9.9", 80);
    assert_eq!(t.decide(&ni), permit(7));
    // Raw, and more routers follow: S refuses native mode.
    let raw_middle = RouteQuery {
        raw: true,
        routers_after: 1,
        ..ni.clone()
    };
    assert_eq!(t.decide(&raw_middle), deny(7, DenyReason::NativeNotAllowed));
    // Raw on the last router: neither '*' line may authorize it.
    let raw_last = RouteQuery { raw: true, ..ni };
    assert_eq!(t.decide(&raw_last), NO_MATCH);
}

#[test]
fn sap_help_native_telnet_line() {
    let t = table(SAP_HELP);
    let telnet = RouteQuery {
        raw: true,
        ..query("10.0.0.7", "10.0.0.8", 23)
    };
    assert_eq!(t.decide(&telnet), permit(8));
}

#[test]
fn sap_help_hop_limited_line() {
    let t = table(SAP_HELP);
    let q = RouteQuery {
        passwords: &["gui"],
        ..query("192.0.2.1", "192.0.2.2", 80)
    };
    assert_eq!(t.decide(&q), permit(9));
    let q = RouteQuery {
        routers_before: 7,
        ..q
    };
    assert_eq!(t.decide(&q), permit(9));
    let q = RouteQuery {
        routers_after: 1,
        ..q
    };
    assert_eq!(t.decide(&q), deny(9, DenyReason::HopLimit));
}

const SAP_SNC: &str = "\
P  * * * pass
KT S:SR@host4 host4 3333
KT S:SR@host9 host9 *
KD S:SR@host4 host9 *
KP S:SR@host4 * * pass2
KS * host10 4444
KP * * *
";

#[test]
fn sap_snc_example() {
    let t = table(SAP_SNC);
    // The leading `P * * * pass` matches every route first.
    let q = RouteQuery {
        snc_name: Some("S:SR@host4"),
        ..query("10.0.0.4", "10.0.0.9", 1)
    };
    assert_eq!(t.decide(&q), deny(1, DenyReason::Password));
    assert_eq!(
        t.decide(&RouteQuery {
            passwords: &["pass"],
            ..q
        }),
        permit(1)
    );
    assert_eq!(
        t.snc_target(ip("10.0.0.4"), 3333),
        Some(&SncName::new("S:SR@host4"))
    );
    assert_eq!(t.snc_target(ip("10.0.0.4"), 3334), None);
    assert_eq!(
        t.snc_target(ip("10.0.0.9"), 1),
        Some(&SncName::new("S:SR@host9"))
    );
}

#[test]
fn sap_snc_example_k_lines() {
    let t = table(&SAP_SNC.replacen("P  * * * pass\n", "", 1));
    let from4 = |dst: &str, port| RouteQuery {
        snc_name: Some("S:SR@host4"),
        ..query("10.0.0.4", dst, port)
    };
    assert_eq!(
        t.decide(&from4("10.0.0.9", 1)),
        deny(3, DenyReason::DenyLine)
    );
    assert_eq!(
        t.decide(&from4("10.0.0.1", 1)),
        deny(4, DenyReason::Password)
    );
    let with_pw = RouteQuery {
        passwords: &["pass2"],
        ..from4("10.0.0.1", 1)
    };
    assert_eq!(t.decide(&with_pw), permit(4));
    let other = RouteQuery {
        snc_name: Some("p:CN=someone"),
        ..query("10.0.0.77", "10.0.0.10", 4444)
    };
    assert_eq!(t.decide(&other), permit(5));
    assert_eq!(
        t.decide(&RouteQuery {
            raw: true,
            ..other.clone()
        }),
        deny(5, DenyReason::NativeNotAllowed)
    );
    assert_eq!(
        t.decide(&RouteQuery {
            port: 4445,
            ..other.clone()
        }),
        permit(6)
    );
    // Without SNC nothing matches.
    assert_eq!(t.decide(&query("10.0.0.4", "10.0.0.10", 4444)), NO_MATCH);
}

/// SAP's RI example (docs/reverse-invoke.md, "How a route reaches the LAN"): rt1 on the RI
/// client (DMZ, 10.18.0.1), rt2 on the RI server (LAN, 10.18.0.2), user route
/// /H/10.18.0.1/S/4001/H/10.18.0.2/S/5002/H/<dest>/S/<svc>.
#[test]
fn reverse_invoke_example_tables() {
    let rt1 = table("P * 10.18.0.2 5002\n");
    let rt2 = table("P 10.18.0.1 * *\n");
    let at_client = RouteQuery {
        routers_after: 1,
        ..query("198.51.100.7", "10.18.0.2", 5002)
    };
    assert_eq!(rt1.decide(&at_client), permit(1));
    assert_eq!(
        rt1.decide(&query("198.51.100.7", "10.18.0.3", 3200)),
        NO_MATCH
    );
    let at_server = RouteQuery {
        routers_before: 1,
        ..query("10.18.0.1", "10.18.0.3", 3200)
    };
    assert_eq!(rt2.decide(&at_server), permit(1));
    assert_eq!(rt2.decide(&query("10.18.0.9", "10.18.0.3", 3200)), NO_MATCH);
}

/// The RI port forwarder (docs/reverse-invoke.md, `route`): raw HTTP to 10.18.0.3:8080 needs
/// the explicit port.
#[test]
fn reverse_invoke_port_forwarder_needs_explicit_raw_port() {
    let raw = RouteQuery {
        raw: true,
        routers_before: 1,
        ..query("10.18.0.1", "10.18.0.3", 8080)
    };
    assert_eq!(table("P 10.18.0.1 * *\n").decide(&raw), NO_MATCH);
    assert_eq!(
        table("P 10.18.0.1 * *\nP 10.18.0.1 * 8080\n").decide(&raw),
        permit(2)
    );
    assert_eq!(table("P 10.18.0.1 * 8080\n").decide(&raw), permit(1));
}

/// The DMZ/LAN scenario (routtab-samples/reverse-invoke/README.md), every field written out.
const SCENARIO_DMZ: &str = "\
# Allow outbound connections to SAProuter host2 with use of SNC
KT \"p:CN=SAPROUTER2\" lan.example 5002
P  *                  lan.example 5002
";
const SCENARIO_LAN: &str = "\
# Accept incoming connections from SAProuter1 with destination sapdp01 and 4001 on any host
KP \"p:CN=SAPROUTER1\" *     sapdp01
KP \"p:CN=SAPROUTER1\" *     4001
";

#[test]
fn scenario_dmz_table() {
    let t = table(SCENARIO_DMZ);
    let user = RouteQuery {
        routers_after: 1,
        ..query("203.0.113.5", "192.168.50.2", 5002)
    };
    assert_eq!(t.decide(&user), permit(3));
    assert_eq!(
        t.snc_target(ip("192.168.50.2"), 5002),
        Some(&SncName::new("p:CN=SAPROUTER2"))
    );
    assert_eq!(t.snc_target(ip("192.168.50.10"), 3201), None);
    // Nothing else passes the DMZ router: not the backend directly, not another port.
    assert_eq!(
        t.decide(&query("203.0.113.5", "192.168.50.10", 3201)),
        NO_MATCH
    );
    assert_eq!(
        t.decide(&query("203.0.113.5", "192.168.50.2", 3299)),
        NO_MATCH
    );
}

#[test]
fn scenario_lan_table() {
    let t = table(SCENARIO_LAN);
    let from_dmz = |port| RouteQuery {
        snc_name: Some("p:CN=SAPROUTER1"),
        routers_before: 1,
        ..query("10.10.0.1", "192.168.50.10", port)
    };
    assert_eq!(t.decide(&from_dmz(3201)), permit(2));
    assert_eq!(t.decide(&from_dmz(4001)), permit(3));
    assert_eq!(t.decide(&from_dmz(3200)), NO_MATCH);
    assert_eq!(t.decide(&from_dmz(3298)), NO_MATCH);
    let no_snc = RouteQuery {
        snc_name: None,
        ..from_dmz(3201)
    };
    assert_eq!(t.decide(&no_snc), NO_MATCH);
    let impostor = RouteQuery {
        snc_name: Some("p:CN=SAPROUTER3"),
        ..from_dmz(3201)
    };
    assert_eq!(t.decide(&impostor), NO_MATCH);
}

#[test]
fn scenario_tables_as_published_are_rejected() {
    assert_error_has(
        "KT \"p:CN=SAPROUTER2\" 5002\n",
        1,
        22,
        "host: '5002': a bare number is not a host",
    );
    assert_error_has(
        "P * 5002\n",
        1,
        5,
        "destination: '5002': a bare number is not a host",
    );
}
