//! NI framing: a 4-byte big-endian length, then that many payload bytes.
//!
//! Also the frame-boundary tracker the relay uses to know when it may inject a message of
//! its own (an `NI_RTERR` on cancel or shutdown) without cutting a client frame in two.

use bytes::{Bytes, BytesMut};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Largest first message SAP's router reads on a new connection (payload bytes).
pub const MAX_FIRST_FRAME: usize = 10024;
/// Keepalive request payload.
pub const NI_PING: &[u8; 8] = b"NI_PING\0";
/// Keepalive answer payload; also the "route accepted" reply.
pub const NI_PONG: &[u8; 8] = b"NI_PONG\0";

/// A frame header announced more payload than the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message length {length} exceeds max ({max})")]
pub struct FrameTooBig {
    /// The announced payload length.
    pub length: u32,
    /// The limit in force.
    pub max: usize,
}

/// One complete frame (header and payload) for `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    todo!("wire helper")
}

/// Appends one frame for `payload` to `dst`.
pub fn put_frame(dst: &mut BytesMut, payload: &[u8]) {
    todo!("wire helper")
}

/// Splits one complete frame off the front of `buf` and returns its payload.
///
/// `Ok(None)`: not enough bytes yet (nothing consumed). A header announcing more than
/// `max_len` payload bytes is an error as soon as the 4 header bytes are present, before
/// any body arrives; nothing is allocated from the length field.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameTooBig> {
    todo!("wire helper")
}

/// Follows NI frame boundaries in a byte stream without buffering it.
///
/// Feed every chunk that passes through; [`FrameTracker::at_boundary`] then says whether the
/// bytes seen so far end exactly at the end of a frame.
#[derive(Debug, Clone, Default)]
pub struct FrameTracker {
    header: [u8; HEADER_LEN],
    header_have: usize,
    body_left: u64,
}

impl FrameTracker {
    /// A tracker at the start of a stream (a boundary).
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for `chunk`, the next bytes of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        todo!("wire helper")
    }

    /// How many bytes of `chunk` can be forwarded so that the stream then ends at a frame
    /// boundary, if one lies within `chunk` (`Some(0)` when already at a boundary).
    /// Does not change the tracker.
    pub fn boundary_within(&self, chunk: &[u8]) -> Option<usize> {
        todo!("wire helper")
    }

    /// True when the bytes fed so far end exactly at the end of a frame.
    pub fn at_boundary(&self) -> bool {
        self.header_have == 0 && self.body_left == 0
    }
}
