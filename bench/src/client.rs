//! The one client used for every path: bulk upload and download, small-message round
//! trips, route set-ups, and idle sessions held open.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::net::Hop;
use super::wire;

/// Sends `total` bytes (blocks of whole frames of `frame_size`, or plain for 0) to the
/// discard service; returns bytes per second, timed until the sink's count arrives.
pub fn upload(hop: &Hop, total: u64, frame_size: u32) -> std::io::Result<f64> {
    upload_with(hop, total, frame_size, &[])
}

/// As [`upload`], to the sink's user-space consumer ([`wire::CONSUMER`]).
pub fn upload_to_consumer(hop: &Hop, total: u64, frame_size: u32) -> std::io::Result<f64> {
    upload_with(hop, total, frame_size, wire::CONSUMER)
}

fn upload_with(hop: &Hop, total: u64, frame_size: u32, prefix: &[u8]) -> std::io::Result<f64> {
    let total = wire::round_total(total, frame_size);
    let chunk = wire::stream_chunk(frame_size);
    let mut s = hop.open()?;
    let start = Instant::now();
    s.write_all(prefix)?;
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
        s.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    let secs = start.elapsed().as_secs_f64();
    let got = u64::from_be_bytes(count);
    if got != total {
        return Err(std::io::Error::other(format!(
            "sink counted {got} of {total} bytes"
        )));
    }
    Ok(total as f64 / secs)
}

/// Asks the source service for `total` bytes and reads them to EOF; bytes per second.
pub fn download(hop: &Hop, total: u64, frame_size: u32) -> std::io::Result<f64> {
    download_with(hop, total, frame_size, 256 * 1024, false)
}

/// As [`download`], read the way a peer reads: [`wire::CONSUMER_READ`] bytes a call, every
/// byte used.
pub fn download_to_consumer(hop: &Hop, total: u64, frame_size: u32) -> std::io::Result<f64> {
    download_with(hop, total, frame_size, wire::CONSUMER_READ, true)
}

fn download_with(
    hop: &Hop,
    total: u64,
    frame_size: u32,
    read_size: usize,
    use_bytes: bool,
) -> std::io::Result<f64> {
    let total = wire::round_total(total, frame_size);
    let mut s = hop.open()?;
    let mut buf = vec![0u8; read_size];
    let start = Instant::now();
    s.write_all(&wire::source_request(total, frame_size))?;
    let (mut got, mut sum) = (0u64, 0u64);
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if use_bytes {
            sum = wire::fold(sum, &buf[..n]);
        }
        got += n as u64;
    }
    std::hint::black_box(sum);
    let secs = start.elapsed().as_secs_f64();
    if got != total {
        return Err(std::io::Error::other(format!(
            "received {got} of {total} bytes"
        )));
    }
    Ok(total as f64 / secs)
}

/// Round-trip times of `rounds` NI messages of `size` payload bytes through the echo
/// service, after a warm-up; sorted, in nanoseconds.
pub fn round_trips(hop: &Hop, rounds: usize, size: usize) -> std::io::Result<Vec<u64>> {
    let mut s = hop.open()?;
    let warm = (rounds / 10).clamp(10, 1000);
    timed_round_trips(&mut s, warm, size)?;
    let mut times = timed_round_trips(&mut s, rounds, size)?;
    times.sort_unstable();
    Ok(times)
}

/// `rounds` NI messages of `size` payload bytes echoed on an open session; the times in
/// nanoseconds, unsorted.
pub fn timed_round_trips(
    s: &mut std::net::TcpStream,
    rounds: usize,
    size: usize,
) -> std::io::Result<Vec<u64>> {
    let message = wire::frame(&vec![0x5a; size]);
    let mut back = vec![0u8; message.len()];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        s.write_all(&message)?;
        s.read_exact(&mut back)?;
        times.push(start.elapsed().as_nanos() as u64);
    }
    if rounds > 0 && back != message {
        return Err(std::io::Error::other("echo changed the message"));
    }
    Ok(times)
}

