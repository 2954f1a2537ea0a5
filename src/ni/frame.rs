//! NI framing: a 4-byte big-endian length, then that many payload bytes.
//!
//! Also the frame-boundary tracker the relay uses to know when it may inject a message of
//! its own (an `NI_RTERR` on cancel or shutdown) without cutting a client frame in two.

use bytes::{Buf, BufMut, Bytes, BytesMut};

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

/// The 4 header bytes for a payload of `len` bytes.
///
/// # Panics
/// When `len` exceeds `u32::MAX`: such a payload cannot be framed at all, and writing a
/// wrong length would desynchronise the peer, so this is treated as a caller bug.
pub fn header(len: usize) -> [u8; HEADER_LEN] {
    match u32::try_from(len) {
        Ok(n) => n.to_be_bytes(),
        Err(_) => panic!("NI payload of {len} bytes exceeds the 4 GiB frame limit"),
    }
}

/// One complete frame (header and payload) for `payload`.
///
/// # Panics
/// When `payload` is longer than `u32::MAX` bytes (see [`header`]).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(payload.len()));
    out.extend_from_slice(&header(payload.len()));
    out.extend_from_slice(payload);
    out
}

/// Appends one frame for `payload` to `dst`.
///
/// # Panics
/// When `payload` is longer than `u32::MAX` bytes (see [`header`]).
pub fn put_frame(dst: &mut BytesMut, payload: &[u8]) {
    dst.reserve(HEADER_LEN.saturating_add(payload.len()));
    dst.put_slice(&header(payload.len()));
    dst.put_slice(payload);
}

