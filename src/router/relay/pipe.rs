//! Pipes for `splice(2)`: the kernel moves relayed bytes socket → pipe → socket without
//! copying them through user space. A session holds a pipe only while bytes are in flight;
//! empty pipes go back to a small per-thread pool, so idle sessions hold none (and no
//! descriptors beyond their two sockets).
//!
//! The system calls go through rustix, which wraps them in safe functions over owned and
//! borrowed descriptors: this module has no `unsafe` of its own.
//!
//! `splice(2)` is Linux's: elsewhere no pipe is ever made ([`take`] fails with
//! `Unsupported`), and every caller keeps to its user-space path.
// Outside Linux only linkmux's types are used (the splice relay is not built).
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use super::Pipes;

/// Pipe size asked for.
pub(crate) const SIZE: usize = 256 * 1024;

/// Empty pipes kept per worker thread for the next chunk.
const POOL: usize = 64;

/// One pipe: read end, write end, and what it holds.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes written into the pipe and not yet spliced out.
    pub(crate) held: usize,
}

impl Pipe {
    #[cfg(not(target_os = "linux"))]
    fn new() -> io::Result<Self> {
        Err(io::ErrorKind::Unsupported.into())
    }

    #[cfg(target_os = "linux")]
    fn new() -> io::Result<Self> {
        use rustix::pipe::PipeFlags;
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // Larger pipes move more per system call; the kernel may refuse (per-user pipe
        // budget), then the default size stays.
        let _ = rustix::pipe::fcntl_setpipe_size(&write, SIZE);
        Ok(Self {
            read,
            write,
            held: 0,
        })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe. `Ok(0)` is EOF.
    pub(crate) fn fill_from(&mut self, from: impl AsFd, len: usize) -> io::Result<usize> {
        let n = splice(from, &self.write, len)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds (as much as `to` takes now) into socket `to`.
    pub(crate) fn drain_to(&mut self, to: impl AsFd) -> io::Result<usize> {
        let n = splice(&self.read, to, self.held)?;
        self.held -= n.min(self.held);
        Ok(n)
    }

    /// Moves at most `len` of the bytes the pipe holds into socket `to` (the rest of a frame
    /// body, never past its end).
    pub(crate) fn drain_at_most_to(&mut self, to: impl AsFd, len: usize) -> io::Result<usize> {
        let n = splice(&self.read, to, len.min(self.held))?;
        self.held -= n.min(self.held);
        Ok(n)
    }

    /// Copies the next bytes the pipe holds into `buf` (a frame header the caller must see).
    pub(crate) fn take_out(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.held);
        let n = rustix::io::read(&self.read, &mut buf[..len])?;
        self.held -= n.min(self.held);
        Ok(n)
    }

    /// Copies `bytes` into the pipe (it must have room: callers only do this when empty).
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rustix::io::write(&self.write, rest)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.held += n;
            rest = &rest[n..];
        }
        Ok(())
    }
}

/// Splices without blocking between a socket and a pipe (neither has an offset).
#[cfg(target_os = "linux")]
fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    use rustix::pipe::SpliceFlags;
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    Ok(rustix::pipe::splice(from, None, to, None, len, flags)?)
}

