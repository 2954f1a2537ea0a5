//! The zero-copy relay towards an NI client, where every frame boundary must be known (a
//! cancel is told between frames, never inside one).
//!
//! - Long frames: the next header is peeked (`MSG_PEEK`, 4 bytes) and the whole frame,
//!   header and body, spliced into the pipe without being looked at; several frames fill
//!   one pipe before it is drained.
//! - Short frames, and a header split across reads: read through a small buffer on the
//!   thread's stack, fed to the tracker, and sent on at once.
//!
//! A would-block from splicing into a pipe that already holds bytes may mean the pipe is
//! full, not that the socket is empty; it ends the round without clearing the socket's
//! readiness. Only an empty pipe's would-block (or a read) clears it.

use std::io;

use rustix::net::RecvFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::pipe::{no_splice, Pipe};
use crate::ni::frame::FrameTracker;

/// Frames at least this long (header included) are spliced; shorter ones are read.
const SPLICE_MIN: u64 = 8 * 1024;
/// The stack buffer for short frames.
const STACK: usize = 8 * 1024;
/// Frames spliced into one pipe per round, at most.
const MAX_FRAMES: usize = 64;

/// Moves the next frames from `from` into the (empty) pipe, at most `limit` bytes, or
/// straight to `to` when short. Returns the bytes taken from `from`; 0 is EOF.
/// `long_frames` remembers whether the stream carries long frames (then peeking pays off).
pub(super) fn fill(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &mut Pipe,
    tracker: &mut FrameTracker,
    long_frames: &mut bool,
    limit: usize,
) -> io::Result<usize> {
    let inside_header = !tracker.at_boundary() && tracker.body_left() == 0;
    if inside_header || (!*long_frames && tracker.body_left() < SPLICE_MIN) {
        return through_stack(from, to, pipe, tracker, long_frames, limit);
    }
    let mut total = 0usize;
    for _ in 0..MAX_FRAMES {
        let room = limit.saturating_sub(pipe.held);
        if room < 4 {
            break;
        }
        if tracker.body_left() > 0 {
            let len = usize::try_from(tracker.body_left()).map_or(room, |b| b.min(room));
            match splice_step(from, pipe, len, total)? {
                Spliced::Eof => return Ok(0),
                Spliced::RoundOver => break,
                Spliced::Moved(n) => {
                    tracker.skip_body(n as u64);
                    total += n;
                    if n < len {
                        break;
                    }
                }
            }
            continue;
        }
        // At a boundary: look at the next header without taking it.
        let mut head = [0u8; 4];
        let frame_len = match peek(from, &mut head) {
            Ok(4) => u64::from(u32::from_be_bytes(head)) + 4,
            // EOF, half a header, nothing there, or an error: the stack read sorts it out
            // (and clears the readiness) when nothing was taken yet.
            _ if total == 0 => return through_stack(from, to, pipe, tracker, long_frames, limit),
            _ => break,
        };
        if frame_len < SPLICE_MIN {
            *long_frames = false;
            if total == 0 {
                return through_stack(from, to, pipe, tracker, long_frames, limit);
            }
            break;
        }
        let len = usize::try_from(frame_len).map_or(room, |l| l.min(room));
        match splice_step(from, pipe, len, total)? {
            Spliced::Eof => return Ok(0),
            Spliced::RoundOver => break,
            Spliced::Moved(n) => {
                tracker.feed(&head[..n.min(4)]);
                tracker.skip_body(n.saturating_sub(4) as u64);
                total += n;
                if n < len {
                    break;
                }
            }
        }
    }
    Ok(total)
}

/// What one splice into the pipe did.
enum Spliced {
    /// End of stream, before anything was taken this round.
    Eof,
    /// Nothing more this round: end of stream after some bytes (told on the next round), or
    /// a would-block or a socket that cannot splice once bytes are in the pipe.
    RoundOver,
    /// This many bytes went into the pipe.
    Moved(usize),
}

/// Splices at most `len` bytes from `from` into the pipe; `taken` is what this round
/// already took (then a would-block ends the round instead of failing it).
fn splice_step(from: &TcpStream, pipe: &mut Pipe, len: usize, taken: usize) -> io::Result<Spliced> {
    match splice_in(from, pipe, len) {
        Ok(0) if taken == 0 => Ok(Spliced::Eof),
        Ok(0) => Ok(Spliced::RoundOver),
        Ok(n) => Ok(Spliced::Moved(n)),
        Err(e) if taken > 0 && (e.kind() == io::ErrorKind::WouldBlock || no_splice(&e)) => {
            Ok(Spliced::RoundOver)
        }
        Err(e) => Err(e),
    }
}

/// Splices up to `len` bytes into the pipe. Into an empty pipe a would-block means the socket
/// is drained, so it goes through tokio (which then clears the readiness); into a pipe that
/// holds bytes it may mean the pipe is full, so it must not.
fn splice_in(from: &TcpStream, pipe: &mut Pipe, len: usize) -> io::Result<usize> {
    if pipe.held == 0 {
        from.try_io(Interest::READABLE, || pipe.fill_from(from, len))
    } else {
        pipe.fill_from(from, len)
    }
}

/// Reads a short frame (or the rest of a header) through the stack and sends it on at once;
/// what `to` does not take now goes into the (empty) pipe.
fn through_stack(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &mut Pipe,
    tracker: &mut FrameTracker,
    long_frames: &mut bool,
    limit: usize,
) -> io::Result<usize> {
    let mut stack = [0u8; STACK];
    let n = from.try_read(&mut stack[..STACK.min(limit)])?;
    let chunk = &stack[..n];
    tracker.feed(chunk);
    if tracker.body_left() >= SPLICE_MIN {
        *long_frames = true;
    }
    if n == 0 {
        return Ok(0);
    }
    let sent = match to.try_write(chunk) {
        Ok(sent) => sent,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    pipe.put(&chunk[sent..])?;
    Ok(n)
}

/// Copies up to `head.len()` bytes from the front of the receive queue without taking them.
fn peek(from: &TcpStream, head: &mut [u8]) -> io::Result<usize> {
    let (n, _) = rustix::net::recv(from, head, RecvFlags::PEEK | RecvFlags::DONTWAIT)?;
    Ok(n)
}
