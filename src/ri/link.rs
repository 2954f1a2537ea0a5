//! The registration link protocol of this project (SAP's own is undocumented, so both ends
//! of a link must be saprouter-rs). Sans-IO: byte layouts and their checks only.
//!
//! A link is one TCP connection from the LAN router to the DMZ router's `client_service`:
//!
//! 1. LAN → DMZ, one NI frame: [`Register`] (`RI_REGISTER\0`, version, instance id, link
//!    index, pseudo port, flags, addresses).
//! 2. DMZ → LAN, one NI frame: [`Accept`] (`RI_ACCEPT\0`, version, pool size, server
//!    number, link id) or an `NI_RTERR` saying why not (ACE, `max_servers`, conflict).
//! 3. From then on the TCP connection carries the multiplexer of the version in the
//!    acceptance (1: yamux, 2: linkmux; the DMZ router answers with the version offered,
//!    and a LAN router whose offer of 2 an earlier DMZ router refuses registers again with
//!    1: [`super::carrier`], [`super::server`]). The DMZ router opens one stream per routed session; the
//!    LAN router opens exactly one stream, the control stream, on which both sides send
//!    [`HEARTBEAT`] frames every [`HEARTBEAT_INTERVAL`].
//!
//! The full layout is in docs/reverse-invoke.md. Every decoder here checks a length before
//! it reads and never allocates from a count it has not bounded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Eyecatcher of a registration.
pub const REGISTER_EYECATCHER: &[u8; 12] = b"RI_REGISTER\0";
/// Eyecatcher of an acceptance.
pub const ACCEPT_EYECATCHER: &[u8; 10] = b"RI_ACCEPT\0";
/// A heartbeat on the control stream (an NI frame with this payload).
pub const HEARTBEAT: &[u8; 9] = b"RI_ALIVE\0";
/// Link protocol version 1: the link carries a yamux session ([`super::mux`]).
pub const YAMUX_VERSION: u8 = 1;
/// Link protocol version 2: the link carries linkmux frames ([`super::linkmux`]).
pub const LINKMUX_VERSION: u8 = 2;
/// The highest link protocol version this build speaks. It speaks every version from
/// [`YAMUX_VERSION`] up to this one; its LAN routers offer what their `-i` file's
/// `link_protocol` asks for (version 1 unless it says otherwise).
pub const LINK_VERSION: u8 = LINKMUX_VERSION;

/// Whether this build speaks link protocol `version`.
pub fn speaks(version: u8) -> bool {
    (YAMUX_VERSION..=LINK_VERSION).contains(&version)
}
/// Most addresses one registration may carry.
pub const MAX_REG_ADDRS: usize = 16;
/// Largest handshake frame either side reads (a full registration is about 4 KiB).
pub const MAX_HANDSHAKE_FRAME: usize = 8192;
/// Largest frame accepted on the control stream.
pub const MAX_CONTROL_FRAME: usize = 64;
/// How often each side sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A link that received nothing for this long is dead. The last byte of a link arrives at
/// or before its death, so with [`LIVENESS_CHECK`] the death is noticed within 15 s, while
/// a live peer still gets almost three heartbeat intervals of slack.
pub const DEAD_AFTER: Duration = Duration::from_secs(14);
/// How often a link's silence is checked.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(250);

/// Address-entry tags.
mod tag {
    pub const V4: u8 = 4;
    pub const V6: u8 = 6;
    pub const NAME: u8 = b'N';
}

/// Registration flags.
mod flag {
    pub const IMPLICIT: u8 = 0x01;
}

/// A registered pseudo address: an IP, or a host name as a route may spell it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegAddr {
    /// An address literal.
    Ip(IpAddr),
    /// A host name (1..=253 bytes of `[A-Za-z0-9.-_]`), compared case-insensitively.
    Name(String),
}

impl std::fmt::Display for RegAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegAddr::Ip(ip) => write!(f, "{ip}"),
            RegAddr::Name(name) => f.write_str(name),
        }
    }
}

/// Whether `name` is acceptable as a registered host name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
}

