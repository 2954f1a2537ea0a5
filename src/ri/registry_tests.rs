use super::*;
use crate::ri::link::LINK_VERSION;
use crate::ri::mux::{open_channel, session, OpenRequests};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn peer(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), 40000)
}

fn reg(instance: u64, index: u16, service: u16, addrs: &[&str], implicit: bool) -> Register {
    Register {
        version: LINK_VERSION,
        instance,
        link_index: index,
        reg_service: service,
        implicit,
        addrs: addrs
            .iter()
            .map(|a| match a.parse::<IpAddr>() {
                Ok(ip) => RegAddr::Ip(ip),
                Err(_) => RegAddr::Name(a.to_string()),
            })
            .collect(),
    }
}

fn entry(r: &Registry, from: &str) -> (LinkEntry, OpenRequests) {
    let (opener, requests) = open_channel();
    (
        LinkEntry {
            id: r.next_link_id(),
            index: 0,
            peer: peer(from),
            opener,
            streams: StreamCount::default(),
            cancel: CancellationToken::new(),
            since: SystemTime::now(),
            snc_name: None,
        },
        requests,
    )
}

fn add(r: &Registry, reg: &Register, from: &str) -> Result<(Admitted, LinkEntry), Refusal> {
    let (mut link, _requests) = entry(r, from);
    link.index = reg.link_index;
    r.register(reg, peer(from), link.clone()).map(|a| (a, link))
}

#[test]
fn lookup_matches_port_and_address_literally_and_parsed() {
    let r = Registry::new(2, 3);
    add(
        &r,
        &reg(1, 0, 5002, &["10.18.0.2", "lan.example"], false),
        "10.18.0.2",
    )
    .unwrap();
    assert_eq!(r.lookup("10.18.0.2", 5002), Some(ip("10.18.0.2")));
    assert_eq!(r.lookup("10.18.0.2", 5003), None, "other port");
    assert_eq!(r.lookup("10.18.0.3", 5002), None, "other host");
    assert_eq!(
        r.lookup("LAN.example", 5002),
        Some(ip("10.18.0.2")),
        "name, any case"
    );
    assert_eq!(
        r.lookup("::ffff:10.18.0.2", 5002),
        Some(ip("10.18.0.2")),
        "mapped"
    );
    assert_eq!(r.lookup("other.example", 5002), None);
    assert_eq!(r.lookup("", 5002), None);
}

#[test]
fn implicit_registration_adds_the_observed_source() {
    let r = Registry::new(1, 3);
    // Behind NAT: the LAN router sees itself as 192.168.1.5, the DMZ sees 203.0.113.9.
    add(&r, &reg(1, 0, 5002, &["192.168.1.5"], true), "203.0.113.9").unwrap();
    assert!(r.lookup("192.168.1.5", 5002).is_some());
    assert!(r.lookup("203.0.113.9", 5002).is_some());
    let r = Registry::new(1, 3);
    add(&r, &reg(1, 0, 5002, &["192.168.1.5"], false), "203.0.113.9").unwrap();
    assert!(
        r.lookup("203.0.113.9", 5002).is_none(),
        "explicit: only what was named"
    );
    // A name the LAN router could not resolve: the source address stands in for it.
    let r = Registry::new(1, 3);
    add(&r, &reg(1, 0, 5002, &["lan.example"], false), "203.0.113.9").unwrap();
    assert_eq!(r.lookup("lan.example", 5002), Some(ip("203.0.113.9")));
}