/// No `splice(2)` here (see the module header); never reached, as no pipe is ever made.
#[cfg(not(target_os = "linux"))]
fn splice(_from: impl AsFd, _to: impl AsFd, _len: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// `splice(2)` is not available for these descriptors.
pub(super) fn no_splice(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let code = e.raw_os_error();
    code == Some(Errno::INVAL.raw_os_error()) || code == Some(Errno::NOSYS.raw_os_error())
}

thread_local! {
    static FREE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

#[cfg(test)]
thread_local! {
    /// Tests of this thread see the descriptor limit reached: [`take`] fails as `pipe2` would.
    static NONE_LEFT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes [`take`] fail on this thread (the descriptor limit, for tests of the fallbacks of
/// users of the pool that take pipes themselves, like linkmux).
#[cfg(test)]
pub(crate) fn none_left(yes: bool) {
    NONE_LEFT.with(|n| n.set(yes));
}

/// An empty pipe from this thread's pool, or a new one.
pub(crate) fn take() -> io::Result<Pipe> {
    #[cfg(test)]
    if NONE_LEFT.with(std::cell::Cell::get) {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error(),
        ));
    }
    match FREE.with(|free| free.borrow_mut().pop()) {
        Some(pipe) => Ok(pipe),
        None => Pipe::new(),
    }
}

/// Returns a pipe to the pool; a pipe still holding bytes is closed instead (they belong to
/// a stream that ended).
pub(crate) fn give_back(pipe: Pipe) {
    if pipe.held != 0 {
        return;
    }
    FREE.with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < POOL {
            free.push(pipe);
        }
    });
}

impl Pipes {
    /// A pipe for the next chunk; an error when none can be had.
    pub(super) fn take(&self) -> io::Result<Pipe> {
        match self {
            Pipes::Pool => take(),
            #[cfg(test)]
            Pipes::RunsDry(left) => {
                use std::sync::atomic::Ordering;
                let had =
                    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                match had {
                    Ok(_) => take(),
                    // What pipe2 says at the descriptor limit.
                    Err(_) => Err(io::Error::from_raw_os_error(
                        rustix::io::Errno::MFILE.raw_os_error(),
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn bytes_go_through_a_pipe_unchanged() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let listener2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener2.local_addr().unwrap()).unwrap();
        let (mut d, _) = listener2.accept().unwrap();
        a.write_all(b"hello splice").unwrap();
        let mut pipe = take().unwrap();
        pipe.put(b">> ").unwrap();
        let mut moved = 0;
        while moved < 12 {
            match pipe.fill_from(&b, 64) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.held, 15);
        while pipe.held > 0 {
            pipe.drain_to(&c).unwrap();
        }
        let mut got = [0u8; 15];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b">> hello splice");
        give_back(pipe);
        assert_eq!(take().unwrap().held, 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_header_comes_out_to_look_at_and_a_body_up_to_its_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut d, _) = listener.accept().unwrap();
        let mut pipe = take().unwrap();
        pipe.put(b"\x00\x00\x00\x03SAPnext").unwrap();
        let mut head = [0u8; 4];
        assert_eq!(pipe.take_out(&mut head).unwrap(), 4);
        assert_eq!(head, [0, 0, 0, 3]);
        assert_eq!(pipe.held, 7);
        assert_eq!(
            pipe.drain_at_most_to(&c, 3).unwrap(),
            3,
            "the body, not past it"
        );
        assert_eq!(pipe.held, 4);
        let mut got = [0u8; 3];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"SAP");
        let mut rest = [0u8; 16];
        assert_eq!(
            pipe.take_out(&mut rest).unwrap(),
            4,
            "no more than it holds"
        );
        assert_eq!((&rest[..4], pipe.held), (&b"next"[..], 0));
    }

    #[test]
    fn a_pipe_still_holding_bytes_is_not_pooled() {
        FREE.with(|free| free.borrow_mut().clear());
        let mut pipe = take().unwrap();
        pipe.put(b"left over").unwrap();
        give_back(pipe);
        assert_eq!(FREE.with(|free| free.borrow().len()), 0);
        give_back(take().unwrap());
        assert_eq!(FREE.with(|free| free.borrow().len()), 1);
    }

    #[test]
    fn a_supply_that_runs_dry_says_so_like_pipe2() {
        let pipes = Pipes::RunsDry(1.into());
        assert!(pipes.take().is_ok());
        let err = pipes.take().err().expect("dry");
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::MFILE.raw_os_error())
        );
        assert!(!no_splice(&err), "a missing pipe is not a refused splice");
    }

    #[test]
    fn splice_refused_is_told_apart() {
        let refused = io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error());
        assert!(no_splice(&refused));
        assert!(!no_splice(&io::ErrorKind::WouldBlock.into()));
    }
}
