//! `NI_RTERR`: error information (opcode 0) and control messages (opcode > 0), with the
//! 21-field `*ERR*` text record and SAP's return codes (docs/protocol.md §3).
//!
//! Layout (payload): `NI_RTERR\0`, NI version, opcode, 1 unused byte, return code (i32),
//! text length (u32), text, 4 trailing bytes.

/// `NI_RTERR\0`.
pub const RTERR_EYECATCHER: &[u8; 9] = b"NI_RTERR\0";
/// Bytes before the text.
pub const RTERR_HEADER_LEN: usize = 20;
/// The eyecatcher that opens and closes the text record.
pub const ERR_EYECATCHER: &str = "*ERR*";

/// SAP's NI return codes (docs/protocol.md §3.3).
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
    Some(match code {
        rc::NIEINTERN => "NI-internal error",
        rc::NIEHOST_UNKNOWN => "Host name unknown",
        rc::NIESERV_UNKNOWN => "Service unknown",
        rc::NIESERV_USED => "Service already used",
        rc::NIETIMEOUT => "Time limit reached",
        rc::NIECONN_BROKEN => "Connection to partner broken",
        rc::NIETOO_SMALL => "Data range too small",
        rc::NIEINVAL => "Invalid parameters",
        rc::NIEWAKEUP => "Wake-Up (without data)",
        rc::NIECONN_REFUSED => "Connection setup failed",
        rc::NIEPING => "PING/PONG signal received",
        rc::NIECONN_PENDING => "Connection to partner via NiRouter not yet set up",
        rc::NIEVERSION => "Invalid version",
        rc::NIEMYHOSTNAME => "Local hostname cannot be found",
        rc::NIENOFREEPORT => "No free port in range",
        rc::NIEMYHOST_VERIFY => "Local hostname invalid",
        rc::NIESNC_FAILURE => "Error in the SNC shift in the saprouter",
        rc::NIEOPCODE => "Opcode received",
        rc::NIEQUE_FULL => "Queue limit reached, next package not accepted",
        rc::NIETOO_BIG => "Requested package too large",
        rc::NIEROUT_HOST_UNKNOWN => "Host name unknown",
        rc::NIEROUT_SERV_UNKNOWN => "Service unknown",
        rc::NIEROUT_CONN_REFUSED => "Connection setup failed",
        rc::NIEROUT_INTERN => "NI-internal errors",
        rc::NIEROUT_PERM_DENIED => "Connect from source to destination not allowed",
        rc::NIEROUT_CONN_BROKEN => "Connection terminated",
        rc::NIEROUT_VERSION => "Invalid client version",
        rc::NIEROUT_CANCELED => "Connection cancelled by administrator",
        rc::NIEROUT_SHUTDOWN => "saprouter shutdown",
        rc::NIEROUT_INFO_DENIED => "Information request refused",
        rc::NIEROUT_OVERFLOW => "Max. number of clients reached",
        rc::NIEROUT_MODE_DENIED => "Talkmode not allowed",
        rc::NIEROUT_NOCLIENT => "Client not available",
        rc::NIEROUT_EXTERN => "Error in external library",
        rc::NIEROUT_SNC_FAILURE => "Error in the SNC shift",
        _ => return None,
    })
}

