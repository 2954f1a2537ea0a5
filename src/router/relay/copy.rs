//! The copy relay: each direction reads into a buffer of its own and writes it on. Works
//! over any byte stream (TLS, reverse-invoke streams) and is the zero-copy path's fallback.
//! The buffer is small while traffic is small and grows, up to the direction's bound, when a
//! read fills it; an idle session holds little.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use super::{interrupted, join, Direction, Log, Outcome, Pumped, BOUNDARY_GRACE};
use crate::ni::frame::{self, FrameTracker};
use crate::router::clients::Traffic;
use crate::router::conn::Side;

/// Read buffer per direction while the traffic is small (grown up to `Log::buffer`).
const SMALL_BUFFER: usize = 4 * 1024;

/// Relays between two streams of any kind.
pub(super) async fn run(
    client: Side,
    server: Side,
    upstream: Direction<'_>,
    downstream: Direction<'_>,
    traffic: &Traffic,
) -> Outcome {
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    let upstream = pump(client_read, server_write, upstream);
    let downstream = pump(server_read, client_write, downstream);
    tokio::pin!(upstream, downstream);
    join(upstream, downstream, traffic).await
}

/// One direction. `Err` carries the byte count when the direction failed (the route is
/// then torn down); `Ok` means EOF was passed on, or an interrupt was handled.
pub(super) async fn pump<R, W>(
    mut reader: R,
    mut writer: W,
    direction: Direction<'_>,
) -> Result<Pumped, u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Direction {
        pending: pending_bytes,
        mut tracker,
        mut interrupts,
        notice,
        log,
    } = direction;
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
                bytes += finish(&mut reader, &mut writer, &mut buf, tracker.as_mut(), notice(why), &log).await;
                return Ok(Pumped { bytes, interrupted: Some(why) });
            }
            read = reader.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) => {
                let pending = *told.borrow();
                if let Some(why) = pending {
                    bytes += finish(
                        &mut reader,
                        &mut writer,
                        &mut buf,
                        tracker.as_mut(),
                        notice(why),
                        &log,
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
        log.holding(n);
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
                bytes += n as u64;
                log.relayed(n);
                bytes += finish(&mut reader, &mut writer, &mut buf, tracker.as_mut(), notice(why), &log).await;
                return Ok(Pumped { bytes, interrupted: Some(why) });
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
/// Returns the bytes of the frame's rest passed on (the notice is the router's own, not
/// counted).
pub(super) async fn finish<R, W>(
    reader: &mut R,
    writer: &mut W,
    buf: &mut [u8],
    tracker: Option<&mut FrameTracker>,
    notice: Option<Vec<u8>>,
    log: &Log<'_>,
) -> u64
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut bytes = 0u64;
    if let (Some(tracker), Some(notice)) = (tracker, notice) {
        let deadline = Instant::now() + BOUNDARY_GRACE;
        while !tracker.at_boundary() {
            let n = match timeout_at(deadline, reader.read(buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            };
            log.holding(n);
            let chunk = &buf[..n];
            let take = tracker.boundary_within(chunk).unwrap_or(n);
            if timeout_at(deadline, writer.write_all(&chunk[..take]))
                .await
                .map_or(true, |r| r.is_err())
            {
                break;
            }
            tracker.feed(&chunk[..take]);
            bytes += take as u64;
            log.relayed(take);
        }
        if tracker.at_boundary() {
            let _ = timeout(BOUNDARY_GRACE, writer.write_all(&frame::frame(&notice))).await;
        }
    }
    let _ = timeout(BOUNDARY_GRACE, writer.shutdown()).await;
    bytes
}