/// LAN → DMZ: register one link of a LAN router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// Link protocol version of the sender.
    pub version: u8,
    /// Random per LAN-router process; all links of one process carry the same.
    pub instance: u64,
    /// Which pool slot this link fills (0 for the first).
    pub link_index: u16,
    /// The pseudo port (`reg_service`).
    pub reg_service: u16,
    /// True when `reg_hostname` is unset: `addrs` are the link's own source address and
    /// the DMZ router also registers the source address it sees (they differ behind NAT).
    pub implicit: bool,
    /// The pseudo addresses (`reg_hostname`, or the link's own address).
    pub addrs: Vec<RegAddr>,
}

/// DMZ → LAN: the link is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// Link protocol version of the sender.
    pub version: u8,
    /// Links the LAN router should keep (the DMZ router's `conn_pool_size`).
    pub pool_size: u16,
    /// The DMZ router's number for this LAN router (for `-l` on both sides).
    pub server_number: u16,
    /// The DMZ router's id for this link (for `-l` on both sides).
    pub link_id: u32,
}

/// A handshake message that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Wrong eyecatcher.
    #[error("not a {0} message")]
    Eyecatcher(&'static str),
    /// Shorter than its fields say.
    #[error("{0} truncated")]
    Truncated(&'static str),
    /// A version this build does not speak.
    #[error("link protocol version {0} not supported (this router speaks {YAMUX_VERSION} to {LINK_VERSION})")]
    Version(u8),
    /// No address, or more than [`MAX_REG_ADDRS`].
    #[error("{0} registered addresses (1 to {MAX_REG_ADDRS} allowed)")]
    AddrCount(u8),
    /// An unknown address tag.
    #[error("unknown address tag {0}")]
    AddrTag(u8),
    /// A host name with forbidden bytes or length.
    #[error("invalid registered host name")]
    Name,
    /// A zero pseudo port or pool size.
    #[error("{0} must not be 0")]
    Zero(&'static str),
    /// Unknown flag bits.
    #[error("unknown registration flags {0:#04x}")]
    Flags(u8),
    /// Bytes after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// A cursor that refuses to read past the end.
struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(LinkError::Truncated(self.what))?;
        self.rest = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], LinkError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, LinkError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, LinkError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, LinkError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, LinkError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn finish(self) -> Result<(), LinkError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(LinkError::Trailing(n)),
        }
    }
}

fn eyecatcher<'a>(
    payload: &'a [u8],
    expected: &[u8],
    what: &'static str,
) -> Result<Reader<'a>, LinkError> {
    match payload.strip_prefix(expected) {
        Some(rest) => Ok(Reader { rest, what }),
        None => Err(LinkError::Eyecatcher(what)),
    }
}

