//! Unit tests of the set of DMZ routers: back-off, instance ids, resolution plans.

use super::pool::{wants_link, SlotState};
use super::*;
use crate::ri::mux::{StreamCount, GROW_AT, SESSIONS_PER_LINK};
use std::time::SystemTime;

#[test]
fn backoff_starts_below_a_second_and_caps() {
    let cap = Duration::from_secs(5);
    for unit in [0.0, 0.5, 0.999] {
        let first = backoff(0, cap, unit);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
    }
    assert_eq!(backoff(1, cap, 1.0), Duration::from_secs(1));
    assert_eq!(backoff(2, cap, 1.0), Duration::from_secs(2));
    assert_eq!(backoff(3, cap, 1.0), Duration::from_secs(4));
    assert_eq!(backoff(4, cap, 1.0), cap);
    assert_eq!(backoff(u32::MAX, cap, 1.0), cap);
    assert!(backoff(10, cap, 0.0) >= cap / 2);
    assert_eq!(
        backoff(0, Duration::from_secs(1), 1.0),
        Duration::from_millis(500)
    );
}

#[test]
fn instance_ids_differ() {
    assert_ne!(instance_id(), instance_id());
    let j = jitter();
    assert!((0.0..1.0).contains(&j));
}

fn view(name: &str, addr: &str, retired: bool, stopped: bool) -> PoolView {
    PoolView {
        name: name.into(),
        addr: addr.parse().unwrap(),
        retired,
        stopped,
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn each_address_of_a_name_is_one_dmz_router() {
    let found = [sa("10.0.0.1:5001"), sa("10.0.0.2:5001")];
    assert_eq!(
        plan(&[], "dmz", &found),
        vec![Change::Start(found[0]), Change::Start(found[1])]
    );
    // Resolved again: the same addresses change nothing.
    let pools = [
        view("dmz", "10.0.0.1:5001", false, false),
        view("dmz", "10.0.0.2:5001", false, false),
    ];
    assert_eq!(plan(&pools, "dmz", &found), vec![]);
    // One vanished, one appeared.
    let now = [sa("10.0.0.2:5001"), sa("10.0.0.3:5001")];
    assert_eq!(
        plan(&pools, "dmz", &now),
        vec![Change::Retire(found[0]), Change::Start(now[1])]
    );
    // Another name finding an address already served keeps that pool.
    assert_eq!(plan(&pools, "other", &[found[0]]), vec![]);
}

#[test]
fn a_vanished_address_that_returns_goes_on_or_starts_anew() {
    let addr = sa("10.0.0.1:5001");
    let retired_running = [view("dmz", "10.0.0.1:5001", true, false)];
    assert_eq!(
        plan(&retired_running, "dmz", &[addr]),
        vec![Change::Reinstate(addr)]
    );
    let retired_stopped = [view("dmz", "10.0.0.1:5001", true, true)];
    assert_eq!(
        plan(&retired_stopped, "dmz", &[addr]),
        vec![Change::Start(addr)]
    );
    // Still gone: retired once, not again.
    assert_eq!(plan(&retired_running, "dmz", &[]), vec![]);
}

#[tokio::test]
async fn address_literals_resolve_to_themselves() {
    let found = resolve("127.0.0.2", 5001).await.unwrap();
    assert_eq!(found, vec!["127.0.0.2:5001".parse().unwrap()]);
    let found = resolve("::1", 5001).await.unwrap();
    assert_eq!(found, vec!["[::1]:5001".parse().unwrap()]);
    assert!(resolve("no-such-host.invalid", 5001).await.is_err());
}

fn up(streams: &StreamCount) -> SlotState {
    SlotState::Up {
        link_id: 1,
        local: SocketAddr::from(([127, 0, 0, 1], 40000)),
        since: SystemTime::now(),
        streams: streams.clone(),
    }
}

#[test]
fn the_next_link_opens_when_the_busiest_is_half_full() {
    let (a, b) = (StreamCount::default(), StreamCount::default());
    let mut held: Vec<_> = (0..GROW_AT - 1).map(|_| a.guard()).collect();
    assert!(!wants_link(&[up(&a), up(&b)]), "below the threshold");
    held.push(a.guard());
    assert!(
        wants_link(&[up(&a), up(&b)]),
        "the busiest decides, not the average"
    );
    assert!(
        !wants_link(&[up(&a), SlotState::Connecting]),
        "one link at a time"
    );
    assert!(!wants_link(&[
        up(&a),
        SlotState::Down {
            reason: "refused".into()
        }
    ]));
    // Well before the DMZ router's cap: a burst has half a link's room while the next
    // link registers.
    const { assert!(GROW_AT * 2 <= SESSIONS_PER_LINK) };
}

#[test]
fn the_acceptance_names_the_multiplexer_offered_or_version_1() {
    use super::dial::{accepted_kind, refuses_version};
    use crate::ri::carrier::Kind;
    use crate::ri::link::Accept;
    // The raw acceptances a DMZ router sends: version byte after the eyecatcher.
    let accept = |version: u8| {
        let mut bytes = b"RI_ACCEPT\0".to_vec();
        bytes.push(version);
        bytes.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 9]);
        Accept::decode(&bytes).unwrap()
    };
    assert_eq!(accepted_kind(2, &accept(2)), Ok(Kind::Linkmux));
    assert_eq!(accepted_kind(2, &accept(1)), Ok(Kind::Yamux));
    assert_eq!(accepted_kind(1, &accept(1)), Ok(Kind::Yamux));
    // A version never offered is a broken peer.
    assert!(accepted_kind(1, &accept(2)).is_err());
    // An earlier build's answer to version 2: -93, whatever its detail says.
    assert!(refuses_version(-93));
    assert!(!refuses_version(-94) && !refuses_version(-4) && !refuses_version(-100));
}
