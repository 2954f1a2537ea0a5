//! `ROUTER_ADM`: administration requests and the info reply's binary records
//! (docs/protocol.md §4).
//!
//! Request layout (payload): `ROUTER_ADM\0`, version, command, then a command-specific body.

use std::fmt;

/// `ROUTER_ADM\0`.
pub const ADMIN_EYECATCHER: &[u8; 11] = b"ROUTER_ADM\0";
/// Size of one client record of the info reply.
pub const INFO_CLIENT_LEN: usize = 137;
/// Size of the server record of the info reply.
pub const INFO_SERVER_LEN: usize = 20;
/// Size of the password field of an info request, as pysap sends it (18 chars + NUL).
pub const INFO_PASSWORD_LEN: usize = 19;
/// Size of the address mask of the trace-peer commands.
pub const TRACE_MASK_LEN: usize = 32;

/// The version a router reports: in its error records' location (`SAProuter 40.4 on
/// 'host'`) and in the banner of `saprouter -l`.
pub const ROUTER_VERSION: &str = "40.4";

/// Start of the info lines that carry a routed client's byte counts (`saprouter -L` shows
/// them as columns, `-l` leaves them out).
pub const BYTES_PREFIX: &str = "Bytes of client ";

/// Command codes.
pub mod command {
    pub const INFO: u8 = 2;
    pub const NEW_ROUTTAB: u8 = 3;
    pub const TOGGLE_TRACE: u8 = 4;
    pub const STOP: u8 = 5;
    pub const CANCEL: u8 = 6;
    pub const DUMP_BUFFERS: u8 = 7;
    pub const FLUSH_BUFFERS: u8 = 8;
    pub const SOFT_SHUTDOWN: u8 = 9;
    pub const SET_TRACE_PEER: u8 = 10;
    pub const CLEAR_TRACE_PEER: u8 = 11;
    pub const TRACE_CONNECTION: u8 = 12;
    pub const TRACE_CONNECTION_2: u8 = 13;
    pub const HIDE_ERRORS: u8 = 14;
}

/// One administration command with its body.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// 2: information request (`-l`/`-L`), optional info password.
    Info {
        /// Password field (NUL padding stripped); `None` when the request has no field.
        password: Option<String>,
    },
    /// 3: re-read the route permission table (`-n`).
    NewRoutTab,
    /// 4: toggle the trace level (`-t`).
    ToggleTrace,
    /// 5: stop (`-s`).
    Stop,
    /// 6: cancel routes by client id (`-c`).
    Cancel(Vec<u32>),
    /// 7: dump buffers to the trace (`-d`).
    DumpBuffers,
    /// 8: flush buffers (`-f`).
    FlushBuffers,
    /// 9: soft shutdown (`-p`).
    SoftShutdown,
    /// 10: trace connections from peers matching the mask.
    SetTracePeer(String),
    /// 11: stop tracing peers matching the mask.
    ClearTracePeer(String),
    /// 12: trace the listed client ids.
    TraceConnection(Vec<u32>),
    /// 13: variant of 12, same body.
    TraceConnection2(Vec<u32>),
    /// 14: hide error details from clients (`-z`).
    HideErrors,
}

impl fmt::Debug for AdminCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminCommand::Info { password } => f
                .debug_struct("Info")
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
            AdminCommand::NewRoutTab => f.write_str("NewRoutTab"),
            AdminCommand::ToggleTrace => f.write_str("ToggleTrace"),
            AdminCommand::Stop => f.write_str("Stop"),
            AdminCommand::Cancel(ids) => f.debug_tuple("Cancel").field(ids).finish(),
            AdminCommand::DumpBuffers => f.write_str("DumpBuffers"),
            AdminCommand::FlushBuffers => f.write_str("FlushBuffers"),
            AdminCommand::SoftShutdown => f.write_str("SoftShutdown"),
            AdminCommand::SetTracePeer(m) => f.debug_tuple("SetTracePeer").field(m).finish(),
            AdminCommand::ClearTracePeer(m) => f.debug_tuple("ClearTracePeer").field(m).finish(),
            AdminCommand::TraceConnection(ids) => {
                f.debug_tuple("TraceConnection").field(ids).finish()
            }
            AdminCommand::TraceConnection2(ids) => {
                f.debug_tuple("TraceConnection2").field(ids).finish()
            }
            AdminCommand::HideErrors => f.write_str("HideErrors"),
        }
    }
}

