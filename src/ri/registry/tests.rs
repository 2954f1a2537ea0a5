use super::*;
use crate::ri::link::LINK_VERSION;
use crate::ri::mux::StreamGuard;
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
            opener: opener.into(),
            streams: StreamCount::default(),
            cancel: CancellationToken::new(),
            since: SystemTime::now(),
            snc_name: None,
            kind: crate::ri::carrier::Kind::Yamux,
        },
        requests,
    )
}

fn add(r: &Registry, reg: &Register, from: &str) -> Result<(Admitted, LinkEntry), RouteFailure> {
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
    assert_eq!(refused.registration_reason(), "max_servers (1) reached");
    assert_eq!(r.server_count(), 1);
}

#[test]
fn another_instance_cannot_take_a_registered_address() {
    let r = Registry::new(4, 3);
    add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    let refused = add(&r, &reg(2, 0, 5002, &["10.0.0.2"], false), "10.0.0.9").unwrap_err();
    assert_eq!(refused.rc, rc::NIESERV_USED);
    assert!(
        refused
            .registration_reason()
            .contains("already registered by server [0]"),
        "{}",
        refused.registration_reason()
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
    assert_eq!(
        refused.registration_reason(),
        "link 2 beyond the pool of 2 links"
    );
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
    link.opener = opener.into();
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

/// Registers a link without a driver (enough for the choice and the counts) in `slot`.
fn idle_link(r: &Registry, slot: u16) -> LinkEntry {
    let (_, link) = add(r, &reg(1, slot, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    link
}

/// Fills `link` up to `n` open streams; the guards keep them counted.
fn load(link: &LinkEntry, n: usize) -> Vec<StreamGuard> {
    (0..n).map(|_| link.streams.guard()).collect()
}

fn refusal_of(err: io::Error) -> OpenRefusal {
    OpenRefusal::of(&err)
        .unwrap_or_else(|| panic!("not a refusal: {err}"))
        .clone()
}

#[test]
fn a_new_link_takes_the_next_streams_at_once() {
    let r = Registry::new(1, 3);
    let busy = idle_link(&r, 0);
    let _held = load(&busy, 300);
    let fresh = idle_link(&r, 1);
    let mut guards = Vec::new();
    for _ in 0..300 {
        let (link, guard) = r.pick(ip("10.0.0.2"), 5002, &[]).unwrap();
        assert_eq!(
            link.id, fresh.id,
            "the link that came up on demand is used first"
        );
        guards.push(guard);
    }
    // Balanced now: the next streams alternate.
    let a = r.pick(ip("10.0.0.2"), 5002, &[]).unwrap();
    let b = r.pick(ip("10.0.0.2"), 5002, &[]).unwrap();
    assert_ne!(a.0.id, b.0.id);
    assert_eq!(busy.streams.open() + fresh.streams.open(), 602);
}

#[test]
fn a_link_never_carries_more_than_the_cap() {
    let r = Registry::new(1, 2);
    let a = idle_link(&r, 0);
    let b = idle_link(&r, 1);
    let mut guards = Vec::new();
    while let Ok((_, guard)) = r.pick(ip("10.0.0.2"), 5002, &[]) {
        guards.push(guard);
    }
    assert_eq!(guards.len(), 2 * SESSIONS_PER_LINK);
    assert_eq!(a.streams.open(), SESSIONS_PER_LINK);
    assert_eq!(b.streams.open(), SESSIONS_PER_LINK);
    assert_eq!(
        r.pick(ip("10.0.0.2"), 5002, &[]).unwrap_err(),
        NoLink::Full {
            number: 0,
            links: 2
        }
    );
    // One stream ends: exactly one may take its place.
    guards.pop();
    assert!(r.pick(ip("10.0.0.2"), 5002, &[]).is_ok_and(|(_, g)| {
        guards.push(g);
        true
    }));
    assert!(r.pick(ip("10.0.0.2"), 5002, &[]).is_err());
    // The control stream and the reserve stay below what the peer accepts.
    const { assert!(SESSIONS_PER_LINK < crate::ri::mux::EARLIER_MAX_STREAMS_PER_LINK - 1) };
}

#[test]
fn a_burst_from_many_threads_cannot_overshoot_the_cap() {
    let r = Arc::new(Registry::new(1, 1));
    let link = idle_link(&r, 0);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for _ in 0..200 {
                    if let Ok((_, g)) = r.pick(ip("10.0.0.2"), 5002, &[]) {
                        mine.push(g);
                    }
                }
                mine
            })
        })
        .collect();
    let held: Vec<Vec<StreamGuard>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(held.iter().map(Vec::len).sum::<usize>(), SESSIONS_PER_LINK);
    assert_eq!(link.streams.open(), SESSIONS_PER_LINK);
}

