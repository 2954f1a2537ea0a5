//! Host patterns: wildcards, binary octets, CIDR, IPv6, names, and their errors.

use super::*;
use crate::routtab::{AddressMask, HostPattern, SncName};

/// The destination pattern of `P * <field>`.
fn dest(field: &str) -> HostPattern {
    table(&format!("P * {field} *"))
        .entries
        .remove(0)
        .destination
}

#[track_caller]
fn check(pattern: &HostPattern, inside: &[&str], outside: &[&str]) {
    for a in inside {
        assert!(pattern.matches(ip(a)), "{pattern:?} should match {a}");
    }
    for a in outside {
        assert!(!pattern.matches(ip(a)), "{pattern:?} should not match {a}");
    }
}

#[test]
fn star_matches_everything() {
    check(
        &dest("*"),
        &["0.0.0.0", "255.255.255.255", "::1", "10.1.2.3"],
        &[],
    );
}

#[test]
fn plain_address() {
    check(
        &dest("10.1.2.3"),
        &["10.1.2.3", "::ffff:10.1.2.3"],
        &["10.1.2.4", "11.1.2.3", "::1", "::a01:203"],
    );
}

#[test]
fn internal_form_is_address_plus_dont_care_mask() {
    // docs/configuration.md §1.5: 10.1.*.* -> mask 00.00.ff.ff; 10.2.00001xxx.* -> a.2.8.0 /
    // 00.00.07.ff.
    let mask = |a: &str, w: &str| {
        HostPattern::Addresses(vec![AddressMask {
            addr: ip(a),
            wildcard: ip(w),
        }])
    };
    assert_eq!(dest("10.1.*.*"), mask("10.1.0.0", "0.0.255.255"));
    assert_eq!(dest("10.2.00001xxx.*"), mask("10.2.8.0", "0.0.7.255"));
    assert_eq!(dest("10.1.0.0"), mask("10.1.0.0", "0.0.0.0"));
    assert_eq!(dest("10.0.0.255/24"), mask("10.0.0.0", "0.0.0.255"));
}

#[test]
fn octet_wildcards_anywhere() {
    check(
        &dest("155.56.*.*"),
        &["155.56.0.0", "155.56.255.255", "155.56.7.8"],
        &["155.57.0.0", "154.56.1.1"],
    );
    check(
        &dest("10.*.1.*"),
        &["10.0.1.0", "10.200.1.99"],
        &["10.0.2.0", "11.0.1.0"],
    );
    check(&dest("*.*.*.1"), &["1.2.3.1", "9.9.9.1"], &["1.2.3.2"]);
    check(&dest("*.*.*.*"), &["1.2.3.1"], &["::1"]);
}

#[test]
fn binary_octets() {
    let p = dest("156.56.1011xxxx.*");
    check(
        &p,
        &[
            "156.56.176.1",
            "156.56.176.0",
            "156.56.191.255",
            "156.56.180.77",
        ],
        &[
            "156.56.175.255",
            "156.56.192.0",
            "156.56.48.1",
            "156.57.176.1",
        ],
    );
    for third in 0..=255u8 {
        let a = ip(&format!("156.56.{third}.9"));
        assert_eq!(p.matches(a), (176..=191).contains(&third), "{a}");
    }
    check(
        &dest("10.2.00001xxx.*"),
        &["10.2.8.0", "10.2.15.255"],
        &["10.2.16.0", "10.2.7.255"],
    );
    check(
        &dest("x0000000.*.*.*"),
        &["0.1.1.1", "128.1.1.1"],
        &["1.1.1.1", "64.0.0.0"],
    );
    check(
        &dest("10.0.0.xxxxxxx1"),
        &["10.0.0.1", "10.0.0.255"],
        &["10.0.0.2"],
    );
    check(
        &dest("10.0.0.XXXXXXX0"),
        &["10.0.0.0", "10.0.0.254"],
        &["10.0.0.1"],
    );
    // Eight 0/1 digits are binary, not decimal: 00000001 = 1, 10000000 = 128.
    check(&dest("10.0.0.00000001"), &["10.0.0.1"], &["10.0.0.0"]);
    check(&dest("10.0.0.10000000"), &["10.0.0.128"], &["10.0.0.10"]);
}

#[test]
fn binary_octet_errors() {
    assert_error(
        "P * 156.56.1011xxxxx.* *",
        1,
        5,
        "destination: '156.56.1011xxxxx.*': binary octet '1011xxxxx' must have exactly 8 digits of 0, 1 or x",
    );
    assert_error_has("P * 156.56.1011xxx.* *", 1, 5, "exactly 8 digits");
    assert_error_has("P * 1.1.10110101x.* *", 1, 5, "exactly 8 digits");
    assert_error_has("P * 1.1.1011012x.* *", 1, 5, "not a decimal number");
    assert_error_has("P * 1.1.1011.* *", 1, 5, "octet '1011' exceeds 255");
}

