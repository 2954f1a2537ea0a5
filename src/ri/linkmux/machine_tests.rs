use std::collections::{HashMap, VecDeque};

use super::*;
use crate::ri::linkmux::flow::UPDATE_AT;
use crate::ri::linkmux::frame::MAX_WINDOW;
use proptest::prelude::*;

fn drain(core: &mut Core<()>) -> Vec<Frame> {
    std::iter::from_fn(|| core.next_frame()).collect()
}

#[test]
fn ids_follow_the_role() {
    let mut dmz = Core::<()>::new(Role::Dmz, 8);
    let mut lan = Core::<()>::new(Role::Lan, 8);
    assert_eq!(dmz.open(()), Ok(1));
    assert_eq!(dmz.open(()), Ok(3));
    assert_eq!(lan.open(()), Ok(2));
    assert_eq!(
        drain(&mut dmz),
        [Frame::Open { stream: 1 }, Frame::Open { stream: 3 }]
    );
    // The peer's parity only, strictly increasing.
    assert_eq!(lan.receive(Frame::Open { stream: 3 }), Ok(Event::Opened(3)));
    assert_eq!(
        lan.receive(Frame::Open { stream: 1 }),
        Err(ProtoError::OpenOrder(1))
    );
    assert_eq!(
        lan.receive(Frame::Open { stream: 4 }),
        Err(ProtoError::OpenOrder(4))
    );
    assert_eq!(
        dmz.receive(Frame::Open { stream: 1 }),
        Err(ProtoError::OpenOrder(1))
    );
    assert_eq!(
        lan.receive(Frame::Data { stream: 7, len: 1 }),
        Err(ProtoError::Unknown(7))
    );
    assert_eq!(
        lan.receive(Frame::Window {
            stream: 2,
            credit: 1
        }),
        Err(ProtoError::Flow {
            stream: 2,
            error: FlowError::TooMuchCredit(u64::from(MAX_WINDOW) + 1)
        })
    );
    assert_eq!(
        lan.receive(Frame::Fin { stream: 6 }),
        Err(ProtoError::Unknown(6))
    );
}

#[test]
fn streams_take_turns_of_one_bounded_body() {
    let mut core = Core::<()>::new(Role::Dmz, 8);
    let a = core.open(()).unwrap();
    let b = core.open(()).unwrap();
    core.queue(a, 300_000);
    core.queue(b, 10);
    core.close_write(b);
    assert_eq!(
        drain(&mut core),
        [
            Frame::Open { stream: a },
            Frame::Open { stream: b },
            Frame::Data {
                stream: a,
                len: MAX_BODY
            },
            Frame::Data { stream: b, len: 10 },
            Frame::Data {
                stream: a,
                len: MAX_BODY
            },
            Frame::Fin { stream: b },
            Frame::Data {
                stream: a,
                len: MAX_BODY
            },
            Frame::Data {
                stream: a,
                len: MAX_BODY
            },
            // Out of credit: 4 x 64 KiB is the window; the rest waits for WINDOW.
        ]
    );
    assert_eq!(core.stream(a).unwrap().queued(), 300_000 - 4 * 65_536);
    assert_eq!(
        core.receive(Frame::Window {
            stream: a,
            credit: 1000
        }),
        Ok(Event::Wake(a))
    );
    assert_eq!(
        drain(&mut core),
        [Frame::Data {
            stream: a,
            len: 1000
        }]
    );
}

#[test]
fn control_frames_go_before_data() {
    let mut core = Core::<()>::new(Role::Lan, 8);
    assert_eq!(
        core.receive(Frame::Open { stream: 1 }),
        Ok(Event::Opened(1))
    );
    core.queue(1, 100);
    assert_eq!(
        core.receive(Frame::Data {
            stream: 1,
            len: UPDATE_AT
        }),
        Ok(Event::Data {
            stream: 1,
            len: UPDATE_AT
        })
    );
    core.taken(1, UPDATE_AT as usize);
    assert_eq!(
        drain(&mut core),
        [
            Frame::Window {
                stream: 1,
                credit: UPDATE_AT
            },
            Frame::Data {
                stream: 1,
                len: 100
            }
        ]
    );
}

