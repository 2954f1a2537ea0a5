//! Tests of the table: grammar, patterns, decisions, SAP's examples, properties.

mod decide;
mod examples;
mod grammar;
mod hosts;
mod props;
mod trace;

use std::cell::Cell;
use std::net::IpAddr;
use std::path::Path;

use super::{parse_table, Decision, DenyReason, Resolver, RoutTab, RouteQuery, TableError};

/// Host names `hostN` → `10.0.0.N`, a few special names, and a small services database.
#[derive(Default)]
pub(super) struct FakeResolver {
    pub(super) host_calls: Cell<usize>,
}

impl Resolver for FakeResolver {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        self.host_calls.set(self.host_calls.get() + 1);
        if let Some(n) = name.strip_prefix("host").and_then(|n| n.parse::<u8>().ok()) {
            return Ok(vec![ip(&format!("10.0.0.{n}"))]);
        }
        match name {
            "multi" => Ok(vec![
                ip("10.1.0.1"),
                ip("10.1.0.2"),
                ip("::ffff:10.1.0.1"),
                ip("2001:db8::1"),
            ]),
            "mapped" => Ok(vec![ip("::ffff:10.2.0.1")]),
            "nowhere" => Ok(vec![]),
            "lan.example" => Ok(vec![ip("192.168.50.2")]),
            "backend.example" => Ok(vec![ip("192.168.50.10")]),
            "localhost" => Ok(vec![ip("127.0.0.1"), ip("::1")]),
            _ => Err(format!("{name}: Name or service not known")),
        }
    }

    fn resolve_service(&self, name: &str) -> Option<u16> {
        match name {
            "telnet" => Some(23),
            "serviceX" => Some(4444),
            "sapmsBIN" => Some(3600),
            "zero" => Some(0),
            _ => crate::services::builtin_sap_service(name),
        }
    }
}

pub(super) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub(super) fn try_table(text: &str) -> Result<RoutTab, TableError> {
    parse_table(text, Path::new("saprouttab"), &FakeResolver::default())
}

pub(super) fn table(text: &str) -> RoutTab {
    match try_table(text) {
        Ok(t) => t,
        Err(e) => panic!("table did not parse: {e}"),
    }
}

/// The error of a one-line or multi-line table that must fail.
pub(super) fn error(text: &str) -> TableError {
    match try_table(text) {
        Ok(t) => panic!("table parsed but should not: {t:?}"),
        Err(e) => e,
    }
}

/// Asserts an error's line, column and message.
#[track_caller]
pub(super) fn assert_error(text: &str, line: usize, column: usize, message: &str) {
    let e = error(text);
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (line, column, message),
        "{text:?}"
    );
    assert_eq!(e.file, Path::new("saprouttab"));
}

/// Asserts an error's line and column and that the message contains `part`.
#[track_caller]
pub(super) fn assert_error_has(text: &str, line: usize, column: usize, part: &str) {
    let e = error(text);
    assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
    assert!(e.message.contains(part), "{text:?}: {e}");
}

/// A plain NI route from `source` to `destination:port`, one hop, no SNC, no password.
pub(super) fn query(source: &str, destination: &str, port: u16) -> RouteQuery<'static> {
    RouteQuery {
        source: ip(source),
        snc_name: None,
        destination: ip(destination),
        port,
        passwords: &[],
        raw: false,
        routers_before: 0,
        routers_after: 0,
    }
}

pub(super) fn permit(line: usize) -> Decision {
    Decision::Permit { line }
}

pub(super) fn deny(line: usize, reason: DenyReason) -> Decision {
    Decision::Deny {
        line: Some(line),
        reason,
    }
}

pub(super) const NO_MATCH: Decision = Decision::Deny {
    line: None,
    reason: DenyReason::NoMatch,
};
