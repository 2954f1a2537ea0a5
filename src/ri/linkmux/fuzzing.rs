//! A byte-driven run of one link's [`Core`] against a scripted peer, with the
//! multiplexer's invariants asserted along the way. It exists for the `ri_linkmux` fuzz
//! target (`fuzz/fuzz_targets/ri_linkmux.rs`) and for the replay of its seeds on stable
//! Rust (`tests/fuzz_seeds.rs`), so both run the same checks; nothing else uses it.
//!
//! # Input
//!
//! The first byte sets up the link: bit 0 the role (0 DMZ, 1 LAN), bits 1-2 the number of
//! streams accepted from the peer (0 to 3). Then chunks of ten bytes, at most [`MAX_OPS`]:
//! an op byte (taken modulo 8) and nine argument bytes `a`. Where an op names a stream,
//! `a[0]` picks one of the streams seen so far (opened by either side), or is the id itself
//! when none was seen or `a[0] >= 0xf0`; `n` is `a[5..9]` (big-endian).
//!
//! | op | action |
//! |----|--------|
//! | 0  | `open` a stream |
//! | 1  | `queue(stream, n)` |
//! | 2  | `close_write(stream)` |
//! | 3  | `taken(stream, n)` |
//! | 4  | `release(stream)` |
//! | 5  | `next_frame` up to `a[0]` times (0: until it yields nothing) |
//! | 6  | the peer sends the header `a` |
//! | 7  | the peer sends the header `a` with its stream id replaced by the picked stream |
//!
//! A peer header that does not decode, or that [`Core::receive`] refuses, ends the link:
//! the run stops there (a trailing incomplete chunk is ignored).
//!
//! # Invariants
//!
//! - Nothing panics; a header that decodes re-encodes to the same bytes, and
//!   [`Frame::decode_prefix`] agrees with [`Frame::decode`] (and waits on fewer bytes).
//! - A stream never buffers more than one window ([`MAX_WINDOW`]), never holds more than
//!   one window of credit, and no more streams of the peer live than are accepted.
//! - Every frame [`Core::next_frame`] yields decodes again to itself and is about a stream
//!   one side opened; `OPEN` only for this side's ids, each once, in increasing order.
//! - `DATA` spends no more credit than the peer granted (the credit is modelled here from
//!   the frames alone and must equal the core's), leaves its stream alive for the driver to
//!   take the body from, and never follows this side's `FIN` or `RESET` of the stream; a
//!   `WINDOW` never lifts the peer's credit above one window.
//! - Once `next_frame` yields nothing, [`Core::has_output`] is false and no stream has
//!   bytes queued and credit left (nothing is stuck).

use std::collections::BTreeMap;

use super::frame::{reset, Frame, HEADER_LEN, MAX_WINDOW};
use super::machine::{Core, Event, ProtoError, Role};

/// Op chunks run at most per input (a longer input is cut there).
pub const MAX_OPS: usize = 256;
/// Bytes of one op chunk: the op byte and a header's worth of arguments.
pub const OP_LEN: usize = 1 + HEADER_LEN;
/// Frames one drain op takes at most (a bound only: credit bounds it well below).
const MAX_DRAIN: usize = 4096;

/// What a run did, for the seed replay's checks that a seed reaches what it is named for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Op chunks run.
    pub ops: usize,
    /// Frames yielded by `next_frame`, by kind byte.
    pub sent: [usize; 5],
    /// `RESET` frames yielded with the reason `REFUSED`.
    pub refused: usize,
    /// Peer headers accepted by `receive`, by kind byte.
    pub received: [usize; 5],
    /// Why the link ended early, if it did.
    pub end: Option<ProtoError>,
}

/// This side's view of one stream, kept from the frames alone.
#[derive(Debug)]
struct Model {
    /// Credit this side holds (to check `DATA` against).
    credit: i64,
    /// Credit the peer holds: a `WINDOW` may not lift it above one window. It may go
    /// below zero when the peer sends ahead of a `WINDOW` the core has granted but not yet
    /// yielded; that only makes the check looser, never wrong.
    peer_credit: i64,
    fin_sent: bool,
    reset_sent: bool,
    open_sent: bool,
    /// Opened by this side.
    local: bool,
}

impl Model {
    fn new(local: bool) -> Self {
        Self {
            credit: i64::from(MAX_WINDOW),
            peer_credit: i64::from(MAX_WINDOW),
            fin_sent: false,
            reset_sent: false,
            open_sent: false,
            local,
        }
    }
}

