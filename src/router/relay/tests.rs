//! The relay's contract, checked on every path over real loopback TCP connections: each
//! case below runs through the copy relay (both ends other streams, and one end plain TCP),
//! the zero-copy relay (NI-aware towards an NI client), the zero-copy relay without
//! pipes (none at all, and running out midway), and between plain TCP and a reverse-invoke
//! stream of a linkmux link over TCP (either end, zero-copy, NI-aware towards an NI
//! client), in raw and in NI talk mode.

use std::cell::Cell;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::Outcome;
use crate::ni::frame::frame;
use crate::router::clients::Interrupt;
use crate::router::config::{RouterConfig, MIN_RELAY_BUFFER};

mod rig;

use crate::router::conn::BoxConn;
use rig::{
    connected, exchange, link_streams, notice, read_all, read_n, reset, rig, Ends, Mode, Path,
    PATHS,
};

thread_local! {
    /// The most bytes a direction held read and not yet written, since the last reset. The
    /// relay runs on the test's thread (a current-thread runtime).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Called by the relay whenever a direction holds `n` bytes (see `Log::holding`).
pub(super) fn note_held(n: usize) {
    HELD.with(|held| held.set(held.get().max(n)));
}

/// The cases of the contract.
#[derive(Debug, Clone, Copy)]
enum Case {
    /// The client sends and closes; its FIN reaches the server, which then still answers.
    HalfCloseFromClient,
    /// The server sends and closes; its FIN reaches the client, which then still sends.
    HalfCloseFromServer,
    /// Bytes behind the route message and behind `NI_PONG` go first, ahead of new bytes.
    PendingFirst,
    /// The client resets after its bytes arrived: the route ends, the server sees it end.
    ResetByClient,
    /// The server resets after its bytes arrived: the route ends, the client sees it end.
    ResetByServer,
    /// Bulk both ways with this relay buffer (`-B`/`-Q`): never more held per direction.
    BufferBound(usize),
    /// A cancel while a long frame is half through: the frame completes, then the notice.
    InterruptInFrame,
    /// A shutdown between frames: the notice at once, nothing after it.
    InterruptAtBoundary,
    /// A cancel while a frame is half through and the server stalls: no notice (it would
    /// cut the frame), the stream just ends.
    InterruptStalledFrame,
}

/// What the relay is given for the server's sake in these tests.
fn default_buffer() -> usize {
    RouterConfig::default().relay_buffer()
}

/// NI frames of sizes around every threshold of the relay (short frames read through the
/// stack, long ones spliced, a frame longer than a pipe, an empty one).
fn frames(seed: u8) -> Vec<u8> {
    let sizes = [
        0usize, 1, 3, 100, 4096, 8187, 8188, 9000, 70_000, 5, 300_000, 17, 65_536,
    ];
    let mut out = Vec::new();
    for (k, size) in sizes.into_iter().enumerate() {
        let body: Vec<u8> = (0..size)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ k as u8))
            .collect();
        out.extend_from_slice(&frame(&body));
    }
    out
}

