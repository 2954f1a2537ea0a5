//! Pipes for `splice(2)`: the kernel moves relayed bytes socket → pipe → socket without
//! copying them through user space. A session holds a pipe only while bytes are in flight;
//! empty pipes go back to a small per-thread pool, so idle sessions hold none (and no
//! descriptors beyond their two sockets).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Pipe size asked for.
pub const SIZE: usize = 256 * 1024;

/// Empty pipes kept per worker thread for the next chunk.
const POOL: usize = 64;

/// One pipe: read end, write end, and what it holds.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes written into the pipe and not yet spliced out.
    pub held: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Larger pipes move more per system call; the kernel may refuse (per-user pipe
        // budget), then the default size stays.
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, SIZE as libc::c_int) };
        Ok(Self {
            read,
            write,
            held: 0,
        })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe. `Ok(0)` is EOF.
    pub fn fill_from(&mut self, from: RawFd, len: usize) -> io::Result<usize> {
        let n = splice(from, self.write.as_raw_fd(), len)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds (as much as `to` takes now) into socket `to`.
    pub fn drain_to(&mut self, to: RawFd) -> io::Result<usize> {
        let n = splice(self.read.as_raw_fd(), to, self.held)?;
        self.held -= n.min(self.held);
        Ok(n)
    }

    /// Copies `bytes` into the pipe (it must have room: callers only do this when empty).
    pub fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: writes from a valid slice to a descriptor we own.
            let rc =
                unsafe { libc::write(self.write.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if rc <= 0 {
                return Err(io::Error::last_os_error());
            }
            let n = rc as usize;
            self.held += n;
            rest = &rest[n..];
        }
        Ok(())
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: splice between two descriptors we hold open, with null offsets (sockets and
    // pipes have none).
    let rc = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

thread_local! {
    static FREE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// An empty pipe from this thread's pool, or a new one.
pub fn take() -> io::Result<Pipe> {
    match FREE.with(|free| free.borrow_mut().pop()) {
        Some(pipe) => Ok(pipe),
        None => Pipe::new(),
    }
}

/// Returns a pipe to the pool; a pipe still holding bytes is closed instead (they belong to
/// a stream that ended).
pub fn give_back(pipe: Pipe) {
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
            match pipe.fill_from(b.as_raw_fd(), 64) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.held, 15);
        while pipe.held > 0 {
            pipe.drain_to(c.as_raw_fd()).unwrap();
        }
        let mut got = [0u8; 15];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b">> hello splice");
        give_back(pipe);
        assert_eq!(take().unwrap().held, 0);
    }
}