struct Run {
    core: Core<()>,
    role: Role,
    max_remote: usize,
    /// Every stream either side opened, in order (refused ones too).
    ids: Vec<u32>,
    models: BTreeMap<u32, Model>,
    last_open_sent: u32,
    summary: Summary,
}

/// Runs `data` (see the module header) and asserts the invariants; panics on a broken one.
pub fn run(data: &[u8]) -> Summary {
    let Some((&setup, ops)) = data.split_first() else {
        return Summary::default();
    };
    let role = if setup & 1 == 0 { Role::Dmz } else { Role::Lan };
    let max_remote = usize::from((setup >> 1) & 3);
    let mut run = Run {
        core: Core::new(role, max_remote),
        role,
        max_remote,
        ids: Vec::new(),
        models: BTreeMap::new(),
        last_open_sent: 0,
        summary: Summary::default(),
    };
    for chunk in ops.chunks_exact(OP_LEN).take(MAX_OPS) {
        let Some((&op, arg)) = chunk.split_first() else {
            break;
        };
        let Some(&arg) = arg.first_chunk::<HEADER_LEN>() else {
            break;
        };
        run.summary.ops += 1;
        if let Err(e) = run.step(op, arg) {
            run.summary.end = Some(e);
            break;
        }
        run.check_streams();
    }
    run.summary
}

impl Run {
    fn pick(&self, b: u8) -> u32 {
        if self.ids.is_empty() || b >= 0xf0 {
            u32::from(b)
        } else {
            self.ids[usize::from(b) % self.ids.len()]
        }
    }

    fn step(&mut self, op: u8, a: [u8; HEADER_LEN]) -> Result<(), ProtoError> {
        let n = u32::from_be_bytes([a[5], a[6], a[7], a[8]]) as usize;
        match op % 8 {
            0 => {
                if let Ok(id) = self.core.open(()) {
                    assert_eq!(id % 2 == 1, self.role == Role::Dmz, "open {id}: parity");
                    assert!(!self.models.contains_key(&id), "open {id}: id reused");
                    self.ids.push(id);
                    self.models.insert(id, Model::new(true));
                }
            }
            1 => self.core.queue(self.pick(a[0]), n),
            2 => self.core.close_write(self.pick(a[0])),
            3 => self.core.taken(self.pick(a[0]), n),
            4 => self.core.release(self.pick(a[0])),
            5 => self.drain(if a[0] == 0 {
                MAX_DRAIN
            } else {
                usize::from(a[0])
            }),
            6 => self.peer(a)?,
            _ => {
                let mut head = a;
                head[0..4].copy_from_slice(&self.pick(a[0]).to_be_bytes());
                self.peer(head)?;
            }
        }
        Ok(())
    }

    /// The peer sends `head`: decode it as the driver does, then hand it to the core.
    fn peer(&mut self, head: [u8; HEADER_LEN]) -> Result<(), ProtoError> {
        let decoded = Frame::decode(&head);
        for cut in 0..HEADER_LEN {
            assert_eq!(Frame::decode_prefix(&head[..cut]), Ok(None), "prefix {cut}");
        }
        assert_eq!(Frame::decode_prefix(&head), decoded.map(Some));
        let frame = decoded?;
        assert_eq!(frame.encode(), head, "{frame:?} re-encodes");
        let event = self.core.receive(frame)?;
        if let Some(k) = self.summary.received.get_mut(usize::from(head[4])) {
            *k += 1;
        }
        let id = frame.stream();
        match (frame, event) {
            (Frame::Open { .. }, Event::Opened(opened)) => {
                assert_eq!(opened, id);
                assert!(self.core.stream(id).is_some(), "opened {id} lives");
                self.ids.push(id);
                self.models.insert(id, Model::new(false));
            }
            (Frame::Open { .. }, Event::Nothing) => {
                // Refused: the RESET is queued; the peer's id counts as seen.
                self.ids.push(id);
                self.models.insert(id, Model::new(false));
            }
            (Frame::Data { len, .. }, Event::Data { stream, len: got }) => {
                assert_eq!((stream, got), (id, len), "{frame:?}");
                self.peer_sent(id, len);
            }
            (Frame::Data { len, .. }, Event::Discard { len: got }) => {
                assert_eq!(got, len, "{frame:?}");
                self.peer_sent(id, len);
            }
            (Frame::Window { credit, .. }, Event::Wake(woken)) => {
                assert_eq!(woken, id);
                let m = self
                    .models
                    .get_mut(&id)
                    .expect("a granted stream was opened");
                m.credit += i64::from(credit);
                let held = self.core.stream(id).map(|s| i64::from(s.credit()));
                assert_eq!(held, Some(m.credit), "stream {id}: credit after WINDOW");
            }
            (Frame::Window { .. } | Frame::Fin { .. }, Event::Nothing | Event::Wake(_))
            | (Frame::Reset { .. }, Event::Nothing | Event::Wake(_)) => {
                if let Event::Wake(woken) = event {
                    assert_eq!(woken, id);
                }
            }
            (frame, event) => panic!("{frame:?} gave {event:?}"),
        }
        Ok(())
    }