#[test]
fn the_peers_streams_are_limited_and_the_link_stays() {
    let mut core = Core::<()>::new(Role::Lan, 1);
    assert_eq!(
        core.receive(Frame::Open { stream: 1 }),
        Ok(Event::Opened(1))
    );
    assert_eq!(core.receive(Frame::Open { stream: 3 }), Ok(Event::Nothing));
    assert_eq!(
        drain(&mut core),
        [Frame::Reset {
            stream: 3,
            reason: reset::REFUSED
        }]
    );
    // What the peer sent before it saw the refusal is dropped, not an error.
    assert_eq!(
        core.receive(Frame::Data { stream: 3, len: 5 }),
        Ok(Event::Discard { len: 5 })
    );
    assert_eq!(core.receive(Frame::Fin { stream: 3 }), Ok(Event::Nothing));
    // Once stream 1 is over, a new one is accepted.
    core.close_write(1);
    assert_eq!(core.receive(Frame::Fin { stream: 1 }), Ok(Event::Wake(1)));
    assert_eq!(drain(&mut core), [Frame::Fin { stream: 1 }]);
    core.release(1);
    assert!(core.is_empty());
    assert_eq!(
        core.receive(Frame::Open { stream: 5 }),
        Ok(Event::Opened(5))
    );
}

#[test]
fn a_peer_that_overruns_or_sends_after_fin_is_refused() {
    let mut core = Core::<()>::new(Role::Lan, 4);
    core.receive(Frame::Open { stream: 1 }).unwrap();
    for _ in 0..4 {
        core.receive(Frame::Data {
            stream: 1,
            len: MAX_BODY,
        })
        .unwrap();
    }
    assert_eq!(
        core.receive(Frame::Data { stream: 1, len: 1 }),
        Err(ProtoError::Flow {
            stream: 1,
            error: FlowError::Overrun { got: 1, credit: 0 }
        })
    );
    core.receive(Frame::Open { stream: 3 }).unwrap();
    core.receive(Frame::Fin { stream: 3 }).unwrap();
    assert_eq!(
        core.stream(3).unwrap().recv_end(),
        RecvEnd::Fin,
        "the reader sees a clean end"
    );
    assert_eq!(
        core.receive(Frame::Data { stream: 3, len: 1 }),
        Err(ProtoError::AfterFin(3))
    );
    assert_eq!(
        core.receive(Frame::Fin { stream: 3 }),
        Err(ProtoError::AfterFin(3))
    );
}

#[test]
fn a_dropped_handle_resets_but_never_overtakes_its_data() {
    // Dropped without FIN and nothing queued: RESET at once.
    let mut core = Core::<()>::new(Role::Dmz, 4);
    let z = core.open(()).unwrap();
    core.release(z);
    assert_eq!(
        drain(&mut core),
        [
            Frame::Open { stream: z },
            Frame::Reset {
                stream: z,
                reason: reset::ABORTED
            }
        ]
    );
    assert!(core.is_empty());

    // Dropped without FIN with bytes queued: the bytes, then RESET (no FIN: the peer's
    // reader gets them, then an error, as from a dropped yamux stream).
    let a = core.open(()).unwrap();
    core.queue(a, 10);
    core.release(a);
    assert_eq!(
        drain(&mut core),
        [
            Frame::Open { stream: a },
            Frame::Data { stream: a, len: 10 },
            Frame::Reset {
                stream: a,
                reason: reset::ABORTED
            }
        ]
    );
    assert!(core.is_empty());

    // Dropped after FIN was asked with bytes still queued: data, FIN, then RESET.
    let b = core.open(()).unwrap();
    core.queue(b, 10);
    core.close_write(b);
    core.release(b);
    assert_eq!(
        drain(&mut core),
        [
            Frame::Open { stream: b },
            Frame::Data { stream: b, len: 10 },
            Frame::Fin { stream: b },
            Frame::Reset {
                stream: b,
                reason: reset::ABORTED
            }
        ]
    );
    assert!(core.is_empty());
    // The peer's late frames for it are dropped quietly.
    assert_eq!(
        core.receive(Frame::Data { stream: b, len: 3 }),
        Ok(Event::Discard { len: 3 })
    );

    // A RESET from the peer: the reader sees an error, the writer stops.
    let c = core.open(()).unwrap();
    assert_eq!(
        core.receive(Frame::Reset {
            stream: c,
            reason: 0
        }),
        Ok(Event::Wake(c))
    );
    let s = core.stream(c).unwrap();
    assert_eq!(s.recv_end(), RecvEnd::Reset);
    assert!(!s.writable());
    core.release(c);
    assert!(core.is_empty());
    assert_eq!(drain(&mut core), [Frame::Open { stream: c }]);
}

