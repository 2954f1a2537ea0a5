//! PROXY protocol headers (haproxy's `proxy-protocol.txt`, versions 1 and 2): the few bytes
//! a load balancer sends before its client's first byte to say who the client is. This
//! module finds where a header ends in the bytes received so far ([`scan`]) and what it says
//! ([`parse`]); the parsing proper is the `ppp` crate's. No I/O: the router reads, bounded
//! and within its deadline, and asks.
//!
//! Bounds: a version 1 header (text, one line) is at most 107 bytes with its CRLF, as the
//! specification says. A version 2 header (binary) announces its length in a 16-bit field,
//! up to 16 + 65 535 bytes; this router takes at most [`MAX_HEADER`] (addresses and
//! type-length-value extensions included) and refuses a longer one from its first 16 bytes,
//! before reading or allocating any more of it.

use std::net::{IpAddr, SocketAddr};

/// The longest version 1 header, CRLF included.
pub const V1_MAX: usize = 107;
/// The 12 bytes that open every version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a version 2 header: signature, version and command, family and
/// protocol, and the 16-bit length of what follows.
pub const V2_FIXED: usize = 16;
/// The longest version 2 header this router takes, everything included. Addresses need at
/// most 216 bytes (two UNIX socket paths); the rest is room for extensions (TLVs) that
/// balancers add (connection ids, TLS details, cloud endpoint ids), which are ignored.
pub const MAX_HEADER: usize = 4096;
/// The start of every version 1 header.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Where a header ends, as far as the bytes so far tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The header is the first this many bytes.
    Complete(usize),
    /// The header goes on beyond the bytes so far: every byte so far belongs to it.
    Incomplete,
}

/// Why the bytes are not a header this router takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Neither version's opening bytes.
    #[error("not a PROXY protocol header")]
    NotAHeader,
    /// A version 1 line without its CRLF within 107 bytes.
    #[error("version 1 header without CRLF within {V1_MAX} bytes")]
    V1TooLong,
    /// A version 2 header announcing more than [`MAX_HEADER`] bytes.
    #[error("version 2 header of {0} bytes (at most {MAX_HEADER} are taken)")]
    V2TooLong(usize),
    /// The opening bytes are right, the rest is not.
    #[error("invalid version {version} header: {reason}")]
    Invalid {
        /// 1 or 2.
        version: u8,
        /// What is wrong.
        reason: String,
    },
}

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// Whom the connection is for.
    pub command: Command,
}

/// Whom a connection from a balancer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A relayed client: its address, and the address it connected to (the balancer's
    /// front end; informational).
    Proxy {
        /// The client.
        source: SocketAddr,
        /// Where the client connected.
        destination: SocketAddr,
    },
    /// The balancer on its own behalf (v2 `LOCAL`, v1 `UNKNOWN`): a health check.
    Local,
    /// A relayed connection without an IP address (v2 `PROXY` with family `UNSPEC` or
    /// `UNIX`): there is no client address to decide on.
    NoAddress,
}

/// Finds the end of the header that `buf` starts with. `Ok(Incomplete)` promises that the
/// header, if it is one, is longer than `buf`, so a reader may take all of `buf` off the
/// connection without taking the client's bytes behind the header.
pub fn scan(buf: &[u8]) -> Result<Scan, HeaderError> {
    let Some(&first) = buf.first() else {
        return Ok(Scan::Incomplete);
    };
    if first == V2_SIGNATURE[0] {
        let n = buf.len().min(V2_SIGNATURE.len());
        if buf[..n] != V2_SIGNATURE[..n] {
            return Err(HeaderError::NotAHeader);
        }
        if buf.len() < V2_FIXED {
            return Ok(Scan::Incomplete);
        }
        let total = V2_FIXED + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if total > MAX_HEADER {
            return Err(HeaderError::V2TooLong(total));
        }
        return Ok(if buf.len() >= total {
            Scan::Complete(total)
        } else {
            Scan::Incomplete
        });
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(HeaderError::NotAHeader);
    }
    // The line is printable ASCII up to its CRLF: the first CR ends it.
    match buf.iter().position(|&b| b == b'\r') {
        Some(cr) if cr + 2 > V1_MAX => Err(HeaderError::V1TooLong),
        Some(cr) => match buf.get(cr + 1) {
            Some(b'\n') => Ok(Scan::Complete(cr + 2)),
            Some(_) => Err(HeaderError::Invalid {
                version: 1,
                reason: "CR without LF".into(),
            }),
            None => Ok(Scan::Incomplete),
        },
        None if buf.len() >= V1_MAX => Err(HeaderError::V1TooLong),
        None => Ok(Scan::Incomplete),
    }
}

/// Parses one whole header (`header` is exactly what [`scan`] found complete).
pub fn parse(header: &[u8]) -> Result<Header, HeaderError> {
    if header.first() == Some(&V2_SIGNATURE[0]) {
        parse_v2(header)
    } else {
        parse_v1(header)
    }
}

fn invalid(version: u8, reason: impl ToString) -> HeaderError {
    HeaderError::Invalid {
        version,
        reason: reason.to_string(),
    }
}

fn parse_v1(header: &[u8]) -> Result<Header, HeaderError> {
    use ppp::v1::{self, Addresses};
    let parsed = v1::Header::try_from(header).map_err(|e| invalid(1, e))?;
    if parsed.header.len() != header.len() {
        return Err(invalid(1, "bytes after the CRLF"));
    }
    let command = match parsed.addresses {
        Addresses::Tcp4(a) => Command::Proxy {
            source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        },
        Addresses::Tcp6(a) => Command::Proxy {
            source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        },
        // Version 1 has no LOCAL: senders use UNKNOWN for connections of their own
        // (haproxy's health checks with send-proxy).
        Addresses::Unknown => Command::Local,
    };
    Ok(Header {
        version: 1,
        command,
    })
}

fn parse_v2(header: &[u8]) -> Result<Header, HeaderError> {
    use ppp::v2::{self, Addresses, Command as V2Command, Protocol};
    let parsed = v2::Header::try_from(header).map_err(|e| invalid(2, e))?;
    if parsed.header.len() != header.len() {
        return Err(invalid(2, "length field disagrees with the header"));
    }
    // LOCAL: the receiver must ignore the addresses, whatever they are.
    if parsed.command == V2Command::Local {
        return Ok(Header {
            version: 2,
            command: Command::Local,
        });
    }
    let stream = parsed.protocol == Protocol::Stream;
    let command = match parsed.addresses {
        Addresses::IPv4(a) if stream => Command::Proxy {
            source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        },
        Addresses::IPv6(a) if stream => Command::Proxy {
            source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        },
        Addresses::IPv4(_) | Addresses::IPv6(_) => {
            return Err(invalid(2, "an IP address without the STREAM protocol"))
        }
        Addresses::Unspecified | Addresses::Unix(_) => Command::NoAddress,
    };
    Ok(Header {
        version: 2,
        command,
    })
}

/// Scans and, when complete, parses: what a reader does with the bytes it has. `Ok(None)`
/// means more bytes are needed.
pub fn read(buf: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    match scan(buf)? {
        Scan::Incomplete => Ok(None),
        Scan::Complete(n) => parse(&buf[..n]).map(|h| Some((h, n))),
    }
}

#[cfg(test)]
#[path = "proxyproto_tests.rs"]
mod tests;
