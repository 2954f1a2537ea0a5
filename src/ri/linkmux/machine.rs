//! The multiplexer of one link as a state machine (sans-IO): streams, their credit and
//! windows, and the order in which frames leave. The I/O driver holds it under a lock and
//! does what it says; the model tests drive two of them against each other.
//!
//! Frames leave in this order: control frames (`OPEN`, `WINDOW`, `RESET`) first, in the
//! order they were queued, then one turn per stream with bytes ready, round robin: one
//! `DATA` frame of at most [`MAX_BODY`] bytes (or the stream's `FIN` once its bytes are
//! all framed), and the stream goes to the back of the line. A bulk stream therefore
//! delays an interactive stream's frame by at most one body per other busy stream.
//!
//! A stream lives until its handle is released and both directions are over (`FIN` sent
//! and received, or a `RESET` either way).

use std::collections::{HashMap, VecDeque};

use super::flow::{FlowError, RecvWindow, SendCredit};
use super::frame::{reset, Frame, MAX_BODY};

/// Which end of the link this is; the DMZ router opens odd stream ids, the LAN router even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The DMZ router (opens one stream per routed session).
    Dmz,
    /// The LAN router (opens the control stream).
    Lan,
}

impl Role {
    fn first_id(self) -> u32 {
        match self {
            Role::Dmz => 1,
            Role::Lan => 2,
        }
    }

    fn owns(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Dmz)
    }
}

/// The peer broke the protocol: the link ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A header that does not decode.
    #[error(transparent)]
    Frame(#[from] super::frame::FrameError),
    /// Credit or window broken on a stream.
    #[error("stream {stream}: {error}")]
    Flow {
        /// The stream.
        stream: u32,
        /// What.
        error: FlowError,
    },
    /// An `OPEN` with an id of this side's parity, or not above the peer's last one.
    #[error("stream {0} opened out of order")]
    OpenOrder(u32),
    /// A frame for a stream that was never opened.
    #[error("frame for stream {0}, never opened")]
    Unknown(u32),
    /// `DATA` or `FIN` after the peer's `FIN`.
    #[error("stream {0}: data or FIN after FIN")]
    AfterFin(u32),
}

/// Why a stream cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Every stream id of this side was used (2^31 streams on one link).
    #[error("stream ids of this link exhausted")]
    Exhausted,
}

/// What the driver must do after a received header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing beyond sending what [`Core::next_frame`] yields.
    Nothing,
    /// The peer opened this stream: hand a handle to the application.
    Opened(u32),
    /// Move `len` body bytes into the stream's receive store.
    Data {
        /// Stream.
        stream: u32,
        /// Body bytes.
        len: u32,
    },
    /// Read and drop `len` body bytes (the stream is gone or abandoned on this side).
    Discard {
        /// Body bytes.
        len: u32,
    },
    /// The stream's reader and writer may proceed (credit, `FIN` or `RESET` arrived).
    Wake(u32),
}

/// How a stream's receiving direction ends, once its buffered bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvEnd {
    /// More may come.
    Open,
    /// The peer finished its direction cleanly.
    Fin,
    /// Abandoned before `FIN` (by either side): an error for the reader.
    Reset,
}

/// One stream's state; `io` is the driver's (its byte stores and wakers).
#[derive(Debug)]
pub struct Stream<T> {
    /// The driver's part.
    pub io: T,
    send: SendCredit,
    /// Bytes handed over by the application, not yet framed.
    queued: u64,
    fin_wanted: bool,
    fin_sent: bool,
    recv: RecvWindow,
    fin_received: bool,
    /// A `RESET` was sent or received: both directions are over.
    reset: bool,
    /// The application's handle is gone.
    released: bool,
    /// Released with this side's `FIN` still to send and the peer's direction open: the
    /// `RESET` telling the peer to stop follows the `FIN`, never overtakes the data.
    reset_after_fin: bool,
    /// Released without `FIN` with bytes still queued: they go out (as yamux sends what
    /// was written before a dropped stream's reset, so a refusal written just before a
    /// session drops its stream still arrives), then `RESET`.
    reset_after_data: bool,
    in_ready: bool,
    /// Opened by the peer (counted against the accepted limit).
    remote: bool,
}

impl<T> Stream<T> {
    fn new(io: T, remote: bool) -> Self {
        Self {
            io,
            send: SendCredit::default(),
            queued: 0,
            fin_wanted: false,
            fin_sent: false,
            recv: RecvWindow::default(),
            fin_received: false,
            reset: false,
            released: false,
            reset_after_fin: false,
            reset_after_data: false,
            in_ready: false,
            remote,
        }
    }

    fn sendable(&self) -> bool {
        !self.reset
            && ((self.queued > 0 && self.send.available() > 0)
                || (self.queued == 0 && self.fin_wanted && !self.fin_sent))
    }