impl AdminCommand {
    /// The command code on the wire.
    pub fn code(&self) -> u8 {
        match self {
            AdminCommand::Info { .. } => command::INFO,
            AdminCommand::NewRoutTab => command::NEW_ROUTTAB,
            AdminCommand::ToggleTrace => command::TOGGLE_TRACE,
            AdminCommand::Stop => command::STOP,
            AdminCommand::Cancel(_) => command::CANCEL,
            AdminCommand::DumpBuffers => command::DUMP_BUFFERS,
            AdminCommand::FlushBuffers => command::FLUSH_BUFFERS,
            AdminCommand::SoftShutdown => command::SOFT_SHUTDOWN,
            AdminCommand::SetTracePeer(_) => command::SET_TRACE_PEER,
            AdminCommand::ClearTracePeer(_) => command::CLEAR_TRACE_PEER,
            AdminCommand::TraceConnection(_) => command::TRACE_CONNECTION,
            AdminCommand::TraceConnection2(_) => command::TRACE_CONNECTION_2,
            AdminCommand::HideErrors => command::HIDE_ERRORS,
        }
    }
}

/// A malformed administration request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// Does not start with `ROUTER_ADM\0`.
    #[error("not a ROUTER_ADM message")]
    NotAdmin,
    /// Shorter than the command needs (a count that lies about the ids present, too).
    #[error("admin request truncated: {0}")]
    Truncated(&'static str),
    /// Command code outside 2..=14.
    #[error("unknown admin command {0}")]
    UnknownCommand(u8),
}

/// A decoded administration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    /// Version byte (pysap 2 or 40, Metasploit 38).
    pub version: u8,
    /// The command.
    pub command: AdminCommand,
}