/// Round trips as in [`round_trips`] while another session downloads in bulk through
/// `bulk` (over the same link, for a reverse-invoke chain); also returns the bulk rate.
pub fn round_trips_beside_bulk(
    echo: &Hop,
    bulk: &Hop,
    rounds: usize,
    size: usize,
) -> std::io::Result<(Vec<u64>, f64)> {
    let bulk = bulk.clone();
    round_trips_beside(echo, rounds, size, move |stop, moved| {
        while !stop.load(Ordering::Relaxed) {
            let mut s = bulk.open()?;
            s.write_all(&wire::source_request(u64::MAX, 0))?;
            let mut buf = vec![0u8; 256 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                moved.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    })
}

/// Round trips as in [`round_trips`] while another session uploads in bulk through `bulk`
/// (the discard service): the answers then travel against the bulk bytes, not behind
/// them. Also returns the bulk rate.
pub fn round_trips_beside_upload(
    echo: &Hop,
    bulk: &Hop,
    rounds: usize,
    size: usize,
) -> std::io::Result<(Vec<u64>, f64)> {
    let mut s = bulk.open()?;
    round_trips_beside(echo, rounds, size, move |stop, moved| {
        let chunk = vec![0x5a_u8; 256 * 1024];
        while !stop.load(Ordering::Relaxed) {
            s.write_all(&chunk)?;
            moved.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// Round trips through `echo` while `bulk` runs on a thread of its own, counting the bytes
/// it moves in `moved` until `stop`; timed from its first byte. Returns the times (sorted)
/// and the bulk rate meanwhile.
fn round_trips_beside(
    echo: &Hop,
    rounds: usize,
    size: usize,
    bulk: impl FnOnce(&AtomicBool, &AtomicU64) -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<(Vec<u64>, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let worker = {
        let (stop, moved) = (stop.clone(), moved.clone());
        std::thread::spawn(move || bulk(&stop, &moved))
    };
    let begin = Instant::now();
    while moved.load(Ordering::Relaxed) == 0 && begin.elapsed() < super::net::STEP {
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    let from = moved.load(Ordering::Relaxed);
    let times = round_trips(echo, rounds, size);
    let rate = (moved.load(Ordering::Relaxed) - from) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let ended = worker
        .join()
        .map_err(|_| std::io::Error::other("bulk worker panicked"))?;
    let times = times?;
    ended?;
    Ok((times, rate))
}

/// The `q` quantile of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Result of a set-up run.
pub struct Setups {
    /// Set-ups completed within the measured time.
    pub in_time: u64,
    /// The measured time, seconds.
    pub secs: f64,
    /// Completed set-ups, those finishing after the time included (for CPU per set-up).
    pub done: u64,
    /// Failed attempts.
    pub errors: u64,
}

/// `clients` loops of connect, route (`NI_ROUTE` → `NI_PONG`), close, for `time`.
pub async fn setups(hop: &Hop, clients: usize, time: Duration) -> Setups {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..clients {
        let (hop, done, errors, stop) = (hop.clone(), done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match hop.open_async(None).await {
                    Ok(s) => {
                        drop(s);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        // Out of ports or descriptors: count it and let the system breathe.
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
    }
    Setups {
        in_time: count,
        secs,
        done: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Opens `n` routed sessions (through `hops`, round robin, from 127.0.0.1..=`aliases`) with
/// at most `parallel` set-ups in flight, checks each with one echo round trip, and returns
/// the open connections.
pub async fn idle_sessions(
    hops: &[Hop],
    n: usize,
    aliases: u8,
    parallel: usize,
) -> std::io::Result<Vec<tokio::net::TcpStream>> {
    use tokio::io::AsyncWriteExt;
    let hops: Arc<Vec<Hop>> = Arc::new(hops.to_vec());
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (hops, gate) = (hops.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(std::io::Error::other)?;
            let hop = &hops[i % hops.len()];
            let source = IpAddr::from([127, 0, 0, 1 + (i % aliases.max(1) as usize) as u8]);
            let mut s = hop.open_async(Some(source)).await?;
            let ping = wire::frame(b"idle");
            s.write_all(&ping).await?;
            let mut back = vec![0u8; ping.len()];
            tokio::time::timeout(super::net::STEP, s.read_exact(&mut back))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            Ok::<_, std::io::Error>(s)
        }));
    }
    let mut open = Vec::with_capacity(n);
    for t in tasks {
        open.push(t.await.map_err(std::io::Error::other)??);
    }
    Ok(open)
}
