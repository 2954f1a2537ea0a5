//! `ROUTER_ADM`: administration requests and the info reply's binary records
//! (protocol.md §4).
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
        todo!("wire helper")
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
    pub fn decode(payload: &[u8]) -> Result<Self, AdminError> {
        todo!("wire helper")
    }

    /// Encodes the payload as SAP's admin client sends it (pysap's layouts, §4.2).
    pub fn encode(&self) -> Vec<u8> {
        todo!("wire helper")
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
        todo!("wire helper")
    }

    /// Decodes one 137-byte record.
    pub fn decode(record: &[u8]) -> Result<Self, AdminError> {
        todo!("wire helper")
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
        todo!("wire helper")
    }

    /// Decodes the 20-byte record.
    pub fn decode(record: &[u8]) -> Result<Self, AdminError> {
        todo!("wire helper")
    }
}
