//! The frame header of a linkmux link (sans-IO): nine bytes, big-endian, then a body of
//! `len` bytes for `DATA` frames only. The layout is in the module header of
//! [`super`] and in docs/reverse-invoke.md.
//!
//! Every check a receiver makes on a header is made here, before any body byte is read:
//! the kind is known, the stream id is not 0, a `DATA` body is 1 to [`MAX_BODY`] bytes, a
//! `WINDOW` increment is 1 to [`MAX_WINDOW`], and `OPEN` and `FIN` carry no length.

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;
/// Largest `DATA` body: the bound on one stream's turn on the link, so a frame of an
/// interactive stream never waits behind more than one such body per busy stream.
pub const MAX_BODY: u32 = 64 * 1024;
/// Receive window of every stream, in both directions, fixed by the protocol version:
/// a sender's credit never exceeds it, and a receiver holds at most this many bytes of a
/// stream it has not passed on.
pub const MAX_WINDOW: u32 = 256 * 1024;

/// The kind byte (offset 4).
pub mod kind {
    /// Body bytes of a stream.
    pub const DATA: u8 = 0;
    /// More credit for the stream's other end (`len` is the increment).
    pub const WINDOW: u8 = 1;
    /// A new stream (opened by the sender).
    pub const OPEN: u8 = 2;
    /// The sender's direction of the stream is finished (its last byte was sent before).
    pub const FIN: u8 = 3;
    /// The sender abandons the stream in both directions (`len` is a [`reset`](super::reset)
    /// reason).
    pub const RESET: u8 = 4;
}

/// Reasons a `RESET` carries in its length field.
pub mod reset {
    /// The stream's handle was dropped before both directions finished.
    pub const ABORTED: u32 = 0;
    /// The receiver of an `OPEN` holds as many streams as it accepts.
    pub const REFUSED: u32 = 1;
}

/// One decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `len` body bytes of `stream` follow the header.
    Data {
        /// Stream id.
        stream: u32,
        /// Body length, 1..=[`MAX_BODY`].
        len: u32,
    },
    /// The sender grants `credit` more bytes on `stream`.
    Window {
        /// Stream id.
        stream: u32,
        /// Increment, 1..=[`MAX_WINDOW`].
        credit: u32,
    },
    /// The sender opens `stream`.
    Open {
        /// Stream id.
        stream: u32,
    },
    /// The sender's direction of `stream` is finished.
    Fin {
        /// Stream id.
        stream: u32,
    },
    /// The sender abandons `stream`.
    Reset {
        /// Stream id.
        stream: u32,
        /// Why ([`reset`]); unknown reasons are kept as they came.
        reason: u32,
    },
}

/// A header that breaks the protocol: the link ends (a peer that sends it is not a
/// linkmux peer of this version, or is broken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The kind byte is not one of [`kind`].
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// Stream id 0 (no stream has it).
    #[error("frame kind {0} for stream 0")]
    StreamZero(u8),
    /// A `DATA` length of 0 or above [`MAX_BODY`].
    #[error("data frame of {0} bytes (1 to {MAX_BODY} allowed)")]
    BodyLength(u32),
    /// A `WINDOW` increment of 0 or above [`MAX_WINDOW`].
    #[error("window increment {0} (1 to {MAX_WINDOW} allowed)")]
    Credit(u32),
    /// `OPEN` or `FIN` with a non-zero length.
    #[error("frame kind {kind} with length {len} (must be 0)")]
    Length {
        /// The kind byte.
        kind: u8,
        /// The length field.
        len: u32,
    },
}

impl Frame {
    /// The stream the frame is about.
    pub fn stream(&self) -> u32 {
        match *self {
            Frame::Data { stream, .. }
            | Frame::Window { stream, .. }
            | Frame::Open { stream }
            | Frame::Fin { stream }
            | Frame::Reset { stream, .. } => stream,
        }
    }

    /// Body bytes following the header (non-zero for `DATA` only).
    pub fn body_len(&self) -> usize {
        match *self {
            Frame::Data { len, .. } => len as usize,
            _ => 0,
        }
    }

    /// The header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let (stream, k, len) = match *self {
            Frame::Data { stream, len } => (stream, kind::DATA, len),
            Frame::Window { stream, credit } => (stream, kind::WINDOW, credit),
            Frame::Open { stream } => (stream, kind::OPEN, 0),
            Frame::Fin { stream } => (stream, kind::FIN, 0),
            Frame::Reset { stream, reason } => (stream, kind::RESET, reason),
        };
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&stream.to_be_bytes());
        out[4] = k;
        out[5..9].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// Decodes and checks a header.
    pub fn decode(head: &[u8; HEADER_LEN]) -> Result<Frame, FrameError> {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let k = head[4];
        let len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        if k > kind::RESET {
            return Err(FrameError::Kind(k));
        }
        if stream == 0 {
            return Err(FrameError::StreamZero(k));
        }
        match k {
            kind::DATA if (1..=MAX_BODY).contains(&len) => Ok(Frame::Data { stream, len }),
            kind::DATA => Err(FrameError::BodyLength(len)),
            kind::WINDOW if (1..=MAX_WINDOW).contains(&len) => Ok(Frame::Window {
                stream,
                credit: len,
            }),
            kind::WINDOW => Err(FrameError::Credit(len)),
            kind::OPEN | kind::FIN if len != 0 => Err(FrameError::Length { kind: k, len }),
            kind::OPEN => Ok(Frame::Open { stream }),
            kind::FIN => Ok(Frame::Fin { stream }),
            _ => Ok(Frame::Reset {
                stream,
                reason: len,
            }),
        }
    }

    /// Decodes the header at the start of `buf`: `Ok(None)` while fewer than
    /// [`HEADER_LEN`] bytes are there (the length is checked before a byte is read).
    pub fn decode_prefix(buf: &[u8]) -> Result<Option<Frame>, FrameError> {
        match buf.first_chunk::<HEADER_LEN>() {
            Some(head) => Frame::decode(head).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