#[test]
fn max_servers_counts_distinct_instances() {
    let r = Registry::new(1, 3);
    add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    add(&r, &reg(1, 1, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    let refused = add(&r, &reg(2, 0, 5003, &["10.0.0.3"], false), "10.0.0.3").unwrap_err();
    assert_eq!(refused.rc, rc::NIEROUT_OVERFLOW);
    assert_eq!(refused.reason, "max_servers (1) reached");
    assert_eq!(r.server_count(), 1);
}

#[test]
fn another_instance_cannot_take_a_registered_address() {
    let r = Registry::new(4, 3);
    add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    let refused = add(&r, &reg(2, 0, 5002, &["10.0.0.2"], false), "10.0.0.9").unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED);
    assert!(
        refused.reason.contains("already registered by server [0]"),
        "{}",
        refused.reason
    );
    let refused = add(&r, &reg(3, 0, 5002, &["10.0.0.9"], true), "10.0.0.2").unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED, "observed source counts too");
    // Same address, other pseudo port: a different registration.
    add(&r, &reg(4, 0, 5003, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    assert_eq!(r.lookup("10.0.0.2", 5002), Some(ip("10.0.0.2")));
    assert_eq!(r.lookup("10.0.0.2", 5003), Some(ip("10.0.0.2")));
}

#[test]
fn same_slot_replaces_the_stale_link_atomically() {
    let r = Registry::new(1, 3);
    let (a, old) = add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    assert_eq!(a.replaced, None);
    let (b, new) = add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    assert_eq!(b.replaced, Some(old.id));
    assert_eq!(b.server_number, a.server_number);
    assert!(old.cancel.is_cancelled(), "the stale link is told to end");
    // The old link's driver ending later must not remove the new one.
    assert!(!r.remove_link(1, old.id));
    assert!(r.lookup("10.0.0.2", 5002).is_some());
    assert!(r.remove_link(1, new.id));
    assert_eq!(r.server_count(), 0, "no links: the server is forgotten");
    assert_eq!(
        r.lookup("10.0.0.2", 5002),
        Some(ip("10.0.0.2")),
        "its address stays a pseudo address"
    );
}

#[test]
fn slot_beyond_the_pool_is_refused() {
    let r = Registry::new(1, 2);
    let refused = add(&r, &reg(1, 2, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap_err();
    assert_eq!(refused.reason, "link 2 beyond the pool of 2 links");
}

#[test]
fn info_lines_show_servers_and_links() {
    let r = Registry::new(2, 3);
    add(&r, &reg(0xab, 0, 5002, &["10.0.0.2"], true), "10.0.0.2").unwrap();
    let lines = r.info_lines().join("\n");
    assert!(lines.contains("srv no 1 (max 2), connPool 3"), "{lines}");
    assert!(
        lines.contains("reg port 5002, reg addrs 1 [10.0.0.2]"),
        "{lines}"
    );
    assert!(lines.contains("10.0.0.2:40000"), "{lines}");
}

/// A registry entry backed by a real yamux pair; the far side's streams are echoed.
fn live_link(r: &Registry, index: u16, cancel: &CancellationToken) -> LinkEntry {
    use tokio::io::AsyncWriteExt;
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (opener, requests) = open_channel();
    let (_far_opener, far_requests) = open_channel();
    tokio::spawn(session(a, yamux::Mode::Client, requests).drive(|_| false, cancel.clone()));
    tokio::spawn(session(b, yamux::Mode::Server, far_requests).drive(
        |s| {
            tokio::spawn(async move {
                let (mut rd, mut wr) = tokio::io::split(s.compat());
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
            true
        },
        cancel.clone(),
    ));
    let (mut link, _) = entry(r, "10.0.0.2");
    link.index = index;
    link.opener = opener;
    link
}

#[tokio::test]
async fn open_spreads_streams_over_links_and_skips_dead_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = Registry::new(1, 3);
    let cancel = CancellationToken::new();
    let mut links = Vec::new();
    for index in 0..3 {
        let link = live_link(&r, index, &cancel);
        r.register(
            &reg(1, index, 5002, &["10.0.0.2"], false),
            peer("10.0.0.2"),
            link.clone(),
        )
        .unwrap();
        links.push(link);
    }
    let mut streams = Vec::new();
    for i in 0..9u8 {
        let mut s = r.open(ip("10.0.0.2"), 5002).await.unwrap();
        s.write_all(&[i]).await.unwrap();
        let mut b = [0u8];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], i);
        streams.push(s);
    }
    for l in &links {
        assert_eq!(
            l.streams.open(),
            3,
            "link {} carries {}",
            l.id,
            l.streams.open()
        );
    }
    drop(streams);
    for l in &links {
        assert_eq!(l.streams.open(), 0);
    }
    assert!(
        r.open(ip("10.0.0.3"), 5002).await.is_err(),
        "unknown address"
    );
    // A link whose driver is gone but still listed: the next one serves.
    let (mut dead, requests) = entry(&r, "10.0.0.2");
    drop(requests);
    dead.index = 0;
    r.register(
        &reg(1, 0, 5002, &["10.0.0.2"], false),
        peer("10.0.0.2"),
        dead,
    )
    .unwrap();
    for _ in 0..4 {
        assert!(r.open(ip("10.0.0.2"), 5002).await.is_ok());
    }
    cancel.cancel();
}
