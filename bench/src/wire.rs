//! The few bytes the bench speaks: NI frames, the route request, the source request, and the
//! blocks of data sent in bulk (plain, or cut into NI frames).

use saprouter::ni::route::{talk_mode, RouteHop, RouteRequest};
use saprouter::ni::NI_VERSION;

/// `NI_PONG\0`, the answer to a route that stands.
pub const NI_PONG: &[u8] = b"NI_PONG\0";
/// Eyecatcher of a source request.
const SOURCE: &[u8; 4] = b"SRC\0";
/// Approximate size of one bulk write.
const BLOCK: usize = 256 * 1024;

/// First bytes of an upload that asks the sink's discard service to read like a peer
/// (blocking reads of [`CONSUMER_READ`] bytes into user space, every byte used).
pub const CONSUMER: &[u8; 8] = b"CONSUME\0";
/// Size of one read of the user-space consumer (sink or client): the buffer of a peer that
/// reads what arrives and works on it.
pub const CONSUMER_READ: usize = 16 * 1024;

/// Adds `bytes` into `sum`, eight at a time: the consumer's use of what it read.
pub fn fold(sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut acc = sum;
    for w in &mut words {
        acc = acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    }
    for b in words.remainder() {
        acc = acc.wrapping_add(u64::from(*b));
    }
    acc
}

/// One NI frame around `payload`.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The framed `NI_ROUTE` for one router hop to `host:port`; `ni` picks NI talk mode over raw.
pub fn route(router_port: u16, host: &str, port: u16, ni: bool) -> Vec<u8> {
    route_via(&[("127.0.0.1", router_port), (host, port)], ni)
}

/// The framed `NI_ROUTE` along `hops` (host, port), the first being the router connected to.
pub fn route_via(hops: &[(&str, u16)], ni: bool) -> Vec<u8> {
    let hops = hops
        .iter()
        .map(|(host, port)| RouteHop::new(*host, port.to_string()))
        .collect();
    let mode = if ni {
        talk_mode::NI_MSG_IO
    } else {
        talk_mode::NI_RAW_IO
    };
    frame(&RouteRequest::new(hops, mode, NI_VERSION).encode())
}

/// The framed request that makes the source service send `total` bytes in frames of
/// `frame_size` payload bytes (0 = plain bytes).
pub fn source_request(total: u64, frame_size: u32) -> Vec<u8> {
    let mut payload = SOURCE.to_vec();
    payload.extend_from_slice(&total.to_be_bytes());
    payload.extend_from_slice(&frame_size.to_be_bytes());
    frame(&payload)
}

/// Decodes a source request payload: (total, frame size).
pub fn parse_source_request(payload: &[u8]) -> Option<(u64, u32)> {
    let rest = payload.strip_prefix(SOURCE.as_slice())?;
    let total = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let frame = u32::from_be_bytes(rest.get(8..12)?.try_into().ok()?);
    Some((total, frame))
}

/// A block of bulk data: whole NI frames of `frame_size` payload bytes, or plain bytes
/// for 0. Streams are sent as repetitions of this block.
pub fn stream_chunk(frame_size: u32) -> Vec<u8> {
    if frame_size == 0 {
        return (0..BLOCK).map(|i| (i % 251) as u8).collect();
    }
    let body: Vec<u8> = (0..frame_size as usize).map(|i| (i % 251) as u8).collect();
    let one = frame(&body);
    let count = (BLOCK / one.len()).max(1);
    one.repeat(count)
}

/// `total` rounded up to whole blocks, so a framed stream ends at a frame boundary.
pub fn round_total(total: u64, frame_size: u32) -> u64 {
    let block = stream_chunk_len(frame_size);
    total.div_ceil(block).max(1) * block
}

fn stream_chunk_len(frame_size: u32) -> u64 {
    if frame_size == 0 {
        return BLOCK as u64;
    }
    let one = frame_size as usize + 4;
    ((BLOCK / one).max(1) * one) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_uses_every_byte() {
        let bytes: Vec<u8> = (0..=20u8).collect();
        let whole = fold(0, &bytes);
        assert_eq!(fold(fold(0, &bytes[..8]), &bytes[8..]), whole);
        let mut changed = bytes.clone();
        changed[20] ^= 1;
        assert_ne!(fold(0, &changed), whole, "the tail counts");
        changed = bytes.clone();
        changed[3] ^= 1;
        assert_ne!(fold(0, &changed), whole, "the words count");
    }

    #[test]
    fn source_request_round_trips() {
        let req = source_request(1 << 30, 65536);
        assert_eq!(parse_source_request(&req[4..]), Some((1 << 30, 65536)));
        assert_eq!(parse_source_request(b"SRC\0"), None);
    }

    #[test]
    fn blocks_are_whole_frames() {
        for f in [0u32, 64, 65536] {
            assert_eq!(stream_chunk(f).len() as u64, stream_chunk_len(f));
            assert_eq!(round_total(1, f), stream_chunk_len(f));
        }
    }
}
