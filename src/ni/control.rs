//! Control messages: `NI_RTERR` with a non-zero opcode (docs/protocol.md §5).

use super::rterr::RtErr;

/// Control opcodes.
pub mod opcode {
    /// Error information (not a control message).
    pub const ERROR: u8 = 0;
    /// NI version request.
    pub const VERSION_REQUEST: u8 = 1;
    /// NI version response.
    pub const VERSION_RESPONSE: u8 = 2;
    /// SAP SNC request (`SNCFRAME` follows the header).
    pub const SNC_REQUEST: u8 = 70;
    /// SAP SNC handshake complete.
    pub const SNC_ACK: u8 = 71;
}

/// A version request as pysap and `saprouter -l` send it: opcode 1, rc 0, no text,
/// trailer `*ERR`.
pub fn version_request(ni_version: u8) -> RtErr {
    RtErr {
        ni_version,
        opcode: opcode::VERSION_REQUEST,
        return_code: 0,
        text: Vec::new(),
        trailer: *b"*ERR",
    }
}

/// The router's answer to a version request: opcode 2, byte 0x09 = `ni_version`, rc 0, no
/// text, zero trailer.
pub fn version_response(ni_version: u8) -> RtErr {
    RtErr {
        ni_version,
        opcode: opcode::VERSION_RESPONSE,
        return_code: 0,
        text: Vec::new(),
        trailer: [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_messages() {
        let req = version_request(40);
        assert_eq!((req.opcode, req.return_code, req.trailer), (1, 0, *b"*ERR"));
        assert!(req.text.is_empty());
        let resp = version_response(40);
        assert_eq!((resp.ni_version, resp.opcode, resp.return_code), (40, 2, 0));
        assert_eq!(resp.trailer, [0; 4]);
        assert_eq!(RtErr::decode(&resp.encode()), Ok(resp));
    }
}