#[test]
fn decimal_octet_errors() {
    assert_error(
        "P 10.0.0.256 * *",
        1,
        3,
        "source: '10.0.0.256': octet '256' exceeds 255",
    );
    assert_error_has("P 010.0.0.1 * *", 1, 3, "leading zero");
    assert_error_has("P 10..0.1 * *", 1, 3, "empty or malformed octet");
    assert_error_has("P 10.0.0. * *", 1, 3, "empty or malformed octet");
    assert_error_has("P 1.2.3.4.5 * *", 1, 3, "too many octets");
    assert_error_has("P 1.2.3.1* * *", 1, 3, "'1*' is not a decimal number");
}

#[test]
fn partial_dotted_forms_are_ambiguous() {
    assert_error(
        "P 155.56 * *",
        1,
        3,
        "source: '155.56': partial address is ambiguous; write '155.56.*.*'",
    );
    assert_error_has("P * 10.1.* *", 1, 5, "write '10.1.*.*'");
    assert_error_has("P * 10.* *", 1, 5, "write '10.*.*.*'");
}

#[test]
fn bare_numbers_are_not_hosts() {
    // The scenario's abbreviated 'P * 5002' must not load (inet_aton would read 0.0.19.138).
    assert_error_has(
        "P * 5002",
        1,
        5,
        "destination: '5002': a bare number is not a host",
    );
    assert_error_has(
        "KT \"p:CN=SAPROUTER2\" 5002",
        1,
        22,
        "host: '5002': a bare number",
    );
    assert_error_has("P * 2130706433 *", 1, 5, "bare number");
}

#[test]
fn cidr() {
    check(
        &dest("133.27.16.0/24"),
        &["133.27.16.0", "133.27.16.255"],
        &["133.27.17.0", "133.27.15.255"],
    );
    check(&dest("10.0.0.0/8"), &["10.255.255.255"], &["11.0.0.0"]);
    check(
        &dest("0.0.0.0/0"),
        &["1.2.3.4", "255.255.255.255"],
        &["::1"],
    );
    check(&dest("10.1.2.3/32"), &["10.1.2.3"], &["10.1.2.2"]);
    // Host bits are masked off.
    check(
        &dest("10.1.2.3/16"),
        &["10.1.0.0", "10.1.255.255"],
        &["10.2.0.0"],
    );
    check(
        &dest("192.168.1.128/25"),
        &["192.168.1.200"],
        &["192.168.1.127"],
    );
}

#[test]
fn cidr_errors() {
    assert_error(
        "P * 10.0.0.0/33 *",
        1,
        5,
        "destination: '10.0.0.0/33': prefix length 33 exceeds 32",
    );
    assert_error_has("P * 10.0.0.0/ *", 1, 5, "decimal number");
    assert_error_has("P * 10.0.0.0/-1 *", 1, 5, "decimal number");
    assert_error_has("P * 10.0.0.0/8/8 *", 1, 5, "decimal number");
    assert_error_has("P * 10.0.0/8 *", 1, 5, "full address");
    assert_error_has("P * 10.*.0.0/8 *", 1, 5, "octet '*'");
    assert_error_has("P * host1/8 *", 1, 5, "full address");
}

#[test]
fn ipv6_literals_and_prefixes() {
    check(&dest("::1"), &["::1"], &["::2", "127.0.0.1"]);
    check(
        &dest("fe80::/10"),
        &["fe80::1", "febf:ffff::1"],
        &["fec0::1", "::1", "10.0.0.1"],
    );
    check(&dest("2001:db8::/32"), &["2001:db8:1::5"], &["2001:db9::"]);
    check(&dest("::/0"), &["::1", "2001::1"], &["10.0.0.1"]);
    // IPv4-mapped forms in the table are IPv4 patterns.
    check(
        &dest("::ffff:10.0.0.0/104"),
        &["10.1.2.3", "::ffff:10.9.9.9"],
        &["11.0.0.0"],
    );
    check(&dest("::ffff:10.0.0.7"), &["10.0.0.7"], &["10.0.0.8"]);
}

#[test]
fn ipv6_errors() {
    assert_error_has("P * fe80::/129 *", 1, 5, "prefix length 129 exceeds 128");
    assert_error_has("P * [::1] *", 1, 5, "not a valid IPv6");
    assert_error_has("P * fe80::1%eth0 *", 1, 5, "not a valid IPv6");
    assert_error_has("P * 1:2:3 *", 1, 5, "not a valid IPv6");
}

#[test]
fn ipv4_mapped_peers_match_ipv4_patterns() {
    check(
        &dest("10.0.0.0/8"),
        &["::ffff:10.1.1.1"],
        &["::ffff:11.1.1.1"],
    );
    check(
        &dest("155.57.1011xxxx.*"),
        &["::ffff:155.57.180.1"],
        &["::ffff:155.57.1.1"],
    );
}

