//! Property tests: the parser never panics; generated lines give the expected matchers.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::routtab::{HostPattern, ServicePattern, SncName};

fn one_entry(text: &str) -> crate::routtab::Entry {
    table(text).entries.remove(0)
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = try_table(&text);
    }

    #[test]
    fn parse_never_panics_on_table_like_text(
        lines in proptest::collection::vec(
            "[ \t]{0,2}(P|S|D|KT|KP|KS|KD|p0,1|P\\*,0|#|x)[ \t]{1,2}[*0-9.x/:a-z\"#, -]{0,20}[ \t]{1,2}[*0-9.x/:a-z\"#-]{0,20}[ \t]{0,2}[*0-9a-z.-]{0,8}[ \t]{0,2}[^\n]{0,6}\r?",
            0..6,
        )
    ) {
        let _ = try_table(&lines.join("\n"));
    }

    #[test]
    fn cidr_prefix_matches_exactly_its_network(addr: u32, len in 0u8..=32, probe: u32) {
        let e = one_entry(&format!("P {}/{len} * *", Ipv4Addr::from(addr)));
        let crate::routtab::Source::Host(pattern) = &e.source else { unreachable!() };
        let netmask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let inside = (addr & netmask) | (probe & !netmask);
        prop_assert!(pattern.matches(IpAddr::V4(inside.into())));
        let mapped = IpAddr::V6(Ipv4Addr::from(inside).to_ipv6_mapped());
        prop_assert!(pattern.matches(mapped));
        let expect = (probe & netmask) == (addr & netmask);
        prop_assert_eq!(pattern.matches(IpAddr::V4(probe.into())), expect);
    }

    #[test]
    fn octet_pattern_matches_per_octet(
        octets in proptest::collection::vec(proptest::option::of(any::<u8>()), 4),
        probe: [u8; 4],
    ) {
        let text: Vec<String> = octets
            .iter()
            .map(|o| o.map_or("*".to_string(), |v| v.to_string()))
            .collect();
        let e = one_entry(&format!("P * {} *", text.join(".")));
        let expect = octets.iter().zip(probe).all(|(o, p)| o.map_or(true, |v| v == p));
        prop_assert_eq!(e.destination.matches(IpAddr::V4(probe.into())), expect);
    }

    #[test]
    fn binary_octet_matches_its_bits(bits in "[01x]{8}", probe: u8) {
        let e = one_entry(&format!("P * 10.{bits}.0.0 *"));
        let expect = bits.chars().enumerate().all(|(i, c)| {
            let bit = (probe >> (7 - i)) & 1;
            c == 'x' || (c == '1') == (bit == 1)
        });
        prop_assert_eq!(e.destination.matches(IpAddr::V4([10, probe, 0, 0].into())), expect);
    }

    #[test]
    fn range_matches_exactly_its_range(a in 1u16.., b in 1u16.., port: u16, dash: bool) {
        let (min, max) = (a.min(b), a.max(b));
        let sep = if dash { '-' } else { '.' };
        let e = one_entry(&format!("P * * {min}{sep}{max}"));
        prop_assert_eq!(e.service, ServicePattern::Range(min, max));
        prop_assert_eq!(e.service.matches(port), (min..=max).contains(&port));
    }

    #[test]
    fn single_port_matches_only_itself(p in 1u16.., port: u16) {
        let e = one_entry(&format!("P * * {p}"));
        prop_assert_eq!(e.service.matches(port), port == p);
    }

    #[test]
    fn hop_limits_round_trip(before in proptest::option::of(0u8..=254), after in proptest::option::of(0u8..=254)) {
        let show = |h: Option<u8>| h.map_or("*".to_string(), |v| v.to_string());
        let e = one_entry(&format!("P{},{} * * *", show(before), show(after)));
        prop_assert_eq!(e.hops.before, before.unwrap_or(255));
        prop_assert_eq!(e.hops.after, after.unwrap_or(255));
    }

    #[test]
    fn snc_normalisation_is_idempotent(name in "(p:)?[A-Za-z]{1,3} ?= ?[A-Za-z0-9 ]{1,6}(, ?[A-Za-z]{1,3}=[A-Za-z0-9]{1,6}){0,3}") {
        let once = SncName::new(&name);
        if let SncName::Name(n) = &once {
            prop_assert_eq!(SncName::new(n), once.clone());
            prop_assert!(once.matches(&name));
            prop_assert!(once.matches(n));
        }
    }

    #[test]
    fn password_lines_need_that_password(pw in "[!-~]{1,40}", offered in "[!-~]{0,40}") {
        prop_assume!(pw != "*" && !pw.starts_with('"'));
        let t = table(&format!("P * * * {pw}"));
        let list = [offered.as_str()];
        let q = RouteQuery { passwords: &list, ..query("10.0.0.1", "10.0.0.2", 1) };
        let expect = if offered == pw { permit(1) } else { deny(1, DenyReason::Password) };
        prop_assert_eq!(t.decide(&q), expect);
    }
}

#[test]
fn any_host_pattern_is_star() {
    assert_eq!(one_entry("P * * *").destination, HostPattern::Any);
}
