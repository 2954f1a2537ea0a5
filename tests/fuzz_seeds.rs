//! The fuzz seeds (`fuzz/seeds/<target>/`) as regression inputs on stable Rust: every file
//! goes through the parser its target fuzzes, with the target's round-trip checks, so the
//! ordinary `cargo test` replays them (and any crash input added there) without nightly.

use std::path::Path;

use saprouter::ni::admin::AdminRequest;
use saprouter::ni::frame::{split_frame, FrameTracker};
use saprouter::ni::route::RouteRequest;
use saprouter::ni::routestr;
use saprouter::ni::rterr::{ErrorRecord, RtErr};
use saprouter::ri::link::{Accept, Register};
use saprouter::services::Services;

/// Names never resolve (no DNS from tests); services are SAP's built-in names.
struct NoDns;

impl saprouter::routtab::Resolver for NoDns {
    fn resolve_host(&self, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        Err(format!("{name}: no DNS in tests"))
    }
    fn resolve_service(&self, name: &str) -> Option<u16> {
        saprouter::services::builtin_sap_service(name)
    }
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read seed"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn ni_frame_seeds() {
    for (name, data) in seeds("ni_frame") {
        let [a, b, _, stream @ ..] = &data[..] else {
            continue;
        };
        let max = usize::from(u16::from_be_bytes([*a, *b]));
        let mut buf = bytes::BytesMut::from(stream);
        let mut tracker = FrameTracker::new();
        tracker.feed(stream);
        while let Ok(Some(p)) = split_frame(&mut buf, max) {
            assert!(p.len() <= max, "{name}");
        }
    }
}

#[test]
fn ni_route_seeds() {
    let mut accepted = 0;
    for (name, data) in seeds("ni_route") {
        if let Ok(route) = RouteRequest::decode(&data) {
            assert_eq!(
                RouteRequest::decode(&route.encode()),
                Ok(route.clone()),
                "{name}"
            );
            accepted += 1;
        }
    }
    assert!(accepted >= 3, "the docs/protocol.md §7 vectors decode");
}

#[test]
fn ni_admin_seeds() {
    for (name, data) in seeds("ni_admin") {
        if let Ok(request) = AdminRequest::decode(&data) {
            let again = AdminRequest::decode(&request.encode()).expect("re-decodes");
            assert_eq!(again.command.code(), request.command.code(), "{name}");
        }
    }
}

#[test]
fn ni_rterr_seeds() {
    for (name, data) in seeds("ni_rterr") {
        if let Ok(record) = ErrorRecord::decode(&data) {
            assert_eq!(ErrorRecord::decode(&record.encode()), Ok(record), "{name}");
        }
        if let Ok(message) = RtErr::decode(&data) {
            assert_eq!(RtErr::decode(&message.encode()), Ok(message), "{name}");
        }
    }
}

#[test]
fn routestr_seeds() {
    for (name, data) in seeds("routestr") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let _ = Services::parse(text).resolve(text);
        if let Ok(hops) = routestr::parse(text, "3299") {
            assert_eq!(
                routestr::parse(&routestr::format(&hops), "3299"),
                Ok(hops),
                "{name}"
            );
        }
    }
}

#[test]
fn routtab_and_ri_params_seeds() {
    for (_, data) in seeds("routtab") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = saprouter::routtab::parse_table(text, Path::new("seed"), &NoDns);
        }
    }
    for (name, data) in seeds("ri_params") {
        let text = std::str::from_utf8(&data).expect("UTF-8 seed");
        let parsed =
            saprouter::ri::params::parse(text, Path::new(&name), &Services::builtin_only());
        if name.contains("cf") {
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
    }
}

#[test]
fn ri_link_seeds() {
    for (name, data) in seeds("ri_link") {
        if let Ok(reg) = Register::decode(&data) {
            assert_eq!(Register::decode(&reg.encode()), Ok(reg), "{name}");
        }
        if let Ok(accept) = Accept::decode(&data) {
            assert_eq!(Accept::decode(&accept.encode()), Ok(accept), "{name}");
        }
    }
}

#[test]
fn proxy_header_seeds() {
    use saprouter::proxyproto::{self, Scan, MAX_HEADER, V1_MAX};
    let mut parsed = 0;
    for (name, data) in seeds("proxy_header") {
        match proxyproto::scan(&data) {
            Ok(Scan::Complete(n)) => {
                assert!(n <= data.len() && n <= MAX_HEADER, "{name}");
                if name.starts_with("seed-v1") {
                    assert!(n <= V1_MAX, "{name}");
                }
                if let Ok(header) = proxyproto::parse(&data[..n]) {
                    assert_eq!(proxyproto::read(&data), Ok(Some((header, n))), "{name}");
                    parsed += 1;
                }
            }
            Ok(Scan::Incomplete) => {
                for cut in 0..data.len() {
                    assert_eq!(
                        proxyproto::scan(&data[..cut]),
                        Ok(Scan::Incomplete),
                        "{name}"
                    );
                }
            }
            Err(_) => assert!(proxyproto::read(&data).is_err(), "{name}"),
        }
    }
    assert!(parsed >= 10, "the valid seeds parse ({parsed})");
}

#[test]
fn ri_linkmux_seeds() {
    use saprouter::ri::linkmux::frame::kind;
    use saprouter::ri::linkmux::fuzzing;
    for (name, data) in seeds("ri_linkmux") {
        let run = fuzzing::run(&data);
        println!("{name}: {run:?}");
        let sent = |k: u8| run.sent[usize::from(k)];
        if name.starts_with("seed-bad_") {
            assert!(run.end.is_some(), "{name}: the link ends: {run:?}");
            continue;
        }
        assert_eq!(run.end, None, "{name}: {run:?}");
        assert_eq!(
            run.ops * fuzzing::OP_LEN + 1,
            data.len(),
            "{name}: every op runs"
        );
        if name.contains("open_data_window") {
            assert!(
                sent(kind::DATA) >= 5 && sent(kind::WINDOW) >= 1,
                "{name}: {run:?}"
            );
            assert!(sent(kind::FIN) >= 1, "{name}: {run:?}");
        }
        if name.contains("refused") {
            assert!(run.refused >= 1, "{name}: {run:?}");
        }
        if name.contains("reset") {
            assert!(
                run.received[usize::from(kind::RESET)] >= 1,
                "{name}: {run:?}"
            );
            assert!(sent(kind::RESET) >= 1, "{name}: {run:?}");
        }
    }
}