#[tokio::test]
async fn a_full_server_refuses_each_session_with_its_reason() {
    let r = Registry::new(1, 1);
    let link = idle_link(&r, 0);
    let _held = load(&link, SESSIONS_PER_LINK);
    let started = Instant::now();
    let refusal = refusal_of(r.open(ip("10.0.0.2"), 5002).await.err().unwrap());
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused at once"
    );
    assert_eq!(refusal.rc, rc::NIEROUT_OVERFLOW);
    assert_eq!(
        refusal.detail,
        format!(
            "NiRIOpen: reverse-invoke server [0] for 10.0.0.2:5002 is full (1 of 1 links, {SESSIONS_PER_LINK} streams each)"
        )
    );
    assert!(!link.cancel.is_cancelled(), "the link and its streams stay");
    assert_eq!(link.streams.open(), SESSIONS_PER_LINK);
}

#[tokio::test]
async fn full_links_wait_for_the_next_link_within_the_budget() {
    let r = Arc::new(Registry::new(1, 2).with_capacity_wait(Duration::from_secs(5)));
    let cancel = CancellationToken::new();
    let first = live_link(&r, 0, &cancel);
    r.register(
        &reg(1, 0, 5002, &["10.0.0.2"], false),
        peer("10.0.0.2"),
        first.clone(),
    )
    .unwrap();
    let _held = load(&first, SESSIONS_PER_LINK);
    let waiting = {
        let r = Arc::clone(&r);
        tokio::spawn(async move { r.open(ip("10.0.0.2"), 5002).await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiting.is_finished(), "waits while the pool has room");
    let second = live_link(&r, 1, &cancel);
    let started = Instant::now();
    r.register(
        &reg(1, 1, 5002, &["10.0.0.2"], false),
        peer("10.0.0.2"),
        second.clone(),
    )
    .unwrap();
    waiting.await.unwrap().expect("opened on the new link");
    assert!(
        started.elapsed() < Duration::from_millis(80),
        "woken by the registration, not by the poll: {:?}",
        started.elapsed()
    );
    assert_eq!(second.streams.total(), 1);
    cancel.cancel();

    // No further link comes: refused after the budget, saying so.
    let r = Registry::new(1, 2).with_capacity_wait(Duration::from_millis(300));
    let only = idle_link(&r, 0);
    let _held = load(&only, SESSIONS_PER_LINK);
    let started = Instant::now();
    let refusal = refusal_of(r.open(ip("10.0.0.2"), 5002).await.err().unwrap());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(refusal.rc, rc::NIEROUT_OVERFLOW);
    assert!(
        refusal.detail.contains("is full (1 of 2 links")
            && refusal.detail.contains("no further link within 0.3s"),
        "{}",
        refusal.detail
    );
}

#[tokio::test]
async fn a_server_that_went_away_is_refused_by_name_never_forgotten() {
    let r = Registry::new(2, 3);
    let (_, link) = add(
        &r,
        &reg(1, 0, 5002, &["10.0.0.2", "lan.example"], false),
        "10.0.0.2",
    )
    .unwrap();
    assert!(r.remove_link(1, link.id));
    assert_eq!(r.server_count(), 0);
    // Still a pseudo address, by address and by name: never an ordinary host.
    assert_eq!(r.lookup("10.0.0.2", 5002), Some(ip("10.0.0.2")));
    assert_eq!(r.lookup("LAN.example", 5002), Some(ip("10.0.0.2")));
    assert_eq!(
        r.lookup("10.0.0.2", 5003),
        None,
        "other port: never registered"
    );
    let started = Instant::now();
    let refusal = refusal_of(r.open(ip("10.0.0.2"), 5002).await.err().unwrap());
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(refusal.rc, rc::NIEROUT_CONN_REFUSED);
    assert!(
        refusal.detail.starts_with(
            "NiRIOpen: reverse-invoke server [0] for 10.0.0.2:5002 has no live link (last seen "
        ),
        "{}",
        refusal.detail
    );
    let lines = r.info_lines().join("\n");
    assert!(
        lines.contains("- away: 10.0.0.2:5002 (server [0], last seen"),
        "{lines}"
    );
    // Its LAN router (a new instance) registers again: served again.
    add(&r, &reg(2, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    assert!(r.pick(ip("10.0.0.2"), 5002, &[]).is_ok());
    assert!(!r.info_lines().join("\n").contains("- away: 10.0.0.2:5002"));
}

#[tokio::test]
async fn an_address_no_longer_registered_and_an_unknown_one_say_so() {
    let r = Registry::new(2, 3);
    add(&r, &reg(1, 0, 5002, &["10.0.0.2"], false), "10.0.0.2").unwrap();
    // The same instance now registers another address.
    add(&r, &reg(1, 0, 5002, &["10.0.0.7"], false), "10.0.0.2").unwrap();
    let refusal = refusal_of(r.open(ip("10.0.0.2"), 5002).await.err().unwrap());
    assert!(
        refusal
            .detail
            .starts_with("NiRIOpen: reverse-invoke server [0] no longer registers 10.0.0.2:5002"),
        "{}",
        refusal.detail
    );
    let refusal = refusal_of(r.open(ip("10.9.9.9"), 5002).await.err().unwrap());
    assert_eq!(
        refusal.detail,
        "NiRIOpen: 10.9.9.9:5002 is not a registered reverse-invoke address"
    );
}

#[tokio::test]
async fn links_that_all_fail_give_the_last_error() {
    let r = Registry::new(1, 2);
    for slot in 0..2 {
        // Registered links whose drivers are gone.
        idle_link(&r, slot);
    }
    let refusal = refusal_of(r.open(ip("10.0.0.2"), 5002).await.err().unwrap());
    assert_eq!(refusal.rc, rc::NIEROUT_CONN_REFUSED);
    assert_eq!(
        refusal.detail,
        "NiRIOpen: reverse-invoke server [0] for 10.0.0.2:5002: no link opened a stream (reverse-invoke link closed)"
    );
}

#[test]
fn known_addresses_are_bounded_and_keep_the_latest() {
    let r = Registry::new(1, 1);
    for i in 0..(MAX_KNOWN as u32 + 10) {
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        let (_, link) = add(&r, &reg(u64::from(i), 0, 5002, &[&addr], false), &addr).unwrap();
        assert!(r.remove_link(u64::from(i), link.id));
    }
    assert_eq!(r.lock().known.len(), MAX_KNOWN);
    let last = std::net::Ipv4Addr::from(0x0a00_0000 + MAX_KNOWN as u32 + 9).to_string();
    assert!(r.lookup(&last, 5002).is_some(), "the latest stays known");
}

#[test]
fn peer_snc_name_is_remembered_while_the_server_is_away() {
    let r = Registry::new(1, 1);
    let (mut link, _requests) = entry(&r, "10.0.0.2");
    link.snc_name = Some("p:CN=LAN".into());
    r.register(
        &reg(1, 0, 5002, &["10.0.0.2"], false),
        peer("10.0.0.2"),
        link.clone(),
    )
    .unwrap();
    assert_eq!(
        r.peer_snc_name(ip("10.0.0.2"), 5002).as_deref(),
        Some("p:CN=LAN")
    );
    r.remove_link(1, link.id);
    assert_eq!(
        r.peer_snc_name(ip("10.0.0.2"), 5002).as_deref(),
        Some("p:CN=LAN")
    );
}

mod shared_address;
