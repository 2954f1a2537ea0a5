//! Every top-level sample table in routtab-samples/ loads, and the bundled default table
//! permits exactly the local test routes it promises.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use saprouter::routtab::{Decision, DenyReason, Resolver, RoutTab, RouteQuery};
use saprouter::services::Services;

/// Maps each distinct host name to its own 10.0.0.x; services from a tiny database plus
/// SAP's built-in names.
struct FakeResolver {
    hosts: RefCell<HashMap<String, IpAddr>>,
    services: Services,
}

impl FakeResolver {
    fn new() -> Self {
        Self {
            hosts: RefCell::new(HashMap::new()),
            services: Services::parse("telnet 23/tcp\nserviceX 4444/tcp\n"),
        }
    }
}

impl Resolver for FakeResolver {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let mut hosts = self.hosts.borrow_mut();
        let next = u8::try_from(hosts.len() + 1).map_err(|e| e.to_string())?;
        let addr = *hosts
            .entry(name.to_string())
            .or_insert_with(|| IpAddr::from([10, 0, 0, next]));
        Ok(vec![addr])
    }

    fn resolve_service(&self, name: &str) -> Option<u16> {
        self.services.resolve(name)
    }
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("routtab-samples")
}

fn load(name: &str) -> RoutTab {
    let path = samples_dir().join(name);
    match RoutTab::load(&path, &FakeResolver::new()) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_top_level_sample_loads() {
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().unwrap().is_file() || name.ends_with(".md") {
            continue;
        }
        let table = load(&name);
        assert!(!table.entries.is_empty(), "{name} has no rules");
        loaded.push(name);
    }
    for required in ["saprouttab", "sap-help-examples"] {
        assert!(
            loaded.iter().any(|n| n == required),
            "{required} missing: {loaded:?}"
        );
    }
}

fn local(port: u16) -> RouteQuery<'static> {
    RouteQuery {
        source: "127.0.0.1".parse().unwrap(),
        snc_name: None,
        destination: "127.0.0.1".parse().unwrap(),
        port,
        passwords: &[],
        raw: false,
        routers_before: 0,
        routers_after: 0,
    }
}

#[test]
fn default_table_permits_only_local_test_routes() {
    let t = load("saprouttab");
    let last = t.entries.last().unwrap().line;
    for port in [3298, 3200, 3201, 3300, 3399] {
        assert!(
            matches!(t.decide(&local(port)), Decision::Permit { .. }),
            "{port}"
        );
    }
    let denied = Decision::Deny {
        line: Some(last),
        reason: DenyReason::DenyLine,
    };
    for port in [3299, 3199, 3400, 22, 80] {
        assert_eq!(t.decide(&local(port)), denied, "{port}");
    }
    let remote_source = RouteQuery {
        source: "10.1.1.1".parse().unwrap(),
        ..local(3298)
    };
    assert_eq!(t.decide(&remote_source), denied);
    let remote_destination = RouteQuery {
        destination: "10.1.1.1".parse().unwrap(),
        ..local(3298)
    };
    assert_eq!(t.decide(&remote_destination), denied);
    let mapped = RouteQuery {
        source: "::ffff:127.0.0.1".parse().unwrap(),
        ..local(3298)
    };
    assert!(matches!(t.decide(&mapped), Decision::Permit { .. }));
}

#[test]
fn sap_help_examples_have_nine_rules() {
    let t = load("sap-help-examples");
    assert_eq!(t.entries.len(), 9);
}

#[test]
fn missing_table_is_a_clear_error() {
    let path = samples_dir().join("no-such-table");
    let e = RoutTab::load(&path, &FakeResolver::new()).unwrap_err();
    assert_eq!((e.line, e.file.as_path()), (0, path.as_path()));
    assert!(
        e.message
            .starts_with("cannot read route permission table: "),
        "{e}"
    );
}

#[test]
fn non_utf8_table_names_the_line() {
    let dir = std::env::temp_dir().join(format!("routtab-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("saprouttab");
    std::fs::write(&path, b"P * * 3200\nP * * 3201 p\xe4ss\n").unwrap();
    let e = RoutTab::load(&path, &FakeResolver::new()).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((e.line, e.column), (2, 13), "{e}");
    assert_eq!(e.message, "the line is not valid UTF-8");
}
