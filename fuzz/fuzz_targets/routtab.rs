//! The saprouttab parser with a fake resolver (no DNS): never panics, and a table that
//! parses answers route queries without panicking.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use saprouter::routtab::{parse_table, Resolver, RouteQuery};

/// Names `hostN` resolve to 10.0.0.N, `six` to an IPv6 and an IPv4 address, `none` to
/// nothing; other names fail. Services: SAP's built-in names and two fixed ones.
struct FakeResolver;

impl Resolver for FakeResolver {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(n) = name.strip_prefix("host").and_then(|n| n.parse::<u8>().ok()) {
            return Ok(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))]);
        }
        match name {
            "six" => Ok(vec![
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ]),
            "none" => Ok(vec![]),
            _ => Err(format!("{name}: unknown")),
        }
    }

    fn resolve_service(&self, name: &str) -> Option<u16> {
        match name {
            "telnet" => Some(23),
            "zero" => Some(0),
            _ => saprouter::services::builtin_sap_service(name),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = parse_table(text, Path::new("fuzz"), &FakeResolver) else {
        return;
    };
    let _ = format!("{table:?}");
    let addrs = [
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for (i, &source) in addrs.iter().enumerate() {
        for &destination in &addrs {
            for port in [0u16, 1, 3200, 3299, 65535] {
                let query = RouteQuery {
                    source,
                    snc_name: (i == 1).then_some("p:CN=host1, O=fuzz"),
                    destination,
                    port,
                    passwords: if i % 2 == 0 { &[] } else { &["secret"] },
                    raw: i % 3 == 0,
                    routers_before: i,
                    routers_after: 3 - i,
                };
                let _ = table.decide(&query);
                let _ = table.snc_target(destination, port);
            }
        }
    }
});
