use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ri::linkmux::frame::MAX_WINDOW;

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

struct Side {
    opener: Opener,
    inbound: mpsc::UnboundedReceiver<LinkStream>,
    driver: JoinHandle<LinkEnd>,
    cancel: CancellationToken,
}

fn run(link: Link, opener: Opener) -> Side {
    let (tx, inbound) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let driver = tokio::spawn(link.drive(move |s| tx.send(s).is_ok(), cancel.clone()));
    Side {
        opener,
        inbound,
        driver,
        cancel,
    }
}

/// A DMZ and a LAN end over loopback TCP (zero-copy) or an in-memory pipe (user space).
async fn pair(tcp: bool) -> (Side, Side) {
    if tcp {
        let (a, b) = tcp_pair().await;
        let (dmz, o1) = Link::tcp(a, Role::Dmz);
        let (lan, o2) = Link::tcp(b, Role::Lan);
        (run(dmz, o1), run(lan, o2))
    } else {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (dmz, o1) = Link::other(Box::new(a), Role::Dmz);
        let (lan, o2) = Link::other(Box::new(b), Role::Lan);
        (run(dmz, o1), run(lan, o2))
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

const LIMIT: Duration = Duration::from_secs(20);

async fn echo_both_ways(tcp: bool) {
    let (dmz, mut lan) = pair(tcp).await;
    let mut streams = Vec::new();
    for i in 0..4u8 {
        let mut s = dmz.opener.open().unwrap();
        let data = pattern(i, 300_000 + usize::from(i) * 77_777);
        streams.push(tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(&mut s);
            let send = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let recv = r.read_to_end(&mut back);
            let (_, got) = tokio::join!(send, recv);
            got.unwrap();
            assert_eq!(back.len(), data.len());
            assert!(back == data, "echo of stream {i} differs");
        }));
    }
    let echo = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let mut s = lan.inbound.recv().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(&mut s);
                tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        lan
    });
    tokio::time::timeout(LIMIT, async {
        for s in streams {
            s.await.unwrap();
        }
    })
    .await
    .expect("echoes in time");
    let lan = echo.await.unwrap();
    // Every stream is forgotten on both sides once both directions ended.
    for side in [&dmz, &lan] {
        let state = side.opener.shared.lock();
        assert!(
            state.machine.is_empty(),
            "{} streams left",
            state.machine.len()
        );
    }
    dmz.cancel.cancel();
    assert_eq!(dmz.driver.await.unwrap(), LinkEnd::Cancelled);
    assert_eq!(
        tokio::time::timeout(LIMIT, lan.driver)
            .await
            .unwrap()
            .unwrap(),
        LinkEnd::Closed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_echo_over_a_tcp_link() {
    echo_both_ways(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_echo_over_a_user_space_link() {
    echo_both_ways(false).await;
}

/// socket → pipe → link → pipe → socket, several streams at once, every byte in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_copy_moves_bytes_intact() {
    let (dmz, mut lan) = pair(true).await;
    let mut jobs = Vec::new();
    for i in 0..3u8 {
        let (mut client, client_far) = tcp_pair().await;
        let (target_far, mut target) = tcp_pair().await;
        let s = dmz.opener.open().unwrap();
        assert!(s.zero_copy());
        let t = lan.inbound.recv().await.unwrap();
        let len = 5 * 1024 * 1024 + usize::from(i) * 12_345;
        let data = pattern(i + 10, len);
        jobs.push(tokio::spawn(async move {
            let feed = async {
                client.write_all(&data).await.unwrap();
                client.shutdown().await.unwrap();
            };
            let send = async {
                let mut s = s;
                while s.send_from(&client_far).await.unwrap() > 0 {}
                let piped = s
                    .shared
                    .lock()
                    .machine
                    .io_mut(s.id())
                    .unwrap()
                    .tx_pipe
                    .is_some();
                assert!(piped, "the sender's bytes went through its pipe");
                s.shutdown().await.unwrap();
                s
            };
            let recv = async {
                while t.recv_to(&target_far).await.unwrap() > 0 {}
                let piped = t
                    .shared
                    .lock()
                    .machine
                    .io_mut(t.id())
                    .unwrap()
                    .rx_pipe
                    .is_some();
                assert!(piped, "the receiver's bytes went through its pipe");
                drop(target_far);
                t
            };
            let mut got = Vec::new();
            let sink = target.read_to_end(&mut got);
            let (_, _s, _t, read) = tokio::join!(feed, send, recv, sink);
            read.unwrap();
            assert_eq!(got.len(), data.len(), "stream {i}");
            assert!(got == data, "stream {i}: bytes differ");
        }));
    }
    tokio::time::timeout(LIMIT, async {
        for j in jobs {
            j.await.unwrap();
        }
    })
    .await
    .expect("transfers in time");
}

/// A reader that stops stalls only its own stream: the other one moves megabytes, and
/// the stalled one holds exactly one window at the receiver.
async fn stalled_reader(tcp: bool) {
    let (dmz, mut lan) = pair(tcp).await;
    let mut stalled = dmz.opener.open().unwrap();
    let mut busy = dmz.opener.open().unwrap();
    let stalled_far = lan.inbound.recv().await.unwrap();
    let mut busy_far = lan.inbound.recv().await.unwrap();
    let blocked = tokio::spawn(async move {
        let _ = stalled.write_all(&pattern(1, 4 * 1024 * 1024)).await;
        stalled
    });
    let data = pattern(2, 8 * 1024 * 1024);
    let expect = data.clone();
    let moved = tokio::time::timeout(LIMIT, async move {
        let send = async {
            busy.write_all(&data).await.unwrap();
            busy.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let (_, r) = tokio::join!(send, busy_far.read_to_end(&mut got));
        r.unwrap();
        got
    })
    .await
    .expect("the busy stream is not held up");
    assert!(moved == expect);
    assert!(!blocked.is_finished(), "the stalled stream's writer waits");
    let state = lan.opener.shared.lock();
    let held = state.machine.stream(stalled_far.id()).unwrap().buffered();
    assert_eq!(held, MAX_WINDOW);
    drop(state);
    blocked.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_stalls_only_its_stream_tcp() {
    stalled_reader(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_stalls_only_its_stream_user_space() {
    stalled_reader(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resets_the_far_end() {
    let (dmz, mut lan) = pair(true).await;
    let mut s = dmz.opener.open().unwrap();
    s.write_all(b"partial").await.unwrap();
    let mut far = lan.inbound.recv().await.unwrap();
    let mut got = [0u8; 7];
    far.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"partial");
    drop(s);
    let err = tokio::time::timeout(LIMIT, far.read(&mut got))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let err = far.write_all(b"more").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[tokio::test]
async fn garbage_from_the_peer_ends_the_link() {
    let (a, mut b) = tcp_pair().await;
    let (link, opener) = Link::tcp(a, Role::Lan);
    let side = run(link, opener);
    b.write_all(&[0, 0, 0, 1, 9, 0, 0, 0, 0]).await.unwrap();
    let end = tokio::time::timeout(LIMIT, side.driver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        end,
        LinkEnd::Error("link protocol: unknown frame kind 9".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dead_and_its_streams_fail() {
    let (a, _b) = tokio::io::duplex(1024);
    let (link, opener) = Link::other(Box::new(a), Role::Dmz);
    let mut side = run(link, opener);
    let mut s = side.opener.open().unwrap();
    let end = (&mut side.driver).await.unwrap();
    assert_eq!(end, LinkEnd::Silent);
    let mut buf = [0u8; 4];
    assert!(s.read(&mut buf).await.is_err());
    assert!(s.write_all(b"x").await.is_err());
    assert!(side.opener.open().is_err());
}

/// A spliced bulk download and a buffered interactive stream on one TCP link (as a raw
/// download beside an NI session): every round trip completes, bytes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spliced_bulk_beside_a_buffered_stream() {
    let (dmz, mut lan) = pair(true).await;
    // Bulk: LAN side moves a socket's bytes into stream `bulk` (send_from), the DMZ side
    // moves them out to a socket (recv_to).
    let bulk_dmz = dmz.opener.open().unwrap();
    let bulk_lan = lan.inbound.recv().await.unwrap();
    let (mut source, source_far) = tcp_pair().await;
    let (sink_far, mut sink) = tcp_pair().await;
    let stop = CancellationToken::new();
    let feeding = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let chunk = pattern(7, 256 * 1024);
            while !stop.is_cancelled() {
                if source.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        })
    };
    let sending = tokio::spawn(async move {
        loop {
            match bulk_lan.send_from(&source_far).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        bulk_lan
    });
    let receiving = tokio::spawn(async move {
        loop {
            match bulk_dmz.recv_to(&sink_far).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        bulk_dmz
    });
    let draining = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        loop {
            match sink.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    });
    // Interactive: 64-byte messages echoed through buffered reads and writes.
    let mut near = dmz.opener.open().unwrap();
    let mut far = lan.inbound.recv().await.unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        loop {
            if far.read_exact(&mut buf).await.is_err() {
                break;
            }
            if far.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let (mut dmz_driver, mut lan_driver) = (dmz.driver, lan.driver);
    tokio::time::timeout(LIMIT, async {
        for round in 0..3000u32 {
            let message = [round as u8; 64];
            near.write_all(&message).await.unwrap();
            let mut back = [0u8; 64];
            if let Err(e) = near.read_exact(&mut back).await {
                let ends = (
                    tokio::time::timeout(Duration::from_secs(2), &mut dmz_driver).await,
                    tokio::time::timeout(Duration::from_secs(2), &mut lan_driver).await,
                );
                panic!("round {round}: {e}; link ends (dmz, lan): {ends:?}");
            }
            assert_eq!(back, message, "round {round}");
        }
    })
    .await
    .expect("round trips in time");
    stop.cancel();
    assert!(
        !dmz_driver.is_finished() && !lan_driver.is_finished(),
        "link alive"
    );
    drop(near);
    dmz.cancel.cancel();
    lan.cancel.cancel();
    let _ = (feeding.await, sending.await, receiving.await, echo.await);
    assert!(draining.await.unwrap() > 0, "the bulk stream moved bytes");
}
