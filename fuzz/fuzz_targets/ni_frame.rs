//! NI framing: `split_frame` and `FrameTracker` on an arbitrary stream cut into chunks.
//!
//! Input: 2 bytes max payload length, 1 byte chunk size, then the stream. Properties: no
//! panic; `split_frame` consumes nothing while incomplete and exactly header + payload
//! otherwise; a header over the limit is refused before its body; the frames split off,
//! re-framed, are a prefix of the stream; `boundary_within` reports the first boundary and
//! agrees with `feed`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use saprouter::ni::frame::{frame, split_frame, FrameTracker};

fuzz_target!(|data: &[u8]| {
    let [a, b, c, stream @ ..] = data else {
        return;
    };
    let max_len = usize::from(u16::from_be_bytes([*a, *b]));
    let step = usize::from(*c % 64) + 1;
    let mut buf = BytesMut::new();
    let mut tracker = FrameTracker::new();
    let mut rebuilt = Vec::new();
    for chunk in stream.chunks(step) {
        match tracker.boundary_within(chunk) {
            Some(n) => {
                assert!(n <= chunk.len());
                for shorter in 0..n {
                    let mut probe = tracker.clone();
                    probe.feed(&chunk[..shorter]);
                    assert!(!probe.at_boundary(), "boundary_within skipped a boundary");
                }
                let mut probe = tracker.clone();
                probe.feed(&chunk[..n]);
                assert!(probe.at_boundary());
            }
            None => {
                for end in 0..=chunk.len() {
                    let mut probe = tracker.clone();
                    probe.feed(&chunk[..end]);
                    assert!(!probe.at_boundary(), "boundary_within missed a boundary");
                }
            }
        }
        tracker.feed(chunk);
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match split_frame(&mut buf, max_len) {
                Ok(Some(payload)) => {
                    assert!(payload.len() <= max_len);
                    assert_eq!(before - buf.len(), 4 + payload.len());
                    rebuilt.extend_from_slice(&frame(&payload));
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "consumed an incomplete frame");
                    break;
                }
                Err(too_big) => {
                    assert!(u64::from(too_big.length) > max_len as u64);
                    assert_eq!(buf.len(), before);
                    assert!(stream.starts_with(&rebuilt));
                    return;
                }
            }
        }
    }
    assert!(
        stream.starts_with(&rebuilt),
        "split frames differ from the stream"
    );
    // The tracker is at a boundary exactly when everything left over is an empty buffer.
    assert_eq!(tracker.at_boundary(), buf.is_empty());
});
