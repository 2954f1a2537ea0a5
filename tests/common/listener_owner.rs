//! Whether a given process is the one listening on a TCP port, read from Linux's `/proc`.
//!
//! A successful connect only says that *something* listens on the port. A router that lost
//! the race for its port exits with "Address already in use", and the connect may then
//! have reached another process's listener, which can close under the test's feet (the
//! client sees a reset). Asking the kernel which process holds the listening socket
//! rules that out, and needs no probe connection that would take a client-table slot.

use std::collections::HashSet;
use std::path::Path;

/// TCP state `LISTEN` as `/proc/net/tcp` writes it.
const LISTEN: &str = "0A";

/// True when process `pid` holds a socket listening on TCP `port` (IPv4 or IPv6).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| socket_inode(&target))
            .is_some_and(|inode| inodes.contains(&inode))
    })
}

/// The inodes of the sockets listening on `port`, from `/proc/net/tcp` and `tcp6`.
fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        inodes.extend(text.lines().skip(1).filter_map(|line| listener(line, port)));
    }
    inodes
}

/// The inode of one `/proc/net/tcp` row when it is a listener on `port`. Columns: slot,
/// local address `ADDR:PORT` (hex), remote address, state, queues, timer, retransmits,
/// uid, timeout, inode.
fn listener(line: &str, port: u16) -> Option<u64> {
    let columns: Vec<&str> = line.split_whitespace().collect();
    let local_port = columns.get(1)?.rsplit(':').next()?;
    let listening = u16::from_str_radix(local_port, 16).ok()? == port && columns.get(3)? == &LISTEN;
    listening.then(|| columns.get(9)?.parse().ok()).flatten()
}

/// `socket:[12345]` → 12345.
fn socket_inode(target: &Path) -> Option<u64> {
    let text = target.to_str()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}
