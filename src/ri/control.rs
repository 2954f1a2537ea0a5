//! Messages on a link's control stream (sans-IO), besides the plain heartbeat of
//! [`link`](super::link):
//!
//! - a heartbeat may carry an 8-byte token: `RI_ALIVE\0` + token (big-endian u64);
//! - the receiver of a token answers `RI_ECHO\0` + the same token, so the sender can time the
//!   round trip (`saprouter_ri_heartbeat_rtt_seconds`).
//!
//! Both fit the link protocol's rule that control frames of up to 64 bytes which a side
//! does not know are read and ignored: a peer without echoes just drops the token or the
//! echo, and no round trip is timed.

use super::link::HEARTBEAT;

/// Eyecatcher of an echo.
pub const ECHO: &[u8; 8] = b"RI_ECHO\0";

/// A control message as far as this build understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A heartbeat; `Some(token)` asks for an echo.
    Heartbeat(Option<u64>),
    /// The echo of one of our tokens.
    Echo(u64),
    /// Anything else (ignored).
    Other,
}

/// A heartbeat that asks for an echo of `token`.
pub fn heartbeat(token: u64) -> Vec<u8> {
    let mut out = HEARTBEAT.to_vec();
    out.extend_from_slice(&token.to_be_bytes());
    out
}

/// The echo of `token`.
pub fn echo(token: u64) -> Vec<u8> {
    let mut out = ECHO.to_vec();
    out.extend_from_slice(&token.to_be_bytes());
    out
}

/// Reads a control frame's payload.
pub fn decode(payload: &[u8]) -> Control {
    let token = |rest: &[u8]| <[u8; 8]>::try_from(rest).ok().map(u64::from_be_bytes);
    if let Some(rest) = payload.strip_prefix(&HEARTBEAT[..]) {
        return Control::Heartbeat(token(rest));
    }
    match payload.strip_prefix(&ECHO[..]).and_then(token) {
        Some(t) => Control::Echo(t),
        None => Control::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_old_forms() {
        assert_eq!(decode(&heartbeat(7)), Control::Heartbeat(Some(7)));
        assert_eq!(decode(&echo(u64::MAX)), Control::Echo(u64::MAX));
        assert_eq!(decode(HEARTBEAT), Control::Heartbeat(None));
        assert_eq!(heartbeat(1).len(), 17);
        assert_eq!(decode(b"RI_ECHO\0\x01"), Control::Other);
        assert_eq!(decode(b"RI_ALIVE\0\x01\x02"), Control::Heartbeat(None));
        assert_eq!(decode(b"whatever"), Control::Other);
        assert_eq!(decode(b""), Control::Other);
    }
}