#[test]
fn no_window_update_for_a_finished_direction() {
    let mut core = Core::<()>::new(Role::Lan, 4);
    core.receive(Frame::Open { stream: 1 }).unwrap();
    core.receive(Frame::Data {
        stream: 1,
        len: MAX_BODY,
    })
    .unwrap();
    core.receive(Frame::Data {
        stream: 1,
        len: MAX_BODY,
    })
    .unwrap();
    core.receive(Frame::Fin { stream: 1 }).unwrap();
    core.taken(1, 2 * MAX_BODY as usize);
    assert_eq!(drain(&mut core), []);
    assert_eq!(core.stream(1).unwrap().buffered(), 0);
}

// --- The model: two cores joined by an in-order frame queue, carrying real bytes. ---

#[derive(Debug, Default)]
struct Store {
    tx: VecDeque<u8>,
    rx: VecDeque<u8>,
}

struct End {
    core: Core<Store>,
    /// Every byte the application wrote, per stream.
    written: HashMap<u32, Vec<u8>>,
    /// Every byte the application read, per stream.
    read: HashMap<u32, Vec<u8>>,
    opened: Vec<u32>,
}

impl End {
    fn new(role: Role) -> Self {
        Self {
            core: Core::new(role, 16),
            written: HashMap::new(),
            read: HashMap::new(),
            opened: Vec::new(),
        }
    }

    fn write(&mut self, id: u32, len: usize) {
        if !self.core.stream(id).is_some_and(Stream::writable) {
            return;
        }
        let log = self.written.entry(id).or_default();
        let bytes: Vec<u8> = (log.len()..log.len() + len)
            .map(|i| (i % 251) as u8 ^ (id as u8))
            .collect();
        log.extend_from_slice(&bytes);
        self.core.io_mut(id).unwrap().tx.extend(bytes);
        self.core.queue(id, len);
    }

    fn read(&mut self, id: u32, max: usize) -> usize {
        let Some(io) = self.core.io_mut(id) else {
            return 0;
        };
        let n = max.min(io.rx.len());
        let got: Vec<u8> = io.rx.drain(..n).collect();
        self.read.entry(id).or_default().extend(got);
        self.core.taken(id, n);
        n
    }

    /// One frame onto the wire, with its body.
    fn emit(&mut self, wire: &mut VecDeque<(Frame, Vec<u8>)>) -> bool {
        let Some(frame) = self.core.next_frame() else {
            return false;
        };
        let body = match frame {
            Frame::Data { stream, len } => {
                let io = self.core.io_mut(stream).expect("DATA of a live stream");
                assert!(
                    io.tx.len() >= len as usize,
                    "DATA beyond what was handed over"
                );
                io.tx.drain(..len as usize).collect()
            }
            _ => Vec::new(),
        };
        wire.push_back((frame, body));
        true
    }