/// Number of NUL-terminated strings in an `*ERR*` record.
pub const ERR_FIELDS: usize = 21;

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
        let mut out = Vec::new();
        for field in self.fields() {
            out.extend_from_slice(field.as_bytes());
            out.push(0);
        }
        out
    }

    /// Parses a 21-field record; tolerant of a missing final NUL, strict on the eyecatchers.
    ///
    /// Fields 16-19 (empty in every capture) are accepted with any content and dropped.
    pub fn decode(text: &[u8]) -> Result<Self, RtErrError> {
        let text = text.strip_suffix(&[0]).unwrap_or(text);
        let mut parts = text.split(|&b| b == 0);
        let mut next = || {
            parts
                .next()
                .ok_or(RtErrError::Record("fewer than 21 fields"))
        };
        if next()? != ERR_EYECATCHER.as_bytes() {
            return Err(RtErrError::Record("missing opening *ERR*"));
        }
        let mut field = || next().map(|f| String::from_utf8_lossy(f).into_owned());
        let record = ErrorRecord {
            counter: field()?,
            error: field()?,
            return_code: field()?,
            component: field()?,
            release: field()?,
            version: field()?,
            module: field()?,
            line: field()?,
            detail: field()?,
            time: field()?,
            system_call: field()?,
            errno: field()?,
            errno_text: field()?,
            error_count: field()?,
            location: field()?,
        };
        for _ in 16..20 {
            next()?;
        }
        if next()? != ERR_EYECATCHER.as_bytes() {
            return Err(RtErrError::Record("missing closing *ERR*"));
        }
        if parts.next().is_some() {
            return Err(RtErrError::Record("data after the closing *ERR*"));
        }
        Ok(record)
    }

    /// The 21 strings in wire order.
    fn fields(&self) -> [&str; ERR_FIELDS] {
        [
            ERR_EYECATCHER,
            &self.counter,
            &self.error,
            &self.return_code,
            &self.component,
            &self.release,
            &self.version,
            &self.module,
            &self.line,
            &self.detail,
            &self.time,
            &self.system_call,
            &self.errno,
            &self.errno_text,
            &self.error_count,
            &self.location,
            "",
            "",
            "",
            "",
            ERR_EYECATCHER,
        ]
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
        Self {
            ni_version,
            opcode: 0,
            return_code,
            text: record.encode(),
            trailer: [0; 4],
        }
    }

    /// Encodes the payload (without the NI length prefix).
    ///
    /// # Panics
    /// When the text is longer than `u32::MAX` bytes (not representable; a caller bug).
    pub fn encode(&self) -> Vec<u8> {
        let text_len = match u32::try_from(self.text.len()) {
            Ok(n) => n,
            Err(_) => panic!("NI_RTERR text of {} bytes is too long", self.text.len()),
        };
        let mut out = Vec::with_capacity(RTERR_HEADER_LEN + self.text.len() + 4);
        out.extend_from_slice(RTERR_EYECATCHER);
        out.push(self.ni_version);
        out.push(self.opcode);
        out.push(0);
        out.extend_from_slice(&self.return_code.to_be_bytes());
        out.extend_from_slice(&text_len.to_be_bytes());
        out.extend_from_slice(&self.text);
        out.extend_from_slice(&self.trailer);
        out
    }

    /// Decodes a payload; the text length is checked against the bytes present before
    /// anything is copied. A missing trailer is tolerated (decoded as zeros).
    ///
    /// A partial trailer (1-3 bytes) is zero-padded; bytes after the trailer (the SNC frame
    /// of opcodes 70/71) are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, RtErrError> {
        if payload.get(..RTERR_EYECATCHER.len()) != Some(&RTERR_EYECATCHER[..]) {
            return Err(RtErrError::NotRtErr);
        }
        let (header, rest) = payload
            .split_at_checked(RTERR_HEADER_LEN)
            .ok_or(RtErrError::Truncated("header"))?;
        let mut h = [0u8; RTERR_HEADER_LEN];
        h.copy_from_slice(header);
        let return_code = i32::from_be_bytes([h[0x0C], h[0x0D], h[0x0E], h[0x0F]]);
        let text_len = u32::from_be_bytes([h[0x10], h[0x11], h[0x12], h[0x13]]);
        let (text, tail) = usize::try_from(text_len)
            .ok()
            .and_then(|n| rest.split_at_checked(n))
            .ok_or(RtErrError::Truncated("text"))?;
        let mut trailer = [0u8; 4];
        for (slot, byte) in trailer.iter_mut().zip(tail) {
            *slot = *byte;
        }
        Ok(Self {
            ni_version: h[0x09],
            opcode: h[0x0A],
            return_code,
            text: text.to_vec(),
            trailer,
        })
    }

    /// The text decoded as an [`ErrorRecord`] (opcode 0 messages).
    pub fn record(&self) -> Result<ErrorRecord, RtErrError> {
        ErrorRecord::decode(&self.text)
    }
}

#[cfg(test)]
mod tests;
