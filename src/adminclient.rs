//! The admin client side of `saprouter -l -L -s -n -c -t -p -d -f -z`: sends one
//! `ROUTER_ADM` request to a running router and reads its answer.

pub mod info_text;

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::ni::admin::{AdminCommand, AdminRequest, InfoClient, InfoServer, INFO_CLIENT_LEN};
use crate::ni::control::{self, opcode};
use crate::ni::frame;
use crate::ni::rterr::{ErrorRecord, RtErr, RTERR_EYECATCHER};
use crate::ni::NI_VERSION;

/// Largest reply frame accepted (the client table of a full router fits easily).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// No router answers at that address.
    #[error("cannot connect to SAProuter at {target}: {source}")]
    Connect {
        /// `host:port`.
        target: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The router did not answer in time.
    #[error("no answer from SAProuter at {0} in time")]
    Timeout(String),
    /// The connection broke.
    #[error("connection to SAProuter lost: {0}")]
    Io(#[from] std::io::Error),
    /// The router refused, with its error record.
    #[error("SAProuter refused: {}{}{} (rc {})", .0.error, if .0.detail.is_empty() { "" } else { ": " }, .0.detail, .0.return_code)]
    Refused(Box<ErrorRecord>),
    /// The answer is not what a router sends.
    #[error("unexpected answer from SAProuter: {0}")]
    Protocol(String),
}

/// The decoded answer to an info request.
#[derive(Debug, Clone)]
pub struct InfoReply {
    /// NI version the router announced.
    pub ni_version: u8,
    /// Client table.
    pub clients: Vec<InfoClient>,
    /// Server record.
    pub server: InfoServer,
    /// Text lines (totals, working directory, routtab, ...).
    pub lines: Vec<String>,
}

struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    deadline: Instant,
    target: String,
}

impl Connection {
    async fn open(host: &str, port: u16, wait: Duration) -> Result<Self, AdminClientError> {
        let target = format!("{host}:{port}");
        let deadline = Instant::now() + wait;
        let stream = match timeout_at(deadline, TcpStream::connect((host, port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(AdminClientError::Connect { target, source }),
            Err(_) => return Err(AdminClientError::Timeout(target)),
        };
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            deadline,
            target,
        })
    }

    async fn send(&mut self, payload: &[u8]) -> Result<(), AdminClientError> {
        match timeout_at(self.deadline, self.stream.write_all(&frame::frame(payload))).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(AdminClientError::Timeout(self.target.clone())),
        }
    }

    /// The next frame, or `None` when the router closed.
    async fn recv(&mut self) -> Result<Option<bytes::Bytes>, AdminClientError> {
        loop {
            match frame::split_frame(&mut self.buf, MAX_REPLY) {
                Ok(Some(payload)) => return Ok(Some(payload)),
                Ok(None) => {}
                Err(err) => return Err(AdminClientError::Protocol(err.to_string())),
            }
            self.buf.reserve(4096);
            match timeout_at(self.deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return Err(err.into()),
                Err(_) => return Err(AdminClientError::Timeout(self.target.clone())),
            }
        }
    }
}

/// Turns an NI_RTERR answer into [`AdminClientError::Refused`].
fn refusal(payload: &[u8]) -> AdminClientError {
    match RtErr::decode(payload).and_then(|m| m.record()) {
        Ok(record) => AdminClientError::Refused(Box::new(record)),
        Err(err) => AdminClientError::Protocol(err.to_string()),
    }
}

/// Asks the router at `host:port` for its NI version, then for its client table.
pub async fn info(
    host: &str,
    port: u16,
    password: Option<&str>,
    wait: Duration,
) -> Result<InfoReply, AdminClientError> {
    let mut conn = Connection::open(host, port, wait).await?;
    conn.send(&control::version_request(NI_VERSION).encode())
        .await?;
    let answer = conn
        .recv()
        .await?
        .ok_or_else(|| AdminClientError::Protocol("closed before the version answer".into()))?;
    let version = RtErr::decode(&answer).map_err(|e| AdminClientError::Protocol(e.to_string()))?;
    if version.opcode != opcode::VERSION_RESPONSE {
        return Err(refusal(&answer));
    }
    let request = AdminRequest {
        version: version.ni_version,
        command: AdminCommand::Info {
            password: Some(password.unwrap_or("").to_string()),
        },
    };
    conn.send(&request.encode()).await?;

    let records = conn
        .recv()
        .await?
        .ok_or_else(|| AdminClientError::Protocol("closed before the client table".into()))?;
    if records.starts_with(RTERR_EYECATCHER) {
        return Err(refusal(&records));
    }
    if records.len() % INFO_CLIENT_LEN != 0 {
        return Err(AdminClientError::Protocol(format!(
            "client table of {} bytes",
            records.len()
        )));
    }
    let clients = records
        .chunks(INFO_CLIENT_LEN)
        .map(InfoClient::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdminClientError::Protocol(e.to_string()))?;
    let server_bytes = conn
        .recv()
        .await?
        .ok_or_else(|| AdminClientError::Protocol("closed before the server record".into()))?;
    let server =
        InfoServer::decode(&server_bytes).map_err(|e| AdminClientError::Protocol(e.to_string()))?;
    let mut lines = Vec::new();
    while let Some(text) = conn.recv().await? {
        if text.is_empty() {
            break;
        }
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        lines.push(String::from_utf8_lossy(&text[..end]).into_owned());
    }
    Ok(InfoReply {
        ni_version: version.ni_version,
        clients,
        server,
        lines,
    })
}

/// Sends one operator command and waits for the router's verdict.
pub async fn command(
    host: &str,
    port: u16,
    command: AdminCommand,
    wait: Duration,
) -> Result<(), AdminClientError> {
    let mut conn = Connection::open(host, port, wait).await?;
    let request = AdminRequest {
        version: NI_VERSION,
        command,
    };
    conn.send(&request.encode()).await?;
    match conn.recv().await? {
        None => Ok(()),
        Some(answer) if answer.is_empty() => Ok(()),
        Some(answer) if answer.starts_with(RTERR_EYECATCHER) => Err(refusal(&answer)),
        Some(answer) => Err(AdminClientError::Protocol(format!(
            "{} unexpected bytes",
            answer.len()
        ))),
    }
}