impl AdminRequest {
    /// Decodes a payload. Bounded: counts are checked against the bytes present before any
    /// allocation; the `00 00` unused bytes may be missing (Metasploit's info request).
    ///
    /// Info password: the bytes after the unused pair up to the first NUL (not cut at 19
    /// bytes, so an over-long password cannot match a shorter configured one by prefix).
    /// Trace-peer mask: up to the first NUL within the 32-byte field (a shorter field is
    /// accepted). Bytes after a complete body are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, AdminError> {
        let rest = payload
            .strip_prefix(&ADMIN_EYECATCHER[..])
            .ok_or(AdminError::NotAdmin)?;
        let (&version, rest) = rest.split_first().ok_or(AdminError::Truncated("version"))?;
        let (&code, body) = rest.split_first().ok_or(AdminError::Truncated("command"))?;
        // The two unused bytes, where the layout has them (they may be missing).
        let after_unused = body.get(2..).unwrap_or(&[]);
        let command = match code {
            command::INFO => AdminCommand::Info {
                password: (!after_unused.is_empty()).then(|| lossy(cstr(after_unused))),
            },
            command::NEW_ROUTTAB => AdminCommand::NewRoutTab,
            command::TOGGLE_TRACE => AdminCommand::ToggleTrace,
            command::STOP => AdminCommand::Stop,
            command::CANCEL => {
                let count = body
                    .get(2..4)
                    .ok_or(AdminError::Truncated("cancel count"))?;
                let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
                AdminCommand::Cancel(read_ids(body.get(4..).unwrap_or(&[]), count, "cancel ids")?)
            }
            command::DUMP_BUFFERS => AdminCommand::DumpBuffers,
            command::FLUSH_BUFFERS => AdminCommand::FlushBuffers,
            command::SOFT_SHUTDOWN => AdminCommand::SoftShutdown,
            command::SET_TRACE_PEER | command::CLEAR_TRACE_PEER => {
                if body.is_empty() {
                    return Err(AdminError::Truncated("trace peer mask"));
                }
                let field = body.get(..TRACE_MASK_LEN).unwrap_or(body);
                let mask = lossy(cstr(field));
                if code == command::SET_TRACE_PEER {
                    AdminCommand::SetTracePeer(mask)
                } else {
                    AdminCommand::ClearTracePeer(mask)
                }
            }
            command::TRACE_CONNECTION | command::TRACE_CONNECTION_2 => {
                let count = body.get(..4).ok_or(AdminError::Truncated("trace count"))?;
                let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
                let count =
                    usize::try_from(count).map_err(|_| AdminError::Truncated("trace ids"))?;
                let ids = read_ids(body.get(4..).unwrap_or(&[]), count, "trace ids")?;
                if code == command::TRACE_CONNECTION {
                    AdminCommand::TraceConnection(ids)
                } else {
                    AdminCommand::TraceConnection2(ids)
                }
            }
            command::HIDE_ERRORS => AdminCommand::HideErrors,
            other => return Err(AdminError::UnknownCommand(other)),
        };
        Ok(Self { version, command })
    }

    /// Encodes the payload as SAP's admin client sends it (pysap's layouts, docs/protocol.md
    /// §4.2).
    ///
    /// Info always carries the 19-byte password field (all NULs for `None`); passwords and
    /// masks longer than their field minus one NUL are cut. Id lists longer than the count
    /// field can express are cut to the first 65535 (cancel) ids.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = ADMIN_EYECATCHER.to_vec();
        out.push(self.version);
        out.push(self.command.code());
        match &self.command {
            AdminCommand::Info { password } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&padded::<INFO_PASSWORD_LEN>(
                    password.as_deref().unwrap_or(""),
                ));
            }
            AdminCommand::Cancel(ids) => {
                let ids = ids.get(..usize::from(u16::MAX)).unwrap_or(ids);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
                ids.iter()
                    .for_each(|id| out.extend_from_slice(&id.to_be_bytes()));
            }
            AdminCommand::SetTracePeer(mask) | AdminCommand::ClearTracePeer(mask) => {
                out.extend_from_slice(&padded::<TRACE_MASK_LEN>(mask));
            }
            AdminCommand::TraceConnection(ids) | AdminCommand::TraceConnection2(ids) => {
                out.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(u32::MAX).to_be_bytes());
                ids.iter()
                    .take(u32::MAX as usize)
                    .for_each(|id| out.extend_from_slice(&id.to_be_bytes()));
            }
            AdminCommand::NewRoutTab
            | AdminCommand::ToggleTrace
            | AdminCommand::Stop
            | AdminCommand::DumpBuffers
            | AdminCommand::FlushBuffers
            | AdminCommand::SoftShutdown
            | AdminCommand::HideErrors => out.extend_from_slice(&[0, 0]),
        }
        out
    }
}

/// `count` big-endian u32 ids from `bytes`; the count is checked against the bytes present
/// before anything is allocated.
fn read_ids(bytes: &[u8], count: usize, what: &'static str) -> Result<Vec<u32>, AdminError> {
    let needed = count.checked_mul(4).ok_or(AdminError::Truncated(what))?;
    let bytes = bytes.get(..needed).ok_or(AdminError::Truncated(what))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The bytes before the first NUL (all of them without one).
fn cstr(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| bytes.get(..n).unwrap_or(bytes))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `text` in an `N`-byte NUL-padded field, cut to leave at least one NUL.
fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [0u8; N];
    for (slot, byte) in field
        .iter_mut()
        .take(N.saturating_sub(1))
        .zip(text.as_bytes())
    {
        *slot = *byte;
    }
    field
}

/// Timestamps as pysap decodes them: high 4 bytes 0, low 4 bytes = Unix seconds - 1e9.
const TIME_BIAS: u64 = 1_000_000_000;

fn encode_time(unix_seconds: u64) -> [u8; 8] {
    let low = u32::try_from(unix_seconds.saturating_sub(TIME_BIAS)).unwrap_or(u32::MAX);
    u64::from(low).to_be_bytes()
}

fn decode_time(bytes: [u8; 8]) -> u64 {
    u64::from_be_bytes(bytes) % (1 << 32) + TIME_BIAS
}

