//! The relay of an established route: bytes both ways until both sides are done.
//!
//! The contract, whichever way the bytes go:
//!
//! - Bytes that arrived behind the route message (`client_pending`) and behind a downstream
//!   router's `NI_PONG` (`server_pending`) are passed on first.
//! - Exact half-close: a FIN is passed on and the other direction keeps flowing; the route
//!   ends when both directions have ended, or at once when either side fails (a reset).
//! - Nothing lost or duplicated; [`Outcome`] and the `-L` counters ([`Traffic`]) count every
//!   byte passed on from one side to the other, nothing of our own.
//! - A direction holds at most [`Relay::buffer`] bytes read and not yet written (`-B`, `-Q`,
//!   `-C`).
//! - On NI routes the direction towards the client follows frame boundaries: a cancel or
//!   shutdown completes the frame in flight (for at most [`BOUNDARY_GRACE`]), then ends the
//!   stream with an `NI_RTERR` (-97/-98). A frame is never cut to make room for it: when the
//!   frame does not complete in time, the client gets no notice.
//!
//! [`run`] is the one entry point. The way bytes go follows from the two [`Side`]s, decided
//! where each connection was made:
//!
//! - Both plain TCP, on Linux: zero-copy ([`splice`]). Each direction takes a pipe from a
//!   per-thread pool ([`pipe`]) while bytes are in flight; small messages go through a stack
//!   buffer (a splice pair costs more for a few bytes). Towards an NI client the frame
//!   headers are peeked so long frames are spliced whole and the boundaries stay known
//!   ([`splice_ni`]).
//! - A route between plain TCP and a reverse-invoke stream of a linkmux link over plain
//!   TCP, on Linux: zero-copy through the stream's pipes ([`link`]), frame headers towards
//!   an NI client looked at as on the splice path.
//! - Either end another stream (TLS, a reverse-invoke stream), or not Linux: the copy relay
//!   ([`copy`]), one buffer per direction, grown up to the bound while traffic is bulk.
//! - On the zero-copy path, a direction that cannot have a pipe (descriptor limit) or whose
//!   sockets refuse `splice(2)` carries on with the copy relay over the same sockets, from
//!   where it stood (frame tracking included).

// The system calls of the zero-copy path go through rustix's safe wrappers.
#![forbid(unsafe_code)]

mod copy;
#[cfg(target_os = "linux")]
mod link;
// Built everywhere for linkmux's types; pipes are only made on Linux (elsewhere `take`
// fails and nothing splices).
pub(crate) mod pipe;
#[cfg(target_os = "linux")]
mod splice;
#[cfg(target_os = "linux")]
mod splice_ni;
#[cfg(test)]
mod tests;

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::clients::{Interrupt, Traffic};
use super::conn::Side;
use crate::ni::frame::FrameTracker;

/// How long an interrupted NI stream may take to reach a frame boundary before it is cut.
pub(super) const BOUNDARY_GRACE: Duration = Duration::from_secs(1);

/// What the relay needs besides the two connections.
pub struct Relay {
    /// NI talk mode (frames end to end) rather than raw bytes.
    pub ni_mode: bool,
    /// Client bytes that arrived behind the route message: forwarded first.
    pub client_pending: Bytes,
    /// Server bytes that arrived behind a downstream router's `NI_PONG`: forwarded first.
    pub server_pending: Bytes,
    /// Cancel / shutdown signal of this client.
    pub interrupts: watch::Receiver<Option<Interrupt>>,
    /// Log every transfer at debug level.
    pub traced: bool,
    /// Client id, for log lines.
    pub id: u32,
    /// Counters shown by `saprouter -L`.
    pub traffic: Arc<Traffic>,
    /// Bytes each direction reads at once and holds until written: the client's queue
    /// (`RouterConfig::relay_buffer`, from `-B`, `-Q` and `-C`).
    pub buffer: usize,
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Bytes sent to the server.
    pub to_server: u64,
    /// Bytes sent to the client.
    pub to_client: u64,
    /// Set when a cancel or shutdown ended it.
    pub interrupted: Option<Interrupt>,
}

/// Relays between the two ends of a route until both directions end, either side fails, or
/// an interrupt has been told. `notice` builds the `NI_RTERR` payload sent to an NI client
/// on interrupt. See the module header for which way the bytes go.
///
/// A plain function returning the relay's future, not an `async fn` wrapping
/// [`run_with`]: a wrapper would keep a second copy of the arguments in every session's task.
pub fn run(
    client: Side,
    server: Side,
    relay: Relay,
    notice: impl Fn(Interrupt) -> Vec<u8> + Sync,
) -> impl Future<Output = Outcome> {
    run_with(client, server, relay, notice, Pipes::Pool)
}

/// Where the zero-copy path takes its pipes. The daemon always uses the per-thread pool;
/// tests also use a supply that runs dry, to drive the fallback to the copy relay.
pub(super) enum Pipes {
    /// This thread's pool (new pipes when it is empty).
    Pool,
    /// The pool for this many more pipes, then none.
    #[cfg(test)]
    RunsDry(std::sync::atomic::AtomicUsize),
}

