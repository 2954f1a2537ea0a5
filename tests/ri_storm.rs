//! Reverse invoke under a logon wave, against the real binaries with SAP's default pool
//! (3 links on demand, `-C 20000`, `-W` 5 s): 1 200 sessions one after another, then a
//! burst of 400 from 8 threads. Every session is routed or cleanly refused within `-W`;
//! no routed session ends before its client closes it; bytes flow on a sample afterwards;
//! nothing ever dials the pseudo address. Each router's memory per session is printed.
//! The same over TLS links (`-K`).

mod common;
mod ri_support;
mod tls_support;

use std::time::{Duration, Instant};

use common::rss_kib;
use ri_support::*;
use saprouter::ri::mux::SESSIONS_PER_LINK;
use tls_support::*;

const IN_A_ROW: usize = 1200;
const THREADS: usize = 8;
const EACH: usize = 50;

fn storm(spec: Spec, expect_snc: Option<&str>, label: &str) {
    let started = Instant::now();
    let target = echo_target();
    let mut pair = Pair::start(spec);
    let trap = Trap::on(&pair.pseudo_host, pair.pseudo);
    if let Some(name) = &expect_snc {
        let log = common::wait_trace(&pair.dmz, "LAN router registered");
        assert!(log.contains(&format!("snc_name={name}")), "{label}: {log}");
    }
    let (dmz_pid, lan_pid) = (pair.dmz.child.id(), pair.lan.child.id());
    let (dmz_rss, lan_rss) = (rss_kib(dmz_pid), rss_kib(lan_pid));
    let capacity = pair.capacity();

    let t = Instant::now();
    let mut tally = in_a_row(&pair, target, IN_A_ROW);
    let row_time = t.elapsed();
    assert_eq!(
        tally.routed.len(),
        IN_A_ROW,
        "{label}: {IN_A_ROW} in a row fit the capacity ({capacity}); refused {:?}, cut {:?}",
        tally.refusal_kinds(),
        tally.cut
    );
    all_open(&tally.routed, "after the sessions in a row");

    let t = Instant::now();
    tally.merge(burst(&pair, target, THREADS, EACH));
    let burst_time = t.elapsed();
    let total = IN_A_ROW + THREADS * EACH;
    assert_eq!(tally.total(), total);
    assert!(tally.cut.is_empty(), "{label}: cut {:?}", tally.cut);
    // The LAN router's whole pool is used, and nothing beyond it.
    assert_eq!(
        tally.routed.len(),
        capacity.min(total),
        "{label}: refused {:?}",
        tally.refusal_kinds()
    );
    for e in &tally.refused {
        assert_eq!(e.rc, -100, "{label}: {:?}", e.detail());
        assert!(
            e.detail().ends_with(&format!(
                "is full (3 of 3 links, {SESSIONS_PER_LINK} streams each)"
            )),
            "{label}: {:?}",
            e.detail()
        );
    }
    assert!(tally.slowest <= W + SLACK, "{label}: {:?}", tally.slowest);
    all_open(&tally.routed, "after the burst");
    let sampled = bytes_flow(&mut tally.routed, 16);
    all_open(&tally.routed, "after the sample");

    let routed = tally.routed.len();
    let dmz_per = rss_per_session(dmz_pid, dmz_rss, routed);
    let lan_per = rss_per_session(lan_pid, lan_rss, routed);

    // Both routers show the capacity; the DMZ router's links are full, none beyond.
    let d = listing(&pair.dmz);
    assert!(
        d.contains(&format!(
            "streams per link {SESSIONS_PER_LINK}, capacity per server {capacity}"
        )),
        "{d}"
    );
    assert_eq!(
        streams_per_link(&d),
        vec![SESSIONS_PER_LINK; 3],
        "{label}:\n{d}"
    );
    let l = listing(&pair.lan);
    assert!(
        l.contains(&format!(
            "capacity {capacity} sessions (3 links x {SESSIONS_PER_LINK} streams)"
        )),
        "{l}"
    );

    // The clients close: every stream is given back.
    drop(tally.routed);
    wait_listing(&pair.dmz, "the streams to close", |t| {
        streams_per_link(t) == vec![0, 0, 0]
    });

    // The LAN router goes away: its pseudo address is refused at once, never dialled.
    pair.kill_lan();
    wait_listing(&pair.dmz, "the LAN router to be gone", |t| {
        t.contains("srv no 0 ")
    });
    match pair.route(target) {
        Attempt::Refused(e, took) => {
            assert_eq!(e.rc, -92, "{:?}", e.detail());
            assert!(
                e.detail().starts_with(&format!(
                    "NiRIOpen: reverse-invoke server [0] for {}:{} has no live link (last seen ",
                    pair.pseudo_host, pair.pseudo
                )),
                "{:?}",
                e.detail()
            );
            assert!(took < Duration::from_secs(1), "refused after {took:?}");
        }
        Attempt::Routed(..) => panic!("{label}: routed without a LAN router"),
        Attempt::Cut(why, _) => panic!("{label}: cut: {why}"),
    }
    assert_eq!(trap.hits(), 0, "{label}: the pseudo address was dialled");

    eprintln!(
        "{label}: {IN_A_ROW} in a row in {row_time:?}, {} x {EACH} burst in {burst_time:?}; routed {routed} (capacity {capacity}), refused {}, slowest answer {:?}; bytes checked on {sampled}; RSS per session: DMZ {dmz_per:.1} KiB, LAN {lan_per:.1} KiB; test {:?}",
        THREADS,
        tally.refused.len(),
        tally.slowest,
        started.elapsed()
    );
}

#[test]
fn a_logon_wave_is_routed_or_cleanly_refused() {
    storm(Spec::default(), None, "plain links");
}

#[test]
fn a_logon_wave_over_tls_links() {
    let pki = Pki::new();
    let ca = Ca::new("Test CA");
    let dmz = pki.identity("dmz", &ca, "SAPROUTER1", &ca, false);
    let lan = pki.identity("lan", &ca, "SAPROUTER2", &ca, false);
    let with_k = |name: &str, files| {
        let mut args = vec!["-K".to_string(), name.to_string()];
        args.extend(snc_args(files));
        args
    };
    storm(
        Spec {
            // Not 127.0.0.1: the KT line admitting the LAN router must not cover users.
            pseudo_host: Some("127.0.0.2".into()),
            dmz_table: "KT \"p:CN=SAPROUTER2\" 127.0.0.2 {pseudo}\n".into(),
            dmz_args: [
                with_k("p:CN=SAPROUTER1", &dmz),
                vec!["-V".into(), "2".into()],
            ]
            .concat(),
            lan_args: with_k("p:CN=SAPROUTER2", &lan),
        },
        Some("p:CN=SAPROUTER2"),
        "TLS links",
    );
}
