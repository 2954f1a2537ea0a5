use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

fn policy(failures: u32, secs: u64) -> Option<PenaltyPolicy> {
    Some(PenaltyPolicy {
        failures,
        window: Duration::from_secs(secs),
    })
}

#[test]
fn parses_failures_and_seconds() {
    assert_eq!(
        PenaltyPolicy::parse("10/60"),
        Ok(PenaltyPolicy {
            failures: 10,
            window: Duration::from_secs(60)
        })
    );
    for bad in [
        "", "10", "10/", "/60", "0/60", "10/0", "x/60", "10/y", "10/86401", "-1/5",
    ] {
        assert!(PenaltyPolicy::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn off_never_blocks() {
    let p = Penalties::new(None);
    let now = Instant::now();
    for _ in 0..1000 {
        assert_eq!(p.record_at(ip(1), now), Recorded::Counted);
    }
    assert!(!p.blocked_at(ip(1), now));
    assert_eq!(p.tracked(), 0);
}

#[test]
fn failures_within_the_window_block_that_address_only() {
    let p = Penalties::new(policy(3, 10));
    let t = Instant::now();
    assert_eq!(p.record_at(ip(1), t), Recorded::Counted);
    assert_eq!(p.record_at(ip(1), t), Recorded::Counted);
    assert!(!p.blocked_at(ip(1), t));
    assert_eq!(
        p.record_at(ip(1), t + Duration::from_secs(1)),
        Recorded::Blocked(Duration::from_secs(10))
    );
    assert!(p.blocked_at(ip(1), t + Duration::from_secs(2)));
    assert!(!p.blocked_at(ip(2), t + Duration::from_secs(2)));
    assert!(!p.blocked_at(ip(1), t + Duration::from_secs(11)));
}

#[test]
fn failures_spread_wider_than_the_window_do_not_block() {
    let p = Penalties::new(policy(3, 10));
    let t = Instant::now();
    for i in 0..10u64 {
        assert_eq!(
            p.record_at(ip(1), t + Duration::from_secs(6 * i)),
            Recorded::Counted
        );
    }
}

#[test]
fn repeated_penalties_double_up_to_sixteen_times() {
    let p = Penalties::new(policy(1, 2));
    let mut t = Instant::now();
    let mut lengths = Vec::new();
    for _ in 0..7 {
        match p.record_at(ip(1), t) {
            Recorded::Blocked(d) => {
                lengths.push(d.as_secs());
                t += d;
            }
            Recorded::Counted => panic!("one failure blocks with 1/2"),
        }
    }
    assert_eq!(lengths, [2, 4, 8, 16, 32, 32, 32]);
}

#[test]
fn a_clean_address_starts_over() {
    let p = Penalties::new(policy(1, 2));
    let t = Instant::now();
    assert_eq!(
        p.record_at(ip(1), t),
        Recorded::Blocked(Duration::from_secs(2))
    );
    assert_eq!(
        p.record_at(ip(1), t + Duration::from_secs(2)),
        Recorded::Blocked(Duration::from_secs(4))
    );
    // Clean for the longest penalty (32 s): back to the first length.
    assert_eq!(
        p.record_at(ip(1), t + Duration::from_secs(40)),
        Recorded::Blocked(Duration::from_secs(2))
    );
}

#[test]
fn the_table_is_bounded_and_forgets_expired_entries_first() {
    let p = Penalties::new(policy(5, 1));
    let t = Instant::now();
    let addr = |i: usize| IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
    for i in 0..MAX_SOURCES {
        p.record_at(addr(i), t);
    }
    assert_eq!(p.tracked(), MAX_SOURCES);
    // Full, nothing expired: a new address is not tracked.
    assert_eq!(p.record_at(addr(MAX_SOURCES), t), Recorded::Counted);
    assert_eq!(p.tracked(), MAX_SOURCES);
    // Later, the stale entries are dropped to make room.
    let later = t + Duration::from_secs(17);
    p.record_at(addr(MAX_SOURCES), later);
    assert_eq!(p.tracked(), 1);
}
