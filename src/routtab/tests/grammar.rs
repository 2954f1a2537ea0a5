//! The line grammar: line types, fields, comments, quotes, hop limits, and errors with
//! exact line and column.

use super::*;
use crate::routtab::{Action, HopLimits, HostPattern, ServicePattern, SncName, Source};

#[test]
fn empty_comment_and_blank_lines_give_an_empty_table() {
    let t = table("\n# comment\n   # indented comment\n\t\n  \t  \n#P * * *\n");
    assert!(t.entries.is_empty());
    assert!(table("").entries.is_empty());
}

#[test]
fn every_line_type_any_case() {
    let text = "P * * *\ns * * *\nD * * *\nkt p:CN=a * *\nKp * * *\nkS * * *\nkd * * *\n";
    let t = table(text);
    let actions: Vec<Action> = t.entries.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Permit,
            Action::Secure,
            Action::Deny,
            Action::SncTarget,
            Action::SncPermit,
            Action::SncSecure,
            Action::SncDeny
        ]
    );
    let lines: Vec<usize> = t.entries.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn line_numbers_count_comments_and_blanks() {
    let t = table("# header\n\nP * * 3200\n# x\nD * * *");
    assert_eq!(t.entries[0].line, 3);
    assert_eq!(t.entries[1].line, 5);
}

#[test]
fn omitted_fields_are_wildcards() {
    let t = table("D host3\nP host1 host2\n");
    let e = &t.entries[0];
    assert_eq!(e.destination, HostPattern::Any);
    assert_eq!(e.service, ServicePattern::Any);
    assert_eq!(e.password, None);
    assert_eq!(e.hops, HopLimits::default());
    assert_eq!(t.entries[1].service, ServicePattern::Any);
}

#[test]
fn password_field_and_star() {
    let t = table("P * * * secret\nP * * * *\nP * * *\n");
    assert_eq!(t.entries[0].password.as_deref(), Some("secret"));
    assert_eq!(t.entries[1].password, None);
    assert_eq!(t.entries[2].password, None);
}