#[test]
fn host_names_resolve_at_load_to_every_address() {
    check(&dest("host4"), &["10.0.0.4"], &["10.0.0.5"]);
    let p = dest("multi");
    check(
        &p,
        &["10.1.0.1", "10.1.0.2", "::ffff:10.1.0.2", "2001:db8::1"],
        &["10.1.0.3"],
    );
    match &p {
        HostPattern::Addresses(alts) => assert_eq!(alts.len(), 3, "duplicates removed: {alts:?}"),
        HostPattern::Any => panic!("resolved to Any"),
    }
    check(&dest("mapped"), &["10.2.0.1"], &[]);
    check(&dest("lan.example"), &["192.168.50.2"], &[]);
}

#[test]
fn each_name_is_resolved_once_per_load() {
    let resolver = FakeResolver::default();
    let text = "P host1 host2 *\nP host1 HOST2 3200\nD host2 host1\n";
    let t = parse_table(text, Path::new("t"), &resolver).unwrap();
    assert_eq!(t.entries.len(), 3);
    assert_eq!(resolver.host_calls.get(), 2);
}

#[test]
fn unresolved_names_warn_and_match_nothing() {
    let resolver = FakeResolver::default();
    let t = parse_table(
        "P * unknownhost 3200\n\nD nowhere\nP * * *\n",
        Path::new("t"),
        &resolver,
    )
    .unwrap();
    assert_eq!(t.entries.len(), 3);
    assert_eq!(t.warnings.len(), 2);
    assert_eq!((t.warnings[0].line, t.warnings[0].column), (1, 5));
    assert!(
        t.warnings[0]
            .message
            .contains("destination: 'unknownhost': cannot resolve host name"),
        "{}",
        t.warnings[0].message
    );
    assert_eq!((t.warnings[1].line, t.warnings[1].column), (3, 3));
    assert!(
        t.warnings[1]
            .message
            .contains("host name resolves to no address"),
        "{}",
        t.warnings[1].message
    );
    assert_eq!(t.entries[0].destination, HostPattern::Addresses(Vec::new()));
    assert!(!t.entries[0]
        .destination
        .matches("10.0.0.1".parse().unwrap()));
}

#[test]
fn host_name_errors() {
    assert_error_has("P * h@st *", 1, 5, "invalid character '@'");
    assert_error_has("P * host*.example *", 1, 5, "invalid character '*'");
    assert_error_has("P * 0x7f000001 *", 1, 5, "hexadecimal");
    assert_error_has("P * 1-2 *", 1, 5, "not an IPv4 pattern nor a host name");
    assert_error_has(
        &format!("P * {}.example *", "a".repeat(250)),
        1,
        5,
        "longer than 253",
    );
}

#[test]
fn snc_name_normalisation() {
    let n = SncName::new("p:CN=x, OU=y, O=SAP, C=DE");
    assert_eq!(n, SncName::Name("p:cn=x,ou=y,o=SAP,c=DE".into()));
    assert_eq!(SncName::new("P:  cn = x ,ou=y,  o=SAP,c = DE "), n);
    assert_eq!(SncName::new("*"), SncName::Any);
    assert_eq!(SncName::new(" * "), SncName::Any);
    assert!(n.matches("p:CN=x,OU=y,O=SAP,C=DE"));
    assert!(n.matches("CN=x, OU=y, O=SAP, C=DE"));
    assert!(n.matches("P:cn=x , ou=y, o=SAP, c=DE"));
    assert!(
        !n.matches("p:CN=X, OU=y, O=SAP, C=DE"),
        "values are case-sensitive"
    );
    assert!(!n.matches("p:CN=x, OU=y, O=SAP"));
    assert!(!n.matches("p:CN=x, OU=y, O=SAP, C=DE, L=z"));
    assert!(!n.matches(""));
    assert!(SncName::Any.matches("p:CN=anything"));
    let plain = SncName::new("CN=x");
    assert!(plain.matches("p:CN=x"));
    assert!(plain.matches("cn=x"));
}

#[test]
fn snc_name_escaped_commas() {
    let n = SncName::new(r"p:CN=Doe\, John, O=ACME");
    assert_eq!(n, SncName::Name(r"p:cn=Doe\, John,o=ACME".into()));
    assert!(n.matches(r"CN=Doe\, John,O=ACME"));
    assert!(!n.matches("CN=Doe, John, O=ACME"));
    let eq = SncName::new(r"p:CN=a\=b = c");
    assert_eq!(eq, SncName::Name(r"p:cn=a\=b = c".into()));
}

#[test]
fn snc_names_that_are_not_dns_compare_verbatim() {
    let n = SncName::new("S:SR@host4");
    assert!(n.matches("S:SR@host4"));
    assert!(!n.matches("s:sr@host4"));
    assert_eq!(n.to_string(), "S:SR@host4");
}