    fn peer_sent(&mut self, id: u32, len: u32) {
        if let Some(m) = self.models.get_mut(&id) {
            m.peer_credit -= i64::from(len);
        }
    }

    /// Takes up to `max` frames from the core, checking each.
    fn drain(&mut self, max: usize) {
        for _ in 0..max {
            let Some(frame) = self.core.next_frame() else {
                self.check_idle();
                return;
            };
            self.sent(frame);
        }
    }

    fn sent(&mut self, frame: Frame) {
        let head = frame.encode();
        assert_eq!(
            Frame::decode(&head),
            Ok(frame),
            "yielded {frame:?} re-decodes"
        );
        if let Some(k) = self.summary.sent.get_mut(usize::from(head[4])) {
            *k += 1;
        }
        let id = frame.stream();
        let Some(m) = self.models.get_mut(&id) else {
            panic!("{frame:?}: stream never opened");
        };
        match frame {
            Frame::Open { .. } => {
                assert!(m.local, "{frame:?}: the peer's stream");
                assert!(!m.open_sent, "{frame:?}: twice");
                assert!(id > self.last_open_sent, "{frame:?}: out of order");
                m.open_sent = true;
                self.last_open_sent = id;
            }
            Frame::Data { len, .. } => {
                assert!(!m.local || m.open_sent, "{frame:?} before OPEN");
                assert!(!m.fin_sent && !m.reset_sent, "{frame:?} after FIN or RESET");
                assert!(
                    i64::from(len) <= m.credit,
                    "{frame:?} with {} bytes of credit",
                    m.credit
                );
                m.credit -= i64::from(len);
                let held = self.core.stream(id).map(|s| i64::from(s.credit()));
                assert_eq!(held, Some(m.credit), "{frame:?}: credit left");
                assert!(
                    self.core.io_mut(id).is_some(),
                    "{frame:?}: body's stream gone"
                );
            }
            Frame::Window { credit, .. } => {
                assert!(!m.reset_sent, "{frame:?} after RESET");
                m.peer_credit += i64::from(credit);
                assert!(
                    m.peer_credit <= i64::from(MAX_WINDOW),
                    "{frame:?} lifts the peer's credit to {}",
                    m.peer_credit
                );
            }
            Frame::Fin { .. } => {
                assert!(!m.local || m.open_sent, "{frame:?} before OPEN");
                assert!(!m.fin_sent && !m.reset_sent, "{frame:?} after FIN or RESET");
                m.fin_sent = true;
            }
            Frame::Reset { reason, .. } => {
                assert!(!m.reset_sent, "{frame:?} twice");
                m.reset_sent = true;
                if reason == reset::REFUSED {
                    assert!(!m.local, "{frame:?}: refusing this side's stream");
                    self.summary.refused += 1;
                } else {
                    assert_eq!(reason, reset::ABORTED, "{frame:?}");
                }
            }
        }
    }

    /// `next_frame` yielded nothing: nothing may be waiting.
    fn check_idle(&self) {
        assert!(
            !self.core.has_output(),
            "next_frame is empty, has_output is not"
        );
        for &id in &self.ids {
            if let Some(s) = self.core.stream(id) {
                assert!(
                    s.queued() == 0 || s.credit() == 0,
                    "stream {id}: {} bytes queued and {} of credit, nothing sent",
                    s.queued(),
                    s.credit()
                );
            }
        }
    }

    fn check_streams(&self) {
        let mut remote = 0;
        for &id in &self.ids {
            let Some(s) = self.core.stream(id) else {
                continue;
            };
            assert!(
                s.buffered() <= MAX_WINDOW,
                "stream {id}: buffers {}",
                s.buffered()
            );
            assert!(
                s.credit() <= MAX_WINDOW,
                "stream {id}: credit {}",
                s.credit()
            );
            if self.models.get(&id).is_some_and(|m| !m.local) {
                remote += 1;
            }
        }
        assert!(
            remote <= self.max_remote,
            "{remote} streams of the peer live"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_inputs_do_nothing() {
        assert_eq!(run(&[]), Summary::default());
        assert_eq!(run(&[0, 1, 2, 3]).ops, 0);
    }
}