#[test]
fn debug_never_prints_the_password() {
    let t = table("P * * * hunter2\n");
    let shown = format!("{t:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn hop_limits() {
    let t = table("P0,1 * * *\nP*,0 * * *\nS*,* * * *\nP254,7 * * *\np0,* * * *\n");
    let hops: Vec<(u8, u8)> = t
        .entries
        .iter()
        .map(|e| (e.hops.before, e.hops.after))
        .collect();
    assert_eq!(hops, [(0, 1), (255, 0), (255, 255), (254, 7), (0, 255)]);
    assert_eq!(t.entries[2].action, Action::Secure);
}

#[test]
fn hop_limit_errors() {
    assert_error(
        "P255,0 * * *",
        1,
        1,
        "action: 'P255,0': hop limit 255 exceeds 254 (write * for unlimited)",
    );
    assert_error(
        "P0,99999999999999999999 * *",
        1,
        1,
        "action: 'P0,99999999999999999999': hop limit 99999999999999999999 exceeds 254 \
         (write * for unlimited)",
    );
    assert_error_has("P0 * * *", 1, 1, "<before>,<after>");
    assert_error_has("P0, * * *", 1, 1, "<before>,<after>");
    assert_error_has("P0,1,2 * * *", 1, 1, "<before>,<after>");
    assert_error_has("P-1,0 * * *", 1, 1, "unknown line type");
    assert_error_has("D0,1 * * *", 1, 1, "only allowed on P and S");
    assert_error_has("KP0,1 * * *", 1, 1, "only allowed on P and S");
    assert_error_has("KT*,* x * *", 1, 1, "only allowed on P and S");
}

#[test]
fn unknown_action() {
    assert_error(
        "X * * *",
        1,
        1,
        "action: 'X': unknown line type (expected P, S, D, KT, KP, KS or KD)",
    );
    assert_error_has("Permit * * *", 1, 1, "unknown line type");
    assert_error_has("  K * * *", 1, 3, "unknown line type");
    assert_error_has("KX * * *", 1, 1, "unknown line type");
}

#[test]
fn tabs_and_mixed_blanks_separate_fields() {
    let t = table("P\t*\t \t10.0.0.1  \t3200\tpw\t");
    let e = &t.entries[0];
    assert_eq!(e.service, ServicePattern::Range(3200, 3200));
    assert_eq!(e.password.as_deref(), Some("pw"));
}

#[test]
fn crlf_line_endings() {
    let t = table("# c\r\nP * * 3200 pw\r\n\r\nD * * *\r\n");
    assert_eq!(t.entries.len(), 2);
    assert_eq!(t.entries[0].password.as_deref(), Some("pw"));
    assert_eq!(t.entries[1].line, 4);
}

#[test]
fn byte_order_mark_is_ignored() {
    let t = table("\u{feff}P * * 3200\n");
    assert_eq!(t.entries.len(), 1);
}

#[test]
fn stray_carriage_return_and_control_characters_are_errors() {
    assert_error("P * *\r* x\n", 1, 6, "control character U+000D in the line");
    assert_error(
        "\nP * * * a\u{0}b",
        2,
        10,
        "control character U+0000 in the line",
    );
    assert_error_has("D * * *\u{1b}[2J", 1, 8, "U+001B");
}

#[test]
fn inline_comment_after_the_last_field() {
    let t = table("P0,1 * 192.168.1.1 3200 password # SID dispatcher\nD * * * * #end\n");
    assert_eq!(t.entries[0].password.as_deref(), Some("password"));
    assert_eq!(t.entries.len(), 2);
    let t = table("KT p:CN=x 10.0.0.1 3299 # to the inner router\n");
    assert_eq!(t.entries[0].service, ServicePattern::Range(3299, 3299));
}

#[test]
fn extra_fields_are_errors() {
    assert_error(
        "P * * * pw extra",
        1,
        12,
        "unexpected field after the password (inline comments must start with '#')",
    );
    // A lone '#' in the password position is the password; the comment words then fail.
    assert_error_has("P * host1 3200 # allow niping", 1, 18, "after the password");
    assert_error_has("KT p:CN=x 10.0.0.1 3299 pw", 1, 25, "KT lines are");
}

#[test]
fn a_comment_in_place_of_a_field_is_an_error() {
    assert_error(
        "D host3 # deny all from host3",
        1,
        9,
        "destination: '#': a '#' comment may only follow the last field \
         (write the omitted fields out as '*')",
    );
    assert_error_has("P * * #x", 1, 7, "service: '#x'");
}

#[test]
fn quoted_fields() {
    let t = table("KT \"p:CN=x, OU=y, O=SAP, C=DE\" \"10.0.0.1\" \"3299\"\nP \"*\" * * \"a b\"\n");
    assert_eq!(
        t.entries[0].source,
        Source::Snc(SncName::Name("p:cn=x,ou=y,o=SAP,c=DE".into()))
    );
    assert_eq!(t.entries[0].service, ServicePattern::Range(3299, 3299));
    assert_eq!(t.entries[1].source, Source::Host(HostPattern::Any));
    assert_eq!(t.entries[1].password.as_deref(), Some("a b"));
}

#[test]
fn quote_errors() {
    assert_error(
        "KP \"p:CN=x, O=y * *",
        1,
        4,
        "unterminated quote (no closing '\"')",
    );
    assert_error(
        "KP \"p:CN=x\"y * *",
        1,
        12,
        "text directly after a closing quote",
    );
    assert_error("P * * * \"\"", 1, 9, "empty quoted field");
    // A quote inside a bare field is an ordinary character (a password may hold one).
    let t = table("P * * * pa\"ss\n");
    assert_eq!(t.entries[0].password.as_deref(), Some("pa\"ss"));
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_error_has("P * * * pässwört x", 1, 18, "after the password");
}

#[test]
fn missing_source_is_an_error() {
    assert_error("P", 1, 2, "source: missing (write '*' for any)");
    assert_error("KT", 1, 3, "SNC name: missing (write '*' for any)");
}

#[test]
fn kt_fields() {
    let t = table("KT \"p:CN=SAPROUTER2\" 10.0.0.2 5002\n");
    let e = &t.entries[0];
    assert_eq!(e.action, Action::SncTarget);
    assert_eq!(
        e.source,
        Source::Snc(SncName::Name("p:cn=SAPROUTER2".into()))
    );
    assert_eq!(e.password, None);
    assert_error_has("KT p:CN=x 10.0.0.300 1", 1, 11, "host: '10.0.0.300'");
}

#[test]
fn unquoted_snc_names_with_blanks_get_a_hint() {
    assert_error_has(
        "KP p:CN=x, O=y * *",
        1,
        12,
        "destination: 'O=y': invalid character '=' (not an address pattern, and a host name \
         may only hold letters, digits, '.', '-' and '_') -- an SNC name with blanks must be \
         in double quotes",
    );
}

#[test]
fn k_lines_take_snc_names_not_hosts() {
    let t = table("KP * * * pass2\nKD S:SR@host4 host9 *\n");
    assert_eq!(t.entries[0].source, Source::Snc(SncName::Any));
    assert_eq!(t.entries[0].password.as_deref(), Some("pass2"));
    assert_eq!(
        t.entries[1].source,
        Source::Snc(SncName::Name("S:SR@host4".into()))
    );
}

#[test]
fn password_length_limit() {
    let long = "x".repeat(256);
    let e = error(&format!("P * * * {long}"));
    assert_eq!((e.line, e.column), (1, 9));
    assert_eq!(e.message, "password: longer than 255 bytes");
    let ok = "y".repeat(255);
    assert_eq!(
        table(&format!("P * * * {ok}")).entries[0]
            .password
            .as_deref(),
        Some(&*ok)
    );
}

#[test]
fn the_first_bad_line_fails_the_whole_table() {
    let e = error("P * * 3200\nP * * 3201\nP * * 0\nP * * 70000\n");
    assert_eq!((e.line, e.column), (3, 7));
    assert_eq!(e.message, "service: '0': port 0 is not allowed");
    assert_eq!(
        e.to_string(),
        "saprouttab:3:7: service: '0': port 0 is not allowed"
    );
}

#[test]
fn long_field_text_is_shortened_in_messages() {
    let name = "a".repeat(300);
    let e = error(&format!("P {name}! * *"));
    assert!(e.message.len() < 300, "{}", e.message);
    assert!(e.message.contains("..."));
}

#[test]
fn services() {
    let t = table(
        "P * * 3200\nP * * 3200.3298\nP * * 3300-3399\nP * * telnet\nP * * sapdp01\n\
         P * * 4711.4711\nP * * 03200\nP * * 1.65535\n",
    );
    let svcs: Vec<ServicePattern> = t.entries.iter().map(|e| e.service).collect();
    use ServicePattern::Range;
    assert_eq!(
        svcs,
        [
            Range(3200, 3200),
            Range(3200, 3298),
            Range(3300, 3399),
            Range(23, 23),
            Range(3201, 3201),
            Range(4711, 4711),
            Range(3200, 3200),
            Range(1, 65535),
        ]
    );
}

#[test]
fn service_errors() {
    assert_error(
        "P * * 65536",
        1,
        7,
        "service: '65536': port 65536 exceeds 65535",
    );
    assert_error_has("P * * 99999999999999999999", 1, 7, "exceeds 65535");
    assert_error("P * * 0", 1, 7, "service: '0': port 0 is not allowed");
    assert_error(
        "P * * 3299.3200",
        1,
        7,
        "service: '3299.3200': range start 3299 is above its end 3200",
    );
    assert_error_has("P * * 0.100", 1, 7, "port 0");
    assert_error(
        "P * * nosuchservice",
        1,
        7,
        "service: 'nosuchservice': unknown service name (not in the services database)",
    );
    assert_error_has("P * * zero", 1, 7, "unknown service name");
    assert_error_has("P * * sapdp100", 1, 7, "unknown service name");
    for junk in [
        "-1", "+3200", "3200abc", "0x0c80", "3200.", ".3200", "1.2.3", "1..2", "a/b", "3200-*",
    ] {
        assert_error_has(&format!("P * * {junk}"), 1, 7, "not a port (1-65535)");
    }
}