    fn finished(&self) -> bool {
        self.released && (self.reset || (self.fin_sent && self.fin_received))
    }

    /// How the receiving direction stands.
    pub fn recv_end(&self) -> RecvEnd {
        if self.fin_received {
            RecvEnd::Fin
        } else if self.reset {
            RecvEnd::Reset
        } else {
            RecvEnd::Open
        }
    }

    /// Whether the application may still hand over bytes.
    pub fn writable(&self) -> bool {
        !self.reset && !self.fin_wanted
    }

    /// Bytes handed over and not yet framed.
    pub fn queued(&self) -> u64 {
        self.queued
    }

    /// Bytes received and not yet taken.
    pub fn buffered(&self) -> u32 {
        self.recv.buffered()
    }

    /// Credit this side holds towards the peer.
    pub fn credit(&self) -> u32 {
        self.send.available()
    }
}

/// The multiplexer state of one link.
#[derive(Debug)]
pub struct Core<T> {
    role: Role,
    next_local: u32,
    last_remote: u32,
    max_remote: usize,
    remote_open: usize,
    streams: HashMap<u32, Stream<T>>,
    control: VecDeque<Frame>,
    ready: VecDeque<u32>,
}

impl<T: Default> Core<T> {
    /// A link's state on side `role`, accepting at most `max_remote` streams from the peer
    /// at once (more are refused with `RESET`, the link stays).
    pub fn new(role: Role, max_remote: usize) -> Self {
        Self {
            role,
            next_local: role.first_id(),
            last_remote: 0,
            max_remote,
            remote_open: 0,
            streams: HashMap::new(),
            control: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }

    /// A stream, while it lives.
    pub fn stream(&self, id: u32) -> Option<&Stream<T>> {
        self.streams.get(&id)
    }

    /// The driver's part of a stream, while it lives.
    pub fn io_mut(&mut self, id: u32) -> Option<&mut T> {
        self.streams.get_mut(&id).map(|s| &mut s.io)
    }

    /// Streams alive (both directions' ends not yet settled, or handles not released).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when no stream lives.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Every live stream's id (to wake them all when the link ends).
    pub fn ids(&self) -> Vec<u32> {
        self.streams.keys().copied().collect()
    }

    /// Whether [`next_frame`](Self::next_frame) has something.
    pub fn has_output(&self) -> bool {
        !self.control.is_empty() || !self.ready.is_empty()
    }

    /// Opens a stream; its `OPEN` goes before anything else of it.
    pub fn open(&mut self, io: T) -> Result<u32, OpenError> {
        let id = self.next_local;
        self.next_local = id.checked_add(2).ok_or(OpenError::Exhausted)?;
        self.streams.insert(id, Stream::new(io, false));
        self.control.push_back(Frame::Open { stream: id });
        Ok(id)
    }

    /// The application handed over `n` more bytes of stream `id` (kept by the driver).
    pub fn queue(&mut self, id: u32, n: usize) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.writable() {
                s.queued += n as u64;
                self.schedule(id);
            }
        }
    }

    /// The application finished its direction of stream `id`: `FIN` after its bytes.
    pub fn close_write(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.writable() {
                s.fin_wanted = true;
                self.schedule(id);
            }
        }
    }

    /// The application took `n` received bytes of stream `id`; returns credit (batched).
    pub fn taken(&mut self, id: u32, n: usize) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.recv.take(u32::try_from(n).unwrap_or(u32::MAX));
        if let Some(credit) = s.recv.update() {
            // A finished or abandoned direction needs no more credit.
            if !s.fin_received && !s.reset {
                self.control.push_back(Frame::Window { stream: id, credit });
            }
        }
    }

    /// The application's handle of stream `id` is gone. Bytes already handed over and a
    /// requested `FIN` still go out; a direction left open is abandoned with `RESET`.
    pub fn release(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.released = true;
        // What arrived and nobody will read is taken now (its credit goes back).
        let unread = s.recv.buffered();
        s.recv.take(unread);
        if !s.reset {
            if !s.fin_wanted && s.queued > 0 {
                s.reset_after_data = true;
            } else if !s.fin_wanted {
                s.reset = true;
                self.control.push_back(Frame::Reset {
                    stream: id,
                    reason: reset::ABORTED,
                });
            } else if !s.fin_received {
                if s.fin_sent {
                    s.reset = true;
                    self.control.push_back(Frame::Reset {
                        stream: id,
                        reason: reset::ABORTED,
                    });
                } else {
                    s.reset_after_fin = true;
                }
            }
        }
        self.return_credit(id);
        self.settle(id);
    }

    /// Sends a `WINDOW` for stream `id` when one is due and its direction is still open.
    fn return_credit(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(credit) = s.recv.update() {
            if !s.fin_received && !s.reset {
                self.control.push_back(Frame::Window { stream: id, credit });
            }
        }
    }

    /// The next frame to send. For `DATA`, the driver sends `len` bytes of the stream's
    /// handed-over bytes right after the header, before any other frame.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if let Some(frame) = self.control.pop_front() {
            if let Frame::Reset { stream, .. } = frame {
                self.settle(stream);
            }
            return Some(frame);
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.in_ready = false;
            if s.reset {
                continue;
            }
            let n = s
                .queued
                .min(u64::from(s.send.available()))
                .min(u64::from(MAX_BODY)) as u32;
            if n > 0 {
                s.send.spend(n);
                s.queued -= u64::from(n);
                if s.queued == 0 && s.reset_after_data {
                    // Queued behind this body (control frames go out after it); the
                    // stream is forgotten when its RESET leaves, once the driver has
                    // taken the body from it.
                    s.reset = true;
                    self.control.push_back(Frame::Reset {
                        stream: id,
                        reason: reset::ABORTED,
                    });
                } else {
                    self.schedule(id);
                }
                return Some(Frame::Data { stream: id, len: n });
            }
            if s.queued == 0 && s.fin_wanted && !s.fin_sent {
                s.fin_sent = true;
                if s.reset_after_fin {
                    s.reset = true;
                    self.control.push_back(Frame::Reset {
                        stream: id,
                        reason: reset::ABORTED,
                    });
                }
                self.settle(id);
                return Some(Frame::Fin { stream: id });
            }
        }
        None
    }

    /// Applies a received header.
    pub fn receive(&mut self, frame: Frame) -> Result<Event, ProtoError> {
        let id = frame.stream();
        if let Frame::Open { stream } = frame {
            if self.role.owns(stream) || stream <= self.last_remote {
                return Err(ProtoError::OpenOrder(stream));
            }
            self.last_remote = stream;
            return Ok(self.accept(stream));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // A stream that ended here may still get the peer's frames sent before it
            // learnt so; a stream never opened is a broken peer.
            let seen = if self.role.owns(id) {
                id < self.next_local
            } else {
                id <= self.last_remote
            };
            if !seen {
                return Err(ProtoError::Unknown(id));
            }
            return Ok(match frame {
                Frame::Data { len, .. } => Event::Discard { len },
                _ => Event::Nothing,
            });
        };
        match frame {
            Frame::Data { len, .. } => {
                if s.fin_received {
                    return Err(ProtoError::AfterFin(id));
                }
                if s.reset {
                    return Ok(Event::Discard { len });
                }
                s.recv
                    .receive(len)
                    .map_err(|error| ProtoError::Flow { stream: id, error })?;
                if s.released {
                    // Nobody reads: the bytes are dropped (the peer is told to stop once
                    // this side's own bytes are out). Their credit goes back, so a peer
                    // that dropped its handle too can send its last bytes and its RESET.
                    s.recv.take(len);
                    self.return_credit(id);
                    return Ok(Event::Discard { len });
                }
                Ok(Event::Data { stream: id, len })
            }
            Frame::Window { credit, .. } => {
                if s.reset {
                    return Ok(Event::Nothing);
                }
                s.send
                    .grant(credit)
                    .map_err(|error| ProtoError::Flow { stream: id, error })?;
                self.schedule(id);
                Ok(Event::Wake(id))
            }
            Frame::Fin { .. } => {
                if s.fin_received {
                    return Err(ProtoError::AfterFin(id));
                }
                if s.reset {
                    return Ok(Event::Nothing);
                }
                s.fin_received = true;
                self.settle(id);
                Ok(Event::Wake(id))
            }
            Frame::Reset { .. } => {
                s.reset = true;
                s.queued = 0;
                self.settle(id);
                Ok(Event::Wake(id))
            }
            Frame::Open { .. } => Ok(Event::Nothing), // handled above
        }
    }

    /// Registers the peer's stream, or refuses it when the limit is reached.
    fn accept(&mut self, id: u32) -> Event {
        if self.remote_open >= self.max_remote {
            self.control.push_back(Frame::Reset {
                stream: id,
                reason: reset::REFUSED,
            });
            return Event::Nothing;
        }
        self.remote_open += 1;
        self.streams.insert(id, Stream::new(T::default(), true));
        Event::Opened(id)
    }

    fn schedule(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.in_ready && s.sendable() {
                s.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    /// Forgets stream `id` once it is finished.
    fn settle(&mut self, id: u32) {
        if self.streams.get(&id).is_some_and(Stream::finished) {
            if let Some(s) = self.streams.remove(&id) {
                if s.remote {
                    self.remote_open -= 1;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
