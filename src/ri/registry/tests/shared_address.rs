//! Several LAN routers on one pseudo address: vetting, and the choice of instance.

use super::*;

fn add_vetted(
    r: &Registry,
    reg: &Register,
    from: &str,
    vetted: bool,
) -> Result<(Admitted, LinkEntry), RouteFailure> {
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
    assert_eq!(refused.registration_reason(), "max_servers (2) reached");
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
        refused.registration_reason(),
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