/// The fields laid end to end in an `N`-byte record (zero-filled behind the last field):
/// the writer that [`Fields`] reads back.
fn record<const N: usize>(fields: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for field in fields {
        if let Some(dst) = out.get_mut(at..at + field.len()) {
            dst.copy_from_slice(field);
        }
        at += field.len();
    }
    out
}

/// A fixed-size big-endian reader over a record whose length was checked up front.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let (head, rest) = self.0.split_at(N.min(self.0.len()));
        out.iter_mut().zip(head).for_each(|(o, b)| *o = *b);
        self.0 = rest;
        out
    }

    fn text<const N: usize>(&mut self) -> String {
        lossy(cstr(&self.take::<N>()))
    }
}

/// Flag bits of a client record.
pub mod client_flags {
    pub const ROUTED: u8 = 0x01;
    pub const CONNECTED: u8 = 0x02;
    pub const TRACED: u8 = 0x04;
}

/// One 137-byte client record of the info reply (pysap's field split: id u32, flags u8,
/// connected-on 8 bytes, address 45, partner 45, service 27, 7 unused).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoClient {
    /// Client id (what `-c` cancels).
    pub id: u32,
    /// [`client_flags`] bits.
    pub flags: u8,
    /// Connected-on time, Unix seconds (encoded as pysap decodes it: low 4 bytes =
    /// seconds - 1e9, high 4 bytes 0).
    pub connected_on: u64,
    /// Client address text (truncated to 44 bytes + NUL).
    pub address: String,
    /// Partner address text.
    pub partner: String,
    /// Partner service text.
    pub service: String,
}

impl InfoClient {
    /// The 137-byte record.
    pub fn encode(&self) -> [u8; INFO_CLIENT_LEN] {
        record(&[
            &self.id.to_be_bytes(),
            &[self.flags],
            &encode_time(self.connected_on),
            &padded::<45>(&self.address),
            &padded::<45>(&self.partner),
            &padded::<27>(&self.service),
        ])
    }

    /// Decodes one 137-byte record.
    ///
    /// Longer input is accepted and only its first 137 bytes are read.
    pub fn decode(record: &[u8]) -> Result<Self, AdminError> {
        if record.len() < INFO_CLIENT_LEN {
            return Err(AdminError::Truncated("client record"));
        }
        let mut f = Fields(record);
        Ok(Self {
            id: u32::from_be_bytes(f.take()),
            flags: u8::from_be_bytes(f.take()),
            connected_on: decode_time(f.take()),
            address: f.text::<45>(),
            partner: f.text::<45>(),
            service: f.text::<27>(),
        })
    }
}

/// The 20-byte server record of the info reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoServer {
    /// Router process id.
    pub pid: u32,
    /// Parent router's pid (0 when none).
    pub parent_pid: u32,
    /// Started-on time, Unix seconds (same encoding as [`InfoClient::connected_on`]).
    pub started_on: u64,
    /// Listening port.
    pub port: u16,
    /// Parent router's port (0 when none).
    pub parent_port: u16,
}

impl InfoServer {
    /// The 20-byte record.
    pub fn encode(&self) -> [u8; INFO_SERVER_LEN] {
        record(&[
            &self.pid.to_be_bytes(),
            &self.parent_pid.to_be_bytes(),
            &encode_time(self.started_on),
            &self.port.to_be_bytes(),
            &self.parent_port.to_be_bytes(),
        ])
    }

    /// Decodes the 20-byte record.
    ///
    /// Longer input is accepted and only its first 20 bytes are read.
    pub fn decode(record: &[u8]) -> Result<Self, AdminError> {
        if record.len() < INFO_SERVER_LEN {
            return Err(AdminError::Truncated("server record"));
        }
        let mut f = Fields(record);
        Ok(Self {
            pid: u32::from_be_bytes(f.take()),
            parent_pid: u32::from_be_bytes(f.take()),
            started_on: decode_time(f.take()),
            port: u16::from_be_bytes(f.take()),
            parent_port: u16::from_be_bytes(f.take()),
        })
    }
}

#[cfg(test)]
mod tests;
