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

fn add_vetted(
    r: &Registry,
    reg: &Register,
    from: &str,
    vetted: bool,
) -> Result<(Admitted, LinkEntry), Refusal> {
    let (mut link, _requests) = entry(r, from);
    link.index = reg.link_index;
    r.register_vetted(reg, peer(from), link.clone(), vetted)
        .map(|a| (a, link))
}

#[test]
fn vetting_needs_a_non_empty_ace_list_or_kt() {
    let ace = [crate::ri::ace::parse_ace("P 127.0.0.0/8").unwrap()];
    assert!(vetted(&ace, ip("127.0.0.5"), false));
    assert!(!vetted(&ace, ip("10.0.0.5"), false), "not permitted");
    assert!(
        !vetted(&[], ip("127.0.0.5"), false),
        "an empty list vets no one"
    );
    assert!(vetted(&[], ip("127.0.0.5"), true), "KT");
}

#[test]
fn a_vetted_second_instance_shares_the_pseudo_address() {
    let r = Registry::new(2, 3);
    let ace = [crate::ri::ace::parse_ace("P 10.0.0.0/8").unwrap()];
    let pseudo = reg(1, 0, 5002, &["10.9.9.9"], false);
    let a = add_vetted(
        &r,
        &pseudo,
        "10.0.0.21",
        vetted(&ace, ip("10.0.0.21"), false),
    );
    let second = reg(2, 0, 5002, &["10.9.9.9"], false);
    let b = add_vetted(
        &r,
        &second,
        "10.0.0.22",
        vetted(&ace, ip("10.0.0.22"), false),
    );
    assert_ne!(a.unwrap().0.server_number, b.unwrap().0.server_number);
    assert_eq!(r.server_count(), 2);
    let lines = r.info_lines().join("\n");
    assert!(
        lines.contains(
            "- shared 10.9.9.9:5002 by 2 servers: server [0] sessions 0, server [1] sessions 0"
        ),
        "{lines}"
    );
    assert_eq!(
        lines.matches("instance").count(),
        2,
        "one line per instance: {lines}"
    );
    // max_servers still bounds distinct instances.
    let third = reg(3, 0, 5002, &["10.9.9.9"], false);
    let refused = add_vetted(&r, &third, "10.0.0.23", true).unwrap_err();
    assert_eq!(refused.reason, "max_servers (2) reached");
}

#[test]
fn an_unvetted_registrant_never_shares() {
    let pseudo = reg(1, 0, 5002, &["10.9.9.9"], false);
    let second = reg(2, 0, 5002, &["10.9.9.9"], false);
    // Vetted holder, unvetted newcomer (an empty ACE list vets no one).
    let r = Registry::new(2, 3);
    add_vetted(&r, &pseudo, "10.0.0.21", true).unwrap();
    let refused = add_vetted(
        &r,
        &second,
        "10.0.0.22",
        vetted(&[], ip("10.0.0.22"), false),
    )
    .unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED);
    assert_eq!(
        refused.reason,
        "pseudo address already registered by server [0] from 10.0.0.21:40000"
    );
    // Unvetted holder, vetted newcomer: each registrant must be vetted.
    let r = Registry::new(2, 3);
    add_vetted(&r, &pseudo, "10.0.0.21", false).unwrap();
    let refused = add_vetted(&r, &second, "10.0.0.22", true).unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED);
    // Both vetted, but max_servers 1: no active-active at all.
    let r = Registry::new(1, 3);
    add_vetted(&r, &pseudo, "10.0.0.21", true).unwrap();
    let refused = add_vetted(&r, &second, "10.0.0.22", true).unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED);
    assert_eq!(r.server_count(), 1);
}

/// Registers instances 1 and 2 for 10.9.9.9:5002, one live link each; returns the links.
fn two_instances(r: &Registry, cancel: &CancellationToken) -> [LinkEntry; 2] {
    [1u64, 2].map(|instance| {
        let link = live_link(r, 0, cancel);
        r.register_vetted(
            &reg(instance, 0, 5002, &["10.9.9.9"], false),
            peer("10.0.0.21"),
            link.clone(),
            true,
        )
        .unwrap();
        link
    })
}

#[tokio::test]
async fn new_sessions_go_to_the_instance_with_the_fewest_then_in_turn() {
    let r = Registry::new(2, 3);
    let cancel = CancellationToken::new();
    let [a, b] = two_instances(&r, &cancel);
    // Short sessions one after another: equals take turns.
    for _ in 0..6 {
        drop(r.open(ip("10.9.9.9"), 5002).await.unwrap());
    }
    assert_eq!((a.streams.total(), b.streams.total()), (3, 3));
    // Two held on the first instance: the next two go to the other.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(r.open(ip("10.9.9.9"), 5002).await.unwrap());
    }
    assert_eq!((a.streams.open(), b.streams.open()), (1, 1));
    // One ends: the instance it was on is now the emptier one and takes the next.
    drop(held.remove(0));
    let (less, more) = if a.streams.open() == 0 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!((less.streams.open(), more.streams.open()), (0, 1));
    held.push(r.open(ip("10.9.9.9"), 5002).await.unwrap());
    assert_eq!(
        (less.streams.open(), more.streams.open()),
        (1, 1),
        "the emptier one took it"
    );
    let lines = r.info_lines().join("\n");
    assert!(lines.contains("sessions 1, server"), "{lines}");
    cancel.cancel();
}

#[tokio::test]
async fn an_instance_without_a_live_link_gets_no_session() {
    let r = Registry::new(2, 3);
    let cancel = CancellationToken::new();
    let [a, b] = two_instances(&r, &cancel);
    // a's link is ending (cancelled, not yet removed): every new session goes to b.
    a.cancel.cancel();
    for _ in 0..4 {
        drop(r.open(ip("10.9.9.9"), 5002).await.unwrap());
    }
    assert_eq!((a.streams.total(), b.streams.total()), (0, 4));
    // b's link died under it (its driver is gone): a try there fails, no instance is left.
    let (mut dead, requests) = entry(&r, "10.0.0.22");
    drop(requests);
    dead.index = 0;
    r.register_vetted(
        &reg(2, 0, 5002, &["10.9.9.9"], false),
        peer("10.0.0.22"),
        dead,
        true,
    )
    .unwrap();
    let err = r.open(ip("10.9.9.9"), 5002).await.err().expect("refused");
    let refusal = OpenRefusal::of(&err).expect("a refusal");
    assert!(
        refusal.detail.contains("no link opened a stream"),
        "{refusal:?}"
    );
    // A fresh instance 1 link: sessions flow again, to it.
    let fresh = live_link(&r, 0, &cancel);
    r.register_vetted(
        &reg(1, 0, 5002, &["10.9.9.9"], false),
        peer("10.0.0.21"),
        fresh.clone(),
        true,
    )
    .unwrap();
    drop(r.open(ip("10.9.9.9"), 5002).await.unwrap());
    assert_eq!(fresh.streams.total(), 1);
    cancel.cancel();
}