/// Runs `case` through `path` in `mode` and checks what both programs receive, the outcome
/// and the `-L` counters.
async fn check(case: Case, path: Path, mode: Mode) {
    let what = format!("{case:?} via {path:?} in {mode:?} mode");
    let buffer = match case {
        Case::BufferBound(buffer) => buffer,
        _ => default_buffer(),
    };
    let pending = match case {
        Case::PendingFirst => (
            frame(b"client bytes behind the route message"),
            frame(b"server bytes behind NI_PONG"),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    HELD.with(|held| held.set(0));
    let (mut ends, mut running) = rig(path, mode, pending.clone(), buffer).await;
    let (up, down) = (frames(1), frames(2));
    let ni = mode == Mode::Ni;
    let expected = match case {
        Case::HalfCloseFromClient => {
            ends.client.write_all(&up).await.unwrap();
            ends.client.shutdown().await.unwrap();
            assert!(
                read_all(&mut ends.server).await == up,
                "{what}: server got it all, then the FIN"
            );
            ends.server.write_all(&down).await.unwrap();
            ends.server.shutdown().await.unwrap();
            assert!(
                read_all(&mut ends.client).await == down,
                "{what}: the answer after the client's FIN"
            );
            outcome(up.len(), down.len(), None)
        }
        Case::HalfCloseFromServer => {
            ends.server.write_all(&down).await.unwrap();
            ends.server.shutdown().await.unwrap();
            assert!(
                read_all(&mut ends.client).await == down,
                "{what}: client got it all, then the FIN"
            );
            ends.client.write_all(&up).await.unwrap();
            ends.client.shutdown().await.unwrap();
            assert!(
                read_all(&mut ends.server).await == up,
                "{what}: the request after the server's FIN"
            );
            outcome(up.len(), down.len(), None)
        }
        Case::PendingFirst | Case::BufferBound(_) => {
            let (at_server, at_client) = exchange(&mut ends, &up, &down).await;
            assert!(
                at_server == [&pending.0[..], &up].concat(),
                "{what}: to the server"
            );
            assert!(
                at_client == [&pending.1[..], &down].concat(),
                "{what}: to the client"
            );
            outcome(
                pending.0.len() + up.len(),
                pending.1.len() + down.len(),
                None,
            )
        }
        Case::ResetByClient => {
            let first = frame(&[9u8; 10_000]);
            ends.client.write_all(&first).await.unwrap();
            assert_eq!(read_n(&mut ends.server, first.len()).await, first, "{what}");
            let Ends { client, mut server } = ends;
            reset(client);
            assert!(
                read_all(&mut server).await.is_empty(),
                "{what}: the server sees the end"
            );
            outcome(first.len(), 0, None)
        }
        Case::ResetByServer => {
            let first = frame(&[8u8; 10_000]);
            ends.server.write_all(&first).await.unwrap();
            assert_eq!(read_n(&mut ends.client, first.len()).await, first, "{what}");
            let Ends { mut client, server } = ends;
            reset(server);
            assert!(
                read_all(&mut client).await.is_empty(),
                "{what}: the client sees the end"
            );
            outcome(0, first.len(), None)
        }
        Case::InterruptInFrame | Case::InterruptAtBoundary | Case::InterruptStalledFrame => {
            let why = match case {
                Case::InterruptAtBoundary => Interrupt::Shutdown,
                _ => Interrupt::Cancel,
            };
            let short = frame(b"short frame before");
            let long = frame(&[5u8; 100_000]);
            let after = frame(b"frame after the interrupt");
            let sent_before = match case {
                Case::InterruptAtBoundary => [&short[..], &long].concat(),
                _ => [&short[..], &long[..4 + 50_000]].concat(),
            };
            ends.server.write_all(&sent_before).await.unwrap();
            assert_eq!(
                read_n(&mut ends.client, sent_before.len()).await,
                sent_before,
                "{what}"
            );
            running.interrupt.send_replace(Some(why));
            let rest_of_long = &long[sent_before.len() - short.len()..];
            if !matches!(case, Case::InterruptStalledFrame) {
                ends.server
                    .write_all(&[rest_of_long, &after].concat())
                    .await
                    .unwrap();
            }
            let at_client = read_all(&mut ends.client).await;
            let passed_after = match case {
                // The frame in flight completes; nothing of the next one.
                Case::InterruptInFrame if ni => rest_of_long.to_vec(),
                _ => Vec::new(),
            };
            let told = match case {
                Case::InterruptStalledFrame => Vec::new(),
                _ if ni => frame(&notice(why)),
                _ => Vec::new(),
            };
            assert!(
                at_client == [&passed_after[..], &told].concat(),
                "{what}: after the interrupt the client got {} bytes, {:?}...",
                at_client.len(),
                &at_client[..at_client.len().min(40)]
            );
            assert!(
                read_all(&mut ends.server).await.is_empty(),
                "{what}: the server's side is closed"
            );
            outcome(0, sent_before.len() + passed_after.len(), Some(why))
        }
    };
    let got = timeout(Duration::from_secs(10), &mut running.relay)
        .await
        .unwrap_or_else(|_| panic!("{what}: the relay ends"))
        .unwrap();
    assert_eq!(got, expected, "{what}: outcome");
    assert_eq!(
        running.traffic.get(),
        (expected.to_server, expected.to_client),
        "{what}: the -L counters"
    );
    let held = HELD.with(Cell::get);
    // Between a socket and a linkmux stream, the direction towards the socket holds nothing
    // in the relay (it splices from the stream's pipe; in NI mode a frame header of 4 bytes
    // passes through the stack): a case whose bytes all go that way reports nothing.
    let link = matches!(
        path,
        Path::LinkServer | Path::LinkClient | Path::LinkServerNoPipe | Path::LinkClientNoPipe
    );
    assert!(held > 0 || link, "{what}: the relay reported what it held");
    assert!(
        held <= buffer,
        "{what}: held {held} bytes, more than the buffer of {buffer}"
    );
}

fn outcome(to_server: usize, to_client: usize, interrupted: Option<Interrupt>) -> Outcome {
    Outcome {
        to_server: to_server as u64,
        to_client: to_client as u64,
        interrupted,
    }
}

/// Runs `case` through every path in both talk modes.
async fn on_every_path(case: Case) {
    for path in PATHS {
        for mode in [Mode::Raw, Mode::Ni] {
            check(case, path, mode).await;
        }
    }
}

#[tokio::test]
async fn half_close_from_the_client_lets_the_server_answer() {
    on_every_path(Case::HalfCloseFromClient).await;
}

#[tokio::test]
async fn half_close_from_the_server_lets_the_client_send() {
    on_every_path(Case::HalfCloseFromServer).await;
}

#[tokio::test]
async fn pending_bytes_go_first() {
    on_every_path(Case::PendingFirst).await;
}

#[tokio::test]
async fn a_reset_by_the_client_ends_the_route() {
    on_every_path(Case::ResetByClient).await;
}

#[tokio::test]
async fn a_reset_by_the_server_ends_the_route() {
    on_every_path(Case::ResetByServer).await;
}

#[tokio::test]
async fn no_direction_holds_more_than_its_buffer() {
    for buffer in [MIN_RELAY_BUFFER, 3000, 20_000] {
        on_every_path(Case::BufferBound(buffer)).await;
    }
}

#[tokio::test]
async fn an_interrupt_inside_a_frame_waits_for_its_end() {
    on_every_path(Case::InterruptInFrame).await;
}

#[tokio::test]
async fn an_interrupt_between_frames_is_told_at_once() {
    on_every_path(Case::InterruptAtBoundary).await;
}

#[tokio::test]
async fn an_interrupt_never_cuts_a_stalled_frame() {
    on_every_path(Case::InterruptStalledFrame).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn raw_routes_over_a_tcp_link_take_the_zero_copy_path() {
    // The link paths above run zero-copy in raw mode: the streams are recognised.
    let (dmz, lan) = link_streams().await;
    assert!(super::link::zero_copy(&dmz).is_some());
    assert!(super::link::zero_copy(&lan).is_some());
    // A stream boxed twice, or any other stream, is not recognised: the copy relay.
    let twice: BoxConn = Box::new(dmz);
    assert!(super::link::zero_copy(&twice).is_none());
    let (plain, _) = connected().await;
    let plain: BoxConn = Box::new(plain);
    assert!(super::link::zero_copy(&plain).is_none());
}

#[tokio::test]
async fn frames_in_pieces_keep_their_boundaries_between_a_socket_and_a_link() {
    // Headers split across reads (and across what reaches the stream's pipe at once):
    // the frame tracking of the link path still knows where each frame ends, so the
    // notice lands right behind the last whole frame.
    for path in [Path::LinkServer, Path::LinkClient] {
        let (mut ends, running) = rig(path, Mode::Ni, (Vec::new(), Vec::new()), 20_000).await;
        let mut sent = Vec::new();
        for (k, size) in [0usize, 1, 3, 100, 5, 17, 9000, 0, 70_000]
            .into_iter()
            .enumerate()
        {
            sent.extend_from_slice(&frame(&vec![k as u8; size]));
        }
        let mut rest = &sent[..];
        let mut piece = 1;
        while !rest.is_empty() {
            let n = piece.min(rest.len());
            ends.server.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            // Pieces of 1 to 7 bytes through the short frames, larger ones later.
            piece = if sent.len() - rest.len() < 10_000 {
                piece % 7 + 1
            } else {
                4093
            };
            tokio::task::yield_now().await;
        }
        assert_eq!(read_n(&mut ends.client, sent.len()).await, sent, "{path:?}");
        running.interrupt.send_replace(Some(Interrupt::Shutdown));
        let told = read_all(&mut ends.client).await;
        assert_eq!(
            told,
            frame(&notice(Interrupt::Shutdown)),
            "{path:?}: the notice"
        );
        let got = timeout(Duration::from_secs(10), running.relay)
            .await
            .expect("the relay ends")
            .unwrap();
        assert_eq!(got.to_client, sent.len() as u64, "{path:?}");
    }
}

#[tokio::test]
async fn the_end_of_an_interrupted_frame_is_not_followed_by_the_next_one() {
    // A buffer large enough to take the rest of the frame and the next frame in one round:
    // after an interrupt only the rest of the frame in flight passes, then the notice.
    for path in [Path::LinkServer, Path::LinkClient, Path::Splice, Path::Copy] {
        for round in 0..5 {
            let buffer = 1 << 20;
            let (mut ends, running) = rig(path, Mode::Ni, (Vec::new(), Vec::new()), buffer).await;
            let long = frame(&[6u8; 60_000]);
            let after = frame(&[7u8; 5_000]);
            ends.server.write_all(&long[..30_000]).await.unwrap();
            assert_eq!(read_n(&mut ends.client, 30_000).await, &long[..30_000]);
            running.interrupt.send_replace(Some(Interrupt::Cancel));
            // The interrupt is seen before the rest arrives (the relay is waiting for it).
            tokio::task::yield_now().await;
            ends.server
                .write_all(&[&long[30_000..], &after[..]].concat())
                .await
                .unwrap();
            let at_client = read_all(&mut ends.client).await;
            let expected = [&long[30_000..], &frame(&notice(Interrupt::Cancel))[..]].concat();
            assert!(
                at_client == expected,
                "{path:?}, round {round}: {} bytes after the interrupt, {} expected",
                at_client.len(),
                expected.len()
            );
            let _ = timeout(Duration::from_secs(10), running.relay).await;
        }
    }
}
