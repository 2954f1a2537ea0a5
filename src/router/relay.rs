//! The relay of an established route: bytes both ways until both sides are done, with exact
//! half-close (a FIN is passed on, the other direction keeps flowing), nothing lost or
//! duplicated. On NI routes it follows frame boundaries towards the client, so a cancel or
//! shutdown can end the stream with an `NI_RTERR` (-97/-98) without cutting a frame in two.

use std::future::{pending, Future};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::clients::{Interrupt, Traffic};
use crate::ni::frame::{self, FrameTracker};

/// Read buffer per direction while the traffic is small (grown up to `Relay::buffer`).
const SMALL_BUFFER: usize = 4 * 1024;
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

/// Relays between two connections given as read/write halves, until both directions end,
/// either side fails, or an interrupt arrives. `notice` builds the NI_RTERR payload sent to
/// an NI client on interrupt.
#[allow(clippy::too_many_arguments)]
pub async fn run_split<CR, CW, SR, SW>(
    client_read: CR,
    client_write: CW,
    server_read: SR,
    server_write: SW,
    relay: Relay,
    notice: impl Fn(Interrupt) -> Vec<u8> + Sync,
) -> Outcome
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
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
    let upstream = pump(
        client_read,
        server_write,
        client_pending,
        None,
        interrupts.clone(),
        &|_| None,
        Log {
            traced,
            id,
            direction: "to server",
            counter: &traffic.to_partner,
            buffer,
        },
    );
    let tracker = ni_mode.then(FrameTracker::new);
    let notice_if_ni = |why: Interrupt| ni_mode.then(|| notice(why));
    let downstream = pump(
        server_read,
        client_write,
        server_pending,
        tracker,
        interrupts,
        &notice_if_ni,
        Log {
            traced,
            id,
            direction: "to client",
            counter: &traffic.to_client,
            buffer,
        },
    );
    tokio::pin!(upstream, downstream);
    join(upstream, downstream, &traffic).await
}

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

/// One direction. `Err` carries the byte count when the direction failed (the route is
/// then torn down); `Ok` means EOF was passed on, or an interrupt was handled.
pub(super) async fn pump<R, W>(
    mut reader: R,
    mut writer: W,
    pending_bytes: Bytes,
    mut tracker: Option<FrameTracker>,
    mut interrupts: watch::Receiver<Option<Interrupt>>,
    notice: &(dyn Fn(Interrupt) -> Option<Vec<u8>> + Sync),
    log: Log<'_>,
) -> Result<Pumped, u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut bytes = 0u64;
    if !pending_bytes.is_empty() {
        writer.write_all(&pending_bytes).await.map_err(|_| bytes)?;
        if let Some(t) = tracker.as_mut() {
            t.feed(&pending_bytes);
        }
        bytes += pending_bytes.len() as u64;
        log.relayed(pending_bytes.len());
    }
    drop(pending_bytes);
    // Small while the traffic is small; grown (up to the configured bound) when a read fills
    // it, shrunk again when reads come back small, so an idle session holds little.
    let full = log.buffer.max(1);
    let small = SMALL_BUFFER.min(full);
    let mut buf = vec![0u8; small];
    // The partner's EOF can be this direction's first news of an interrupt (see
    // `splice::pump`); this receiver still tells whether there was one.
    let told = interrupts.clone();
    let wait = interrupted(&mut interrupts);
    tokio::pin!(wait);
    loop {
        let read = tokio::select! {
            biased;
            why = &mut wait => {
                finish(&mut reader, &mut writer, &mut buf, tracker.as_mut(), notice(why)).await;
                return Ok(Pumped { bytes, interrupted: Some(why) });
            }
            read = reader.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) => {
                let pending = *told.borrow();
                if let Some(why) = pending {
                    finish(
                        &mut reader,
                        &mut writer,
                        &mut buf,
                        tracker.as_mut(),
                        notice(why),
                    )
                    .await;
                    return Ok(Pumped {
                        bytes,
                        interrupted: Some(why),
                    });
                }
                // Half-close: pass the FIN on and let the other direction run on.
                let _ = writer.shutdown().await;
                return Ok(Pumped {
                    bytes,
                    interrupted: None,
                });
            }
            Ok(n) => n,
            Err(_) => return Err(bytes),
        };
        let chunk = &buf[..n];
        tokio::select! {
            biased;
            written = writer.write_all(chunk) => written.map_err(|_| bytes)?,
            why = &mut wait => {
                // The peer is not reading; give the write a moment, then tell what we can.
                if timeout(BOUNDARY_GRACE, writer.write_all(chunk)).await.is_err() {
                    return Ok(Pumped { bytes, interrupted: Some(why) });
                }
                if let Some(t) = tracker.as_mut() { t.feed(chunk); }
                finish(&mut reader, &mut writer, &mut buf, tracker.as_mut(), notice(why)).await;
                return Ok(Pumped { bytes: bytes + n as u64, interrupted: Some(why) });
            }
        }
        if let Some(t) = tracker.as_mut() {
            t.feed(chunk);
        }
        bytes += n as u64;
        log.relayed(n);
        if n == buf.len() && n < full {
            buf = vec![0u8; full];
        } else if n < small / 2 && buf.len() > small {
            buf = vec![0u8; small];
        }
    }
}

/// After an interrupt: complete the frame in flight (NI mode), send the notice, close.
pub(super) async fn finish<R, W>(
    reader: &mut R,
    writer: &mut W,
    buf: &mut [u8],
    tracker: Option<&mut FrameTracker>,
    notice: Option<Vec<u8>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let (Some(tracker), Some(notice)) = (tracker, notice) {
        let deadline = Instant::now() + BOUNDARY_GRACE;
        while !tracker.at_boundary() {
            let n = match timeout_at(deadline, reader.read(buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            };
            let chunk = &buf[..n];
            let take = tracker.boundary_within(chunk).unwrap_or(n);
            if timeout_at(deadline, writer.write_all(&chunk[..take]))
                .await
                .map_or(true, |r| r.is_err())
            {
                break;
            }
            tracker.feed(&chunk[..take]);
        }
        if tracker.at_boundary() {
            let _ = timeout(BOUNDARY_GRACE, writer.write_all(&frame::frame(&notice))).await;
        }
    }
    let _ = timeout(BOUNDARY_GRACE, writer.shutdown()).await;
}