impl Register {
    /// The frame payload. Addresses beyond [`MAX_REG_ADDRS`] and invalid names are left out
    /// (the sender builds the list from `reg_hostname` and checks it first).
    pub fn encode(&self) -> Vec<u8> {
        let addrs: Vec<&RegAddr> = self
            .addrs
            .iter()
            .filter(|a| match a {
                RegAddr::Name(n) => valid_name(n),
                RegAddr::Ip(_) => true,
            })
            .take(MAX_REG_ADDRS)
            .collect();
        let mut out = REGISTER_EYECATCHER.to_vec();
        out.push(self.version);
        out.extend_from_slice(&self.instance.to_be_bytes());
        out.extend_from_slice(&self.link_index.to_be_bytes());
        out.extend_from_slice(&self.reg_service.to_be_bytes());
        out.push(u8::from(self.implicit) * flag::IMPLICIT);
        // At most MAX_REG_ADDRS (16) entries, so the count fits a byte.
        out.push(addrs.len() as u8);
        for addr in addrs {
            match addr {
                RegAddr::Ip(IpAddr::V4(v4)) => {
                    out.push(tag::V4);
                    out.extend_from_slice(&v4.octets());
                }
                RegAddr::Ip(IpAddr::V6(v6)) => {
                    out.push(tag::V6);
                    out.extend_from_slice(&v6.octets());
                }
                RegAddr::Name(name) => {
                    out.push(tag::NAME);
                    // valid_name bounds the length to 253.
                    out.push(name.len() as u8);
                    out.extend_from_slice(name.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes and checks a registration.
    pub fn decode(payload: &[u8]) -> Result<Self, LinkError> {
        let mut r = eyecatcher(payload, REGISTER_EYECATCHER, "RI_REGISTER")?;
        let version = r.u8()?;
        if !speaks(version) {
            return Err(LinkError::Version(version));
        }
        let instance = r.u64()?;
        let link_index = r.u16()?;
        let reg_service = r.u16()?;
        if reg_service == 0 {
            return Err(LinkError::Zero("registered service"));
        }
        let flags = r.u8()?;
        if flags & !flag::IMPLICIT != 0 {
            return Err(LinkError::Flags(flags));
        }
        let count = r.u8()?;
        if count == 0 || usize::from(count) > MAX_REG_ADDRS {
            return Err(LinkError::AddrCount(count));
        }
        // `count` is bounded above, so this allocation is too.
        let mut addrs = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let addr = match r.u8()? {
                tag::V4 => RegAddr::Ip(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
                tag::V6 => RegAddr::Ip(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
                tag::NAME => {
                    let len = usize::from(r.u8()?);
                    let bytes = r.take(len)?;
                    let name = std::str::from_utf8(bytes).map_err(|_| LinkError::Name)?;
                    if !valid_name(name) {
                        return Err(LinkError::Name);
                    }
                    RegAddr::Name(name.to_string())
                }
                other => return Err(LinkError::AddrTag(other)),
            };
            addrs.push(addr);
        }
        r.finish()?;
        Ok(Self {
            version,
            instance,
            link_index,
            reg_service,
            implicit: flags & flag::IMPLICIT != 0,
            addrs,
        })
    }
}

impl Accept {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = ACCEPT_EYECATCHER.to_vec();
        out.push(self.version);
        out.extend_from_slice(&self.pool_size.to_be_bytes());
        out.extend_from_slice(&self.server_number.to_be_bytes());
        out.extend_from_slice(&self.link_id.to_be_bytes());
        out
    }

    /// Decodes and checks an acceptance.
    pub fn decode(payload: &[u8]) -> Result<Self, LinkError> {
        let mut r = eyecatcher(payload, ACCEPT_EYECATCHER, "RI_ACCEPT")?;
        let version = r.u8()?;
        if !speaks(version) {
            return Err(LinkError::Version(version));
        }
        let pool_size = r.u16()?;
        if pool_size == 0 {
            return Err(LinkError::Zero("pool size"));
        }
        let server_number = r.u16()?;
        let link_id = r.u32()?;
        r.finish()?;
        Ok(Self {
            version,
            pool_size,
            server_number,
            link_id,
        })
    }
}

/// What the DMZ router answered to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Registered.
    Accept(Accept),
    /// Refused: SAP return code and the record's error and detail texts.
    Refused {
        /// Return code.
        rc: i32,
        /// Short text.
        error: String,
        /// Detail text.
        detail: String,
    },
}

impl Reply {
    /// Decodes either an [`Accept`] or an `NI_RTERR` refusal.
    pub fn decode(payload: &[u8]) -> Result<Self, LinkError> {
        use crate::ni::rterr::{RtErr, RTERR_EYECATCHER};
        if payload.starts_with(RTERR_EYECATCHER) {
            let message =
                RtErr::decode(payload).map_err(|_| LinkError::Truncated("NI_RTERR refusal"))?;
            let (error, detail) = match message.record() {
                Ok(record) => (record.error, record.detail),
                Err(_) => (
                    String::from_utf8_lossy(&message.text).into_owned(),
                    String::new(),
                ),
            };
            return Ok(Reply::Refused {
                rc: message.return_code,
                error,
                detail,
            });
        }
        Accept::decode(payload).map(Reply::Accept)
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
