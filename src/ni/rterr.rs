//! `NI_RTERR`: error information (opcode 0) and control messages (opcode > 0), with the
//! 21-field `*ERR*` text record and SAP's return codes (protocol.md §3).
//!
//! Layout (payload): `NI_RTERR\0`, NI version, opcode, 1 unused byte, return code (i32),
//! text length (u32), text, 4 trailing bytes.

/// `NI_RTERR\0`.
pub const RTERR_EYECATCHER: &[u8; 9] = b"NI_RTERR\0";
/// Bytes before the text.
pub const RTERR_HEADER_LEN: usize = 20;
/// The eyecatcher that opens and closes the text record.
pub const ERR_EYECATCHER: &str = "*ERR*";

/// SAP's NI return codes (protocol.md §3.3).
pub mod rc {
    pub const NIEINTERN: i32 = -1;
    pub const NIEHOST_UNKNOWN: i32 = -2;
    pub const NIESERV_UNKNOWN: i32 = -3;
    pub const NIESERV_USED: i32 = -4;
    pub const NIETIMEOUT: i32 = -5;
    pub const NIECONN_BROKEN: i32 = -6;
    pub const NIETOO_SMALL: i32 = -7;
    pub const NIEINVAL: i32 = -8;
    pub const NIEWAKEUP: i32 = -9;
    pub const NIECONN_REFUSED: i32 = -10;
    pub const NIEPING: i32 = -11;
    pub const NIECONN_PENDING: i32 = -12;
    pub const NIEVERSION: i32 = -13;
    pub const NIEMYHOSTNAME: i32 = -14;
    pub const NIENOFREEPORT: i32 = -15;
    pub const NIEMYHOST_VERIFY: i32 = -16;
    pub const NIESNC_FAILURE: i32 = -17;
    pub const NIEOPCODE: i32 = -18;
    pub const NIEQUE_FULL: i32 = -19;
    pub const NIETOO_BIG: i32 = -20;
    pub const NIEROUT_HOST_UNKNOWN: i32 = -90;
    pub const NIEROUT_SERV_UNKNOWN: i32 = -91;
    pub const NIEROUT_CONN_REFUSED: i32 = -92;
    pub const NIEROUT_INTERN: i32 = -93;
    pub const NIEROUT_PERM_DENIED: i32 = -94;
    pub const NIEROUT_CONN_BROKEN: i32 = -95;
    pub const NIEROUT_VERSION: i32 = -96;
    pub const NIEROUT_CANCELED: i32 = -97;
    pub const NIEROUT_SHUTDOWN: i32 = -98;
    pub const NIEROUT_INFO_DENIED: i32 = -99;
    pub const NIEROUT_OVERFLOW: i32 = -100;
    pub const NIEROUT_MODE_DENIED: i32 = -101;
    pub const NIEROUT_NOCLIENT: i32 = -102;
    pub const NIEROUT_EXTERN: i32 = -103;
    pub const NIEROUT_SNC_FAILURE: i32 = -104;
}

/// SAP's standard text for a return code ("Connect from source to destination not
/// allowed" for -94, ...); `None` for codes outside the table.
pub fn rc_text(code: i32) -> Option<&'static str> {
    todo!("wire helper")
}

/// The NUL-separated text of an error message: 21 fields between two `*ERR*` eyecatchers.
/// Field names follow what SAP's clients print (LOCATION, ERROR, TIME, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorRecord {
    /// Field 1, always "1" in captures.
    pub counter: String,
    /// Field 2, the short text ("route permission denied (...)").
    pub error: String,
    /// Field 3, the decimal return code ("-94").
    pub return_code: String,
    /// Field 4, "NI (network interface)".
    pub component: String,
    /// Field 5, kernel release ("753").
    pub release: String,
    /// Field 6, NI version ("40").
    pub version: String,
    /// Field 7, source module.
    pub module: String,
    /// Field 8, source line.
    pub line: String,
    /// Field 9, detail text.
    pub detail: String,
    /// Field 10, ctime-style local time ("Mon Apr 26 07:29:22 2021").
    pub time: String,
    /// Field 11, failing system call ("connect"), usually empty.
    pub system_call: String,
    /// Field 12, errno as decimal text, usually empty.
    pub errno: String,
    /// Field 13, errno text ("Connection refused").
    pub errno_text: String,
    /// Field 14, the counter clients show as COUNTER.
    pub error_count: String,
    /// Field 15, "SAProuter 40.4 on 'host'".
    pub location: String,
}

/// A malformed `NI_RTERR` message or error record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtErrError {
    /// Does not start with `NI_RTERR\0`.
    #[error("not an NI_RTERR message")]
    NotRtErr,
    /// Shorter than its header or its declared text.
    #[error("NI_RTERR truncated: {0}")]
    Truncated(&'static str),
    /// The text is not a 21-field `*ERR*` record.
    #[error("malformed *ERR* record: {0}")]
    Record(&'static str),
}

impl ErrorRecord {
    /// The 21 NUL-terminated fields (eyecatcher, fields 1-15, four empty, eyecatcher).
    pub fn encode(&self) -> Vec<u8> {
        todo!("wire helper")
    }

    /// Parses a 21-field record; tolerant of a missing final NUL, strict on the eyecatchers.
    pub fn decode(text: &[u8]) -> Result<Self, RtErrError> {
        todo!("wire helper")
    }
}

/// An `NI_RTERR` message: error information (opcode 0) or a control message (opcode > 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtErr {
    /// NI version of the sender (byte 0x09).
    pub ni_version: u8,
    /// 0 = error information; 1 version request; 2 version response; 70/71 SNC.
    pub opcode: u8,
    /// Return code.
    pub return_code: i32,
    /// The raw text (for opcode 0 an encoded [`ErrorRecord`]).
    pub text: Vec<u8>,
    /// The 4 bytes after the text (zeros from SAP's router; pysap sends `*ERR`).
    pub trailer: [u8; 4],
}

impl RtErr {
    /// Error information carrying `record`, with a zero trailer.
    pub fn error(ni_version: u8, return_code: i32, record: &ErrorRecord) -> Self {
        todo!("wire helper")
    }

    /// Encodes the payload (without the NI length prefix).
    pub fn encode(&self) -> Vec<u8> {
        todo!("wire helper")
    }

    /// Decodes a payload; the text length is checked against the bytes present before
    /// anything is copied. A missing trailer is tolerated (decoded as zeros).
    pub fn decode(payload: &[u8]) -> Result<Self, RtErrError> {
        todo!("wire helper")
    }

    /// The text decoded as an [`ErrorRecord`] (opcode 0 messages).
    pub fn record(&self) -> Result<ErrorRecord, RtErrError> {
        ErrorRecord::decode(&self.text)
    }
}
