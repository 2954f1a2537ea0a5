//! The HTTP side of `--metrics`: `GET /metrics` (Prometheus/OpenMetrics text), `GET /healthz`
//! (the process answers) and `GET /readyz` (the router accepts routes and, on a LAN router,
//! is registered with its DMZ router). Anything else gets 404.
//!
//! A deliberately small HTTP/1.x responder instead of a full server stack: one request per
//! connection (`Connection: close`), the request head parsed by `httparse` and capped at
//! [`MAX_HEAD`] bytes, the whole exchange under a [`DEADLINE`], at most [`MAX_CONNECTIONS`]
//! exchanges at once (more are closed at once). Request bodies are never read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::families::Metrics;
use super::status::{self, Source, Status};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time allowed for one whole request and response.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Exchanges served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Headers parsed at most.
const MAX_HEADERS: usize = 32;
/// Bytes read and dropped after an error answer, so the close does not reset the answer away.
const MAX_DRAIN: usize = 64 * 1024;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Held while gauges are refreshed and the exposition written.
static SCRAPE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The metrics listener, bound and ready to serve.
pub struct Endpoint {
    listener: TcpListener,
}

/// A response: status line text, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }
}

impl Endpoint {
    /// Binds the listener (fails at start-up, not later, when the address is unusable).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the process ends.
    pub async fn serve(self, metrics: &'static Metrics, source: Source) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::debug!(%peer, "metrics endpoint busy; connection closed");
                continue;
            };
            let source = Arc::clone(&source);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(DEADLINE, exchange(stream, metrics, &source)).await;
                drop(permit);
            });
        }
    }
}

/// Reads one request head, answers it, closes.
async fn exchange(mut stream: TcpStream, metrics: &Metrics, source: &Source) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut drain = true;
    let response = loop {
        match parse(&buf) {
            Parsed::Complete(method, path) => {
                drain = false;
                break answer(&method, &path, metrics, source);
            }
            Parsed::Invalid => break Response::text("400 Bad Request", "bad request\n"),
            Parsed::Partial if buf.len() >= MAX_HEAD => {
                break Response::text("431 Request Header Fields Too Large", "request too large\n")
            }
            Parsed::Partial => {}
        }
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err()
        || stream.write_all(response.body.as_bytes()).await.is_err()
        || stream.shutdown().await.is_err()
    {
        return;
    }
    // After a refused request the client may still be sending; closing with unread bytes
    // would reset the connection and could discard the answer before it is read.
    let mut drained = 0;
    while drain && drained < MAX_DRAIN {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

enum Parsed {
    Complete(String, String),
    Partial,
    Invalid,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => match (request.method, request.path) {
            (Some(method), Some(path)) => Parsed::Complete(method.to_string(), path.to_string()),
            _ => Parsed::Invalid,
        },
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

fn answer(method: &str, path: &str, metrics: &Metrics, source: &Source) -> Response {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match (method, path) {
        ("GET", "/metrics") => {
            // Concurrent scrapes must not interleave the refresh of one with the encoding of
            // another.
            let _one_at_a_time = SCRAPE.lock().unwrap_or_else(|p| p.into_inner());
            refresh(metrics, &source());
            Response {
                status: "200 OK",
                content_type: OPENMETRICS,
                body: metrics.encode(),
            }
        }
        ("GET", "/healthz") => Response::text("200 OK", "ok\n"),
        ("GET", "/readyz") => match not_ready(&source()) {
            None => Response::text("200 OK", "ready\n"),
            Some(why) => Response::text("503 Service Unavailable", format!("not ready: {why}\n")),
        },
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

/// Why the router is not ready, or `None` when it is.
pub fn not_ready(now: &Status) -> Option<&'static str> {
    status::not_ready(now.phase, super::ri::ready())
}

/// Sets the gauges that are read from the router's state rather than counted.
fn refresh(metrics: &Metrics, now: &Status) {
    metrics.sessions_active.set(to_i64(now.routed));
    metrics.preroute.set(to_i64(now.preroute));
    metrics.clients_used.set(to_i64(now.clients_used));
    metrics.clients_max.set(to_i64(now.clients_max));
    metrics.ready.set(i64::from(not_ready(now).is_none()));
    super::ri::refresh(metrics);
    refresh_tls(metrics, now);
}

/// The SNC certificates' expiry dates (the identity may have been reloaded since).
fn refresh_tls(metrics: &Metrics, now: &Status) {
    use super::families::CertRoleLabels;
    let Some(tls) = now.tls else {
        return;
    };
    let expiry = |role| metrics.tls_expiry.get_or_create(&CertRoleLabels { role });
    expiry("identity").set(tls.identity);
    if let Some(first) = tls.first_ca {
        expiry("ca").set(first);
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        assert!(matches!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Complete(m, p) if m == "GET" && p == "/metrics"
        ));
        assert!(matches!(
            parse(b"GET /metrics HTTP/1.1\r\n"),
            Parsed::Partial
        ));
        assert!(matches!(parse(b"\x16\x03\x01\x00"), Parsed::Invalid));
    }

    /// The endpoint answers from whatever status its source reports: no router needed.
    #[test]
    fn answers_from_the_status_source() {
        let source: Source = Arc::new(|| Status {
            phase: status::Phase::Stopping,
            routed: 2,
            preroute: 1,
            clients_used: 5,
            clients_max: 8,
            tls: Some(status::TlsExpiry {
                identity: 1_900_000_000,
                first_ca: None,
            }),
        });
        let metrics = Metrics::new();
        let ready = answer("GET", "/readyz", &metrics, &source);
        assert_eq!(ready.status, "503 Service Unavailable");
        assert_eq!(ready.body, "not ready: stopping\n");
        let scrape = answer("GET", "/metrics?x=1", &metrics, &source);
        assert_eq!(scrape.status, "200 OK");
        for line in [
            "saprouter_sessions_active 2",
            "saprouter_preroute_connections 1",
            "saprouter_client_table_used 5",
            "saprouter_client_table_max 8",
            "saprouter_ready 0",
            "role=\"identity\"} 1900000000",
        ] {
            assert!(scrape.body.contains(line), "{line} in\n{}", scrape.body);
        }
        assert!(!scrape.body.contains("role=\"ca\""), "no CA date reported");
    }
}
