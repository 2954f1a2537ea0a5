use super::*;
use crate::ni::admin::{InfoClient, InfoServer};

fn reply() -> InfoReply {
    InfoReply {
        ni_version: 40,
        clients: vec![
            InfoClient {
                id: 1,
                flags: client_flags::ROUTED | client_flags::TRACED,
                connected_on: 1_700_000_000,
                address: "10.0.0.7".into(),
                partner: "sapdp01".into(),
                service: "3200".into(),
            },
            InfoClient {
                id: 2,
                flags: 0,
                connected_on: 1_700_000_100,
                address: "10.0.0.8".into(),
                partner: "ignored".into(),
                service: "ignored".into(),
            },
        ],
        server: InfoServer {
            pid: 4242,
            parent_pid: 0,
            started_on: 1_700_000_000,
            port: 3299,
            parent_port: 0,
        },
        lines: vec![
            format!("{BYTES_PREFIX}1: 100 to partner, 200 to client"),
            "Total no. of clients: 2".into(),
        ],
    }
}

#[test]
fn short_listing_has_sap_banner_table_and_lines() {
    let text = render(&reply(), false, "NOW");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "NOW");
    assert_eq!(
        lines[1],
        format!("SAP Network Interface Router, Version {ROUTER_VERSION}")
    );
    assert_eq!(lines[2], "peer SAProuter with NI version 40 ...");
    assert!(text.contains("SAP Network Interface Router running on port 3299 (PID = 4242)\n"));
    assert!(!text.contains("Parent process"));
    assert!(text.contains(&format!("1*  {:<28}| {:<28}3200\n", "10.0.0.7", "sapdp01")));
    assert!(text.contains(&format!("2   {:<28}| (no partner)", "10.0.0.8")));
    assert!(text.ends_with("\nTotal no. of clients: 2\n"));
    assert!(!text.contains(BYTES_PREFIX), "byte lines are for -L only");
}

#[test]
fn long_listing_shows_connect_time_and_byte_counts() {
    let text = render(&reply(), true, "NOW");
    let row = text
        .lines()
        .find(|l| l.starts_with("1*"))
        .expect("client 1 listed");
    assert!(row.contains(&ctime(1_700_000_000)), "{row}");
    assert!(row.ends_with("100 > 200 <"), "{row}");
    let second = text
        .lines()
        .find(|l| l.starts_with("2 "))
        .expect("client 2");
    assert!(second.contains(&ctime(1_700_000_100)), "{second}");
    assert!(text.contains("bytes > partner / < client"));
}

#[test]
fn parent_process_line_when_started_by_another_router() {
    let mut r = reply();
    r.server.parent_pid = 17;
    r.server.parent_port = 3298;
    let text = render(&r, false, "NOW");
    assert!(text.contains("(Parent process: PID = 17, port = 3298)\n"));
}

#[test]
fn ctime_has_sap_layout() {
    let t = ctime(1_700_000_000);
    let words: Vec<&str> = t.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{t}");
    assert_eq!(words[4], "2023");
    assert_eq!(words[3].len(), 8, "{t}");
}
