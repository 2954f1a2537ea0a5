//! The sink every path ends at, run as a child process of its own (`saprouter-bench --sink`)
//! so its descriptors do not count against the client's limit. Four services, one port each:
//!
//! - discard: reads to EOF, then answers the byte count (8 bytes, big-endian) and closes.
//!   By default it drains fast: the runtime's reads of up to 256 KiB, the bytes untouched.
//!   A connection that starts with [`wire::CONSUMER`] is read the way a real peer reads
//!   instead: a thread of its own, blocking `read()` calls of [`wire::CONSUMER_READ`] bytes
//!   into a buffer, every byte summed (the count excludes the marker);
//! - source: reads one NI frame `SRC\0` + total (u64) + frame size (u32), sends that many
//!   bytes (as NI frames of that size, or plain bytes for size 0), then closes;
//! - echo: sends back every byte it reads, until EOF (also the idle sessions' end);
//! - pong: answers the first NI frame with `NI_PONG`, then waits for EOF.
//!
//! It prints `ports <discard> <source> <echo> <pong>` on one line once all listen, and exits
//! when its standard input closes (the bench dies, the sink goes too).

use std::io::{BufRead, Write};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wire;

/// Largest request frame the source service accepts.
const MAX_REQUEST: usize = 64;
/// How long a connection may take to send its request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Which service a listener offers.
#[derive(Clone, Copy)]
enum Service {
    Discard,
    Source,
    Echo,
    Pong,
}

/// Runs the sink until standard input closes. `aliases` extra loopback addresses
/// (127.0.0.2 ...) also get the echo service on the same port, so many sessions to it do not
/// exhaust the source ports of one address pair.
pub fn main(aliases: u8) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let local = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let discard = super::net::listen(local(0))?;
        let source = super::net::listen(local(0))?;
        let echo = super::net::listen(local(0))?;
        let pong = super::net::listen(local(0))?;
        let echo_port = echo.local_addr()?.port();
        let mut extra = Vec::new();
        for i in 2..=aliases.max(1) {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)), echo_port);
            extra.push(super::net::listen(addr)?);
        }
        println!(
            "ports {} {} {} {}",
            discard.local_addr()?.port(),
            source.local_addr()?.port(),
            echo_port,
            pong.local_addr()?.port()
        );
        std::io::stdout().flush()?;
        tokio::spawn(serve(discard, Service::Discard));
        tokio::spawn(serve(source, Service::Source));
        tokio::spawn(serve(echo, Service::Echo));
        tokio::spawn(serve(pong, Service::Pong));
        for listener in extra {
            tokio::spawn(serve(listener, Service::Echo));
        }
        // Ends when the parent closes our standard input.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
                line.clear();
            }
        })
        .await
        .map_err(std::io::Error::other)
    })
}

async fn serve(listener: TcpListener, service: Service) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = handle(stream, service).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn handle(mut stream: TcpStream, service: Service) -> std::io::Result<()> {
    match service {
        Service::Discard => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            // Up to the marker's length first: a consumer connection changes reader here.
            while total < wire::CONSUMER.len() as u64 {
                let n = stream
                    .read(&mut buf[total as usize..wire::CONSUMER.len()])
                    .await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            if buf[..total as usize] == wire::CONSUMER[..] {
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                return tokio::task::spawn_blocking(move || consume(stream))
                    .await
                    .map_err(std::io::Error::other)?;
            }
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            stream.write_all(&total.to_be_bytes()).await?;
            stream.shutdown().await
        }
        Service::Source => {
            let request = tokio::time::timeout(REQUEST_DEADLINE, read_frame(&mut stream))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            let (total, frame) = wire::parse_source_request(&request)
                .ok_or_else(|| std::io::Error::other("bad source request"))?;
            let chunk = wire::stream_chunk(frame);
            let mut left = total;
            while left > 0 {
                let n = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            stream.shutdown().await
        }
        Service::Echo => {
            let (mut reader, mut writer) = stream.split();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                writer.write_all(&buf[..n]).await?;
            }
            writer.shutdown().await
        }
        Service::Pong => {
            let first = tokio::time::timeout(REQUEST_DEADLINE, read_frame(&mut stream)).await;
            if let Ok(Ok(_)) = first {
                stream.write_all(&wire::frame(wire::NI_PONG)).await?;
            }
            let mut buf = [0u8; 512];
            while stream.read(&mut buf).await? > 0 {}
            Ok(())
        }
    }
}

/// The user-space consumer: blocking reads of [`wire::CONSUMER_READ`] bytes, each summed
/// (so the bytes are used, as by a peer that parses them), to EOF; then the count.
fn consume(mut stream: std::net::TcpStream) -> std::io::Result<()> {
    use std::io::Read;
    let mut buf = vec![0u8; wire::CONSUMER_READ];
    let (mut total, mut sum) = (0u64, 0u64);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sum = wire::fold(sum, &buf[..n]);
        total += n as u64;
    }
    std::hint::black_box(sum);
    stream.write_all(&total.to_be_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// Reads one NI frame of at most [`MAX_REQUEST`] bytes.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_REQUEST {
        return Err(std::io::Error::other("request frame too big"));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}