    fn deliver(&mut self, frame: Frame, body: Vec<u8>) -> Result<(), ProtoError> {
        assert_eq!(body.len(), frame.body_len());
        match self.core.receive(frame)? {
            Event::Opened(id) => self.opened.push(id),
            Event::Data { stream, len } => {
                assert_eq!(len as usize, body.len());
                self.core.io_mut(stream).unwrap().rx.extend(body);
            }
            Event::Discard { .. } | Event::Wake(_) | Event::Nothing => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write { lan: bool, s: usize, len: usize },
    Read { lan: bool, s: usize, max: usize },
    Pump { to_lan: bool, frames: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0..3usize, 1..150_000usize).prop_map(|(lan, s, len)| Op::Write {
            lan,
            s,
            len
        }),
        (any::<bool>(), 0..3usize, 1..300_000usize).prop_map(|(lan, s, max)| Op::Read {
            lan,
            s,
            max
        }),
        (any::<bool>(), 1..12usize).prop_map(|(to_lan, frames)| Op::Pump { to_lan, frames }),
    ]
}

/// Moves frames until neither side has one to send; every reader but the stalled one
/// (the LAN side's reader of the first stream) takes everything.
fn settle(
    dmz: &mut End,
    lan: &mut End,
    ids: &[u32],
    stalled: Option<u32>,
) -> Result<(), ProtoError> {
    let mut wire = VecDeque::new();
    loop {
        let mut moved = false;
        while dmz.emit(&mut wire) {
            moved = true;
        }
        while let Some((f, b)) = wire.pop_front() {
            lan.deliver(f, b)?;
        }
        while lan.emit(&mut wire) {
            moved = true;
        }
        while let Some((f, b)) = wire.pop_front() {
            dmz.deliver(f, b)?;
        }
        for &id in ids {
            moved |= dmz.read(id, usize::MAX) > 0;
            if Some(id) != stalled {
                moved |= lan.read(id, usize::MAX) > 0;
            }
        }
        if !moved {
            return Ok(());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The sender never exceeds its credit (the receiver would refuse the frame), every
    /// byte arrives once and in order, and a reader that stops stalls only its own stream
    /// and direction; at the end every stream is forgotten on both sides.
    #[test]
    fn two_ends_agree_with_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let mut dmz = End::new(Role::Dmz);
        let mut lan = End::new(Role::Lan);
        let ids: Vec<u32> = (0..3).map(|_| dmz.core.open(Store::default()).unwrap()).collect();
        settle(&mut dmz, &mut lan, &ids, Some(ids[0])).unwrap();
        prop_assert_eq!(&lan.opened, &ids);
        let stalled = ids[0];
        let mut to_lan = VecDeque::new();
        let mut to_dmz = VecDeque::new();
        for op in ops {
            match op {
                Op::Write { lan: true, s, len } => lan.write(ids[s], len),
                Op::Write { lan: false, s, len } => dmz.write(ids[s], len),
                Op::Read { lan: true, s, max } => {
                    if ids[s] != stalled {
                        lan.read(ids[s], max);
                    }
                }
                Op::Read { lan: false, s, max } => {
                    dmz.read(ids[s], max);
                }
                Op::Pump { to_lan: true, frames } => {
                    for _ in 0..frames {
                        dmz.emit(&mut to_lan);
                    }
                    while let Some((f, b)) = to_lan.pop_front() {
                        prop_assert_eq!(lan.deliver(f, b), Ok(()));
                    }
                }
                Op::Pump { to_lan: false, frames } => {
                    for _ in 0..frames {
                        lan.emit(&mut to_dmz);
                    }
                    while let Some((f, b)) = to_dmz.pop_front() {
                        prop_assert_eq!(dmz.deliver(f, b), Ok(()));
                    }
                }
            }
        }
        prop_assert_eq!(settle(&mut dmz, &mut lan, &ids, Some(stalled)), Ok(()));
        for &id in &ids {
            let sent_down = dmz.written.get(&id).cloned().unwrap_or_default();
            let sent_up = lan.written.get(&id).cloned().unwrap_or_default();
            prop_assert_eq!(dmz.read.get(&id).cloned().unwrap_or_default(), sent_up);
            if id == stalled {
                // Exactly one window reached the stalled reader, the rest waits at the
                // sender; nothing was read.
                let held: Vec<u8> = lan.core.io_mut(id).unwrap().rx.iter().copied().collect();
                let window = sent_down.len().min(MAX_WINDOW as usize);
                prop_assert_eq!(&held[..], &sent_down[..window]);
                prop_assert_eq!(
                    dmz.core.stream(id).unwrap().queued(),
                    (sent_down.len() - window) as u64
                );
            } else {
                prop_assert_eq!(lan.read.get(&id).cloned().unwrap_or_default(), sent_down);
            }
        }
        // Both sides finish their directions; the stalled reader finally reads.
        for &id in &ids {
            dmz.core.close_write(id);
            lan.core.close_write(id);
        }
        prop_assert_eq!(settle(&mut dmz, &mut lan, &ids, None), Ok(()));
        for &id in &ids {
            prop_assert_eq!(lan.core.stream(id).unwrap().recv_end(), RecvEnd::Fin);
            prop_assert_eq!(dmz.core.stream(id).unwrap().recv_end(), RecvEnd::Fin);
            prop_assert_eq!(
                lan.read.get(&id).cloned().unwrap_or_default(),
                dmz.written.get(&id).cloned().unwrap_or_default()
            );
            dmz.core.release(id);
            lan.core.release(id);
        }
        prop_assert!(dmz.core.is_empty() && lan.core.is_empty());
        prop_assert_eq!(dmz.core.next_frame(), None);
    }

    /// A handle dropped halfway, on either side, at any point: no protocol error, both
    /// sides forget the stream, and the other streams still deliver everything.
    #[test]
    fn dropped_handles_leave_the_rest_intact(
        ops in proptest::collection::vec(op(), 1..80),
        drop_at in 0..80usize,
        drop_lan in any::<bool>(),
    ) {
        let mut dmz = End::new(Role::Dmz);
        let mut lan = End::new(Role::Lan);
        let ids: Vec<u32> = (0..3).map(|_| dmz.core.open(Store::default()).unwrap()).collect();
        settle(&mut dmz, &mut lan, &ids, None).unwrap();
        let victim = ids[1];
        let mut wire = VecDeque::new();
        for (i, op) in ops.into_iter().enumerate() {
            if i == drop_at {
                if drop_lan { lan.core.release(victim) } else { dmz.core.release(victim) }
            }
            match op {
                Op::Write { lan: true, s, len } => lan.write(ids[s], len),
                Op::Write { lan: false, s, len } => dmz.write(ids[s], len),
                Op::Read { lan: true, s, max } => { lan.read(ids[s], max); }
                Op::Read { lan: false, s, max } => { dmz.read(ids[s], max); }
                Op::Pump { to_lan: true, frames } => {
                    for _ in 0..frames { dmz.emit(&mut wire); }
                    while let Some((f, b)) = wire.pop_front() {
                        prop_assert_eq!(lan.deliver(f, b), Ok(()));
                    }
                }
                Op::Pump { to_lan: false, frames } => {
                    for _ in 0..frames { lan.emit(&mut wire); }
                    while let Some((f, b)) = wire.pop_front() {
                        prop_assert_eq!(dmz.deliver(f, b), Ok(()));
                    }
                }
            }
        }
        dmz.core.release(victim);
        lan.core.release(victim);
        let rest = [ids[0], ids[2]];
        for &id in &rest {
            dmz.core.close_write(id);
            lan.core.close_write(id);
        }
        prop_assert_eq!(settle(&mut dmz, &mut lan, &rest, None), Ok(()));
        prop_assert!(dmz.core.stream(victim).is_none() && lan.core.stream(victim).is_none());
        for &id in &rest {
            prop_assert_eq!(
                lan.read.get(&id).cloned().unwrap_or_default(),
                dmz.written.get(&id).cloned().unwrap_or_default()
            );
            prop_assert_eq!(
                dmz.read.get(&id).cloned().unwrap_or_default(),
                lan.written.get(&id).cloned().unwrap_or_default()
            );
            dmz.core.release(id);
            lan.core.release(id);
        }
        prop_assert!(dmz.core.is_empty() && lan.core.is_empty());
    }
}