/// Splits one complete frame off the front of `buf` and returns its payload.
///
/// `Ok(None)`: not enough bytes yet (nothing consumed). A header announcing more than
/// `max_len` payload bytes is an error as soon as the 4 header bytes are present, before
/// any body arrives; nothing is allocated from the length field.
pub fn split_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameTooBig> {
    let Some(head) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut len_bytes = [0u8; HEADER_LEN];
    len_bytes.copy_from_slice(head);
    let length = u32::from_be_bytes(len_bytes);
    // Compare in u64 so a 32-bit usize cannot truncate the announced length.
    if u64::from(length) > max_len as u64 {
        return Err(FrameTooBig {
            length,
            max: max_len,
        });
    }
    // length <= max_len, so it fits a usize.
    let body = length as usize;
    if buf.len() - HEADER_LEN < body {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    Ok(Some(buf.split_to(body).freeze()))
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
        let mut rest = chunk;
        while !rest.is_empty() {
            rest = self.step(rest);
        }
    }

    /// How many bytes of `chunk` can be forwarded so that the stream then ends at a frame
    /// boundary, if one lies within `chunk` (`Some(0)` when already at a boundary).
    /// Does not change the tracker.
    ///
    /// When several boundaries lie within `chunk`, the first one is reported.
    pub fn boundary_within(&self, chunk: &[u8]) -> Option<usize> {
        if self.at_boundary() {
            return Some(0);
        }
        let mut probe = self.clone();
        let mut rest = chunk;
        while !rest.is_empty() {
            rest = probe.step(rest);
            if probe.at_boundary() {
                return Some(chunk.len() - rest.len());
            }
        }
        None
    }

    /// Consumes the bytes of `chunk` that belong to the current header or body (never more
    /// than one header or one body) and returns the remainder.
    fn step<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        if self.body_left > 0 {
            let take = usize::try_from(self.body_left).map_or(chunk.len(), |b| b.min(chunk.len()));
            // take <= chunk.len(), so it also fits the u64 counter.
            self.body_left -= take as u64;
            let (_, rest) = chunk.split_at(take);
            return rest;
        }
        let need = HEADER_LEN - self.header_have;
        let take = need.min(chunk.len());
        let (head, rest) = chunk.split_at(take);
        for (slot, byte) in self.header.iter_mut().skip(self.header_have).zip(head) {
            *slot = *byte;
        }
        self.header_have += take;
        if self.header_have == HEADER_LEN {
            self.header_have = 0;
            self.body_left = u64::from(u32::from_be_bytes(self.header));
        }
        rest
    }

    /// Body bytes of the current frame still to come (0 at a boundary or inside a header).
    pub fn body_left(&self) -> u64 {
        self.body_left
    }

    /// Header bytes still to come before the next body (4 at a boundary, 0 inside a body).
    pub fn header_left(&self) -> usize {
        if self.body_left > 0 {
            0
        } else {
            HEADER_LEN - self.header_have
        }
    }

    /// Accounts for `n` body bytes passed on without being looked at (a zero-copy relay);
    /// at most [`FrameTracker::body_left`] count.
    pub fn skip_body(&mut self, n: u64) {
        self.body_left -= n.min(self.body_left);
    }

    /// True when the bytes fed so far end exactly at the end of a frame.
    pub fn at_boundary(&self) -> bool {
        self.header_have == 0 && self.body_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn skipping_a_body_equals_feeding_it() {
        let mut fed = FrameTracker::new();
        let mut skipped = FrameTracker::new();
        let stream = [frame(&[7u8; 100]), frame(b"xy")].concat();
        fed.feed(&stream[..10]);
        skipped.feed(&stream[..10]);
        assert_eq!(skipped.body_left(), 94);
        fed.feed(&stream[10..104]);
        skipped.skip_body(94);
        assert!(skipped.at_boundary() && fed.at_boundary());
        skipped.skip_body(5);
        assert!(skipped.at_boundary(), "skipping past a boundary is capped");
        skipped.feed(&stream[104..]);
        assert!(skipped.at_boundary());
    }

    #[test]
    fn header_left_counts_down_through_a_split_header() {
        let mut t = FrameTracker::new();
        assert_eq!(t.header_left(), 4, "a boundary: a whole header to come");
        t.feed(&[0, 0]);
        assert_eq!(t.header_left(), 2);
        t.feed(&[0]);
        assert_eq!(t.header_left(), 1);
        t.feed(&[3]);
        assert_eq!((t.header_left(), t.body_left()), (0, 3), "inside the body");
        t.feed(b"SAP");
        assert_eq!(t.header_left(), 4);
        t.feed(&[0, 0, 0, 0]);
        assert!(t.at_boundary() && t.header_left() == 4, "an empty frame");
    }

    #[test]
    fn frames_ping_and_pong() {
        assert_eq!(frame(NI_PING), b"\x00\x00\x00\x08NI_PING\x00");
        assert_eq!(frame(NI_PONG), b"\x00\x00\x00\x08NI_PONG\x00");
        assert_eq!(frame(b""), [0, 0, 0, 0]);
        let mut dst = BytesMut::new();
        put_frame(&mut dst, b"SAP");
        put_frame(&mut dst, b"");
        assert_eq!(&dst[..], b"\x00\x00\x00\x03SAP\x00\x00\x00\x00");
    }

    #[test]
    fn split_waits_for_whole_frame() {
        let mut buf = BytesMut::from(&b"\x00\x00"[..]);
        assert_eq!(split_frame(&mut buf, 100), Ok(None));
        buf.extend_from_slice(b"\x00\x03SA");
        assert_eq!(split_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 6, "nothing consumed while incomplete");
        buf.extend_from_slice(b"P\x00\x00\x00\x00rest");
        assert_eq!(
            split_frame(&mut buf, 100),
            Ok(Some(Bytes::from_static(b"SAP")))
        );
        assert_eq!(split_frame(&mut buf, 100), Ok(Some(Bytes::new())));
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn split_rejects_oversized_header_before_body() {
        // "bla\n" read as a length, as a real router does (docs/protocol.md §1.2).
        let mut buf = BytesMut::from(&b"bla\n"[..]);
        assert_eq!(
            split_frame(&mut buf, MAX_FIRST_FRAME),
            Err(FrameTooBig {
                length: 1_651_269_898,
                max: MAX_FIRST_FRAME
            })
        );
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        assert!(split_frame(&mut buf, usize::MAX >> 1)
            .map(|o| o.is_none())
            .unwrap_or(false));
        let mut buf = BytesMut::from(&b"\x00\x00\x27\x29"[..]);
        assert_eq!(
            split_frame(&mut buf, MAX_FIRST_FRAME),
            Err(FrameTooBig {
                length: 10025,
                max: MAX_FIRST_FRAME
            })
        );
        let mut buf = BytesMut::from(&b"\x00\x00\x27\x28"[..]);
        assert_eq!(split_frame(&mut buf, MAX_FIRST_FRAME), Ok(None));
        assert_eq!(
            FrameTooBig { length: 5, max: 4 }.to_string(),
            "message length 5 exceeds max (4)"
        );
    }

    #[test]
    fn tracker_handles_split_headers_and_empty_frames() {
        let mut t = FrameTracker::new();
        assert!(t.at_boundary());
        assert_eq!(t.boundary_within(b""), Some(0));
        t.feed(b"\x00\x00");
        assert!(!t.at_boundary());
        assert_eq!(t.boundary_within(b"\x00"), None);
        assert_eq!(
            t.boundary_within(b"\x00\x00"),
            Some(2),
            "zero-length frame ends with its header"
        );
        assert_eq!(t.boundary_within(b"\x00\x02ab\x00"), Some(4));
        t.feed(b"\x00\x02a");
        assert_eq!(t.boundary_within(b""), None);
        assert_eq!(t.boundary_within(b"bcd"), Some(1));
        t.feed(b"b");
        assert!(t.at_boundary());
        t.feed(b"\x00\x00\x00\x00");
        assert!(t.at_boundary());
    }

    #[test]
    fn tracker_handles_maximum_length() {
        let mut t = FrameTracker::new();
        t.feed(b"\xff\xff\xff\xff");
        assert_eq!(t.body_left, u64::from(u32::MAX));
        let chunk = vec![0u8; 1 << 16];
        t.feed(&chunk);
        assert_eq!(t.boundary_within(&chunk), None);
        assert_eq!(t.body_left, u64::from(u32::MAX) - (1 << 16));
        t.body_left = 3;
        assert_eq!(t.boundary_within(&chunk), Some(3));
        t.feed(&chunk[..3]);
        assert!(t.at_boundary());
    }

    fn chunked(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            out.push(stream[at..c].to_vec());
            at = c;
        }
        out
    }

    proptest! {
        #[test]
        fn tracker_finds_true_frame_ends(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..12),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut stream = Vec::new();
            let mut truth = std::collections::BTreeSet::from([0usize]);
            for p in &payloads {
                stream.extend_from_slice(&frame(p));
                truth.insert(stream.len());
            }
            let mut t = FrameTracker::new();
            let mut found = std::collections::BTreeSet::new();
            let mut base = 0;
            for chunk in chunked(&stream, &cuts) {
                let mut i = 0;
                loop {
                    let rest = &chunk[i..];
                    match t.boundary_within(rest) {
                        Some(0) => {
                            found.insert(base + i);
                            if rest.is_empty() { break; }
                            t.feed(&rest[..1]);
                            i += 1;
                        }
                        Some(n) => {
                            t.feed(&rest[..n]);
                            i += n;
                            prop_assert!(t.at_boundary());
                            found.insert(base + i);
                        }
                        None => {
                            t.feed(rest);
                            break;
                        }
                    }
                }
                base += chunk.len();
            }
            prop_assert!(t.at_boundary());
            prop_assert_eq!(found, truth);
        }

        #[test]
        fn feed_in_chunks_equals_feed_at_once(
            stream in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut whole = FrameTracker::new();
            whole.feed(&stream);
            let mut parts = FrameTracker::new();
            for c in chunked(&stream, &cuts) {
                parts.feed(&c);
            }
            prop_assert_eq!(whole.header_have, parts.header_have);
            prop_assert_eq!(whole.body_left, parts.body_left);
        }

        #[test]
        fn split_frame_round_trips(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut stream = Vec::new();
            for p in &payloads {
                stream.extend_from_slice(&frame(p));
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for c in chunked(&stream, &cuts) {
                buf.extend_from_slice(&c);
                while let Some(p) = split_frame(&mut buf, 300).map_err(|e| TestCaseError::fail(e.to_string()))? {
                    got.push(p.to_vec());
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, payloads);
        }
    }
}