/// [`run`], with the pipes to use.
async fn run_with(
    client: Side,
    server: Side,
    relay: Relay,
    notice: impl Fn(Interrupt) -> Vec<u8> + Sync,
    pipes: Pipes,
) -> Outcome {
    let pipes = &pipes;
    let Relay {
        ni_mode,
        client_pending,
        server_pending,
        interrupts,
        traced,
        id,
        traffic,
        buffer,
    } = relay;
    let no_notice = |_: Interrupt| None;
    let notice_if_ni = move |why: Interrupt| ni_mode.then(|| notice(why));
    let upstream = Direction {
        pending: client_pending,
        tracker: None,
        interrupts: interrupts.clone(),
        notice: &no_notice,
        log: Log {
            traced,
            id,
            direction: "to server",
            counter: &traffic.to_partner,
            buffer,
        },
    };
    let downstream = Direction {
        pending: server_pending,
        tracker: ni_mode.then(FrameTracker::new),
        interrupts,
        notice: &notice_if_ni,
        log: Log {
            traced,
            id,
            direction: "to client",
            counter: &traffic.to_client,
            buffer,
        },
    };
    // A route between a socket and a reverse-invoke stream on a plain TCP link: zero-copy
    // through the link's pipes (the DMZ side: client socket, server stream; the LAN side:
    // client stream, server socket).
    #[cfg(target_os = "linux")]
    if let Some((tcp, stream, tcp_is_client)) = link::pair(&client, &server) {
        return link::run(tcp, stream, tcp_is_client, upstream, downstream, &traffic).await;
    }
    match (client, server) {
        #[cfg(target_os = "linux")]
        (Side::Tcp(client), Side::Tcp(server)) => {
            splice::run(&client, &server, upstream, downstream, &traffic, pipes).await
        }
        (client, server) => {
            // Only the zero-copy path takes pipes.
            let _ = pipes;
            // Boxed: the copy relay's state stays out of every zero-copy session's task.
            Box::pin(copy::run(client, server, upstream, downstream, &traffic)).await
        }
    }
}

/// One direction as set up for either path: what to pass on first, the frame tracker (NI
/// towards the client), the interrupt signal, the notice to give on interrupt, the counters.
pub(super) struct Direction<'a> {
    pub pending: Bytes,
    pub tracker: Option<FrameTracker>,
    pub interrupts: watch::Receiver<Option<Interrupt>>,
    pub notice: &'a Notice<'a>,
    pub log: Log<'a>,
}

/// The `NI_RTERR` payload to tell on interrupt, if this direction tells one.
pub(super) type Notice<'a> = dyn Fn(Interrupt) -> Option<Vec<u8>> + Sync + 'a;

/// Runs both directions until both end, either fails, or an interrupt has been told. The
/// directions are pinned by the caller: passed by value, they would be stored twice.
///
/// A direction still running when the route ends (the other one failed, or an interrupt
/// ended it) is counted up to that moment from `traffic`, which each direction updates as
/// it passes bytes on: a client that reset after receiving data has received it.
pub(super) async fn join<U, D>(
    mut upstream: Pin<&mut U>,
    mut downstream: Pin<&mut D>,
    traffic: &Traffic,
) -> Outcome
where
    U: Future<Output = Result<Pumped, u64>>,
    D: Future<Output = Result<Pumped, u64>>,
{
    let mut outcome = Outcome::default();
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            result = upstream.as_mut(), if !up_done => {
                up_done = true;
                match result {
                    Ok(Pumped { bytes, interrupted }) => {
                        outcome.to_server = bytes;
                        outcome.interrupted = outcome.interrupted.or(interrupted);
                        // An interrupt ends the whole route once the client side is told.
                        if interrupted.is_some() && down_done { break; }
                    }
                    Err(bytes) => { outcome.to_server = bytes; break; }
                }
            }
            result = downstream.as_mut(), if !down_done => {
                down_done = true;
                match result {
                    Ok(Pumped { bytes, interrupted }) => {
                        outcome.to_client = bytes;
                        outcome.interrupted = outcome.interrupted.or(interrupted);
                        if interrupted.is_some() { break; }
                    }
                    Err(bytes) => { outcome.to_client = bytes; break; }
                }
            }
        }
    }
    if !up_done {
        outcome.to_server = traffic.to_partner.load(Ordering::Relaxed);
    }
    if !down_done {
        outcome.to_client = traffic.to_client.load(Ordering::Relaxed);
    }
    outcome
}

/// Per-direction bookkeeping: the trace switch, the byte counter `-L` shows, the buffer size.
pub(super) struct Log<'a> {
    pub traced: bool,
    pub id: u32,
    pub direction: &'static str,
    pub counter: &'a AtomicU64,
    /// Read buffer size (the bound on what this direction holds).
    pub buffer: usize,
}

impl Log<'_> {
    /// Counts `n` bytes passed on (and traces them when asked).
    pub fn relayed(&self, n: usize) {
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        if self.traced {
            tracing::debug!(id = self.id, direction = self.direction, n, "relayed");
        }
    }

    /// Notes that the direction now holds `n` bytes read and not yet written: tests check
    /// the bound (`-B`/`-Q`) on every path. Nothing outside tests.
    #[inline]
    pub fn holding(&self, n: usize) {
        #[cfg(test)]
        tests::note_held(n);
        #[cfg(not(test))]
        let _ = n;
    }
}

/// How one direction ended well: bytes passed on, and the interrupt that ended it, if any.
pub(super) struct Pumped {
    pub bytes: u64,
    pub interrupted: Option<Interrupt>,
}

/// Waits until the client is interrupted; never returns when it cannot be any more.
pub(super) async fn interrupted(rx: &mut watch::Receiver<Option<Interrupt>>) -> Interrupt {
    let seen = rx
        .wait_for(Option::is_some)
        .await
        .map(|value| value.unwrap_or(Interrupt::Cancel));
    match seen {
        Ok(why) => why,
        Err(_) => pending().await,
    }
}
