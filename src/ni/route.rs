//! `NI_ROUTE`: the route request a client sends as its first message (docs/protocol.md §2).
//!
//! Layout (payload): `NI_ROUTE\0`, route info version (2), NI version, entries, talk mode,
//! 2 unused bytes, rest nodes, route length (u32), current offset (u32), then the route
//! string: per entry `host\0service\0password\0`.

use std::fmt;

/// `NI_ROUTE\0`.
pub const ROUTE_EYECATCHER: &[u8; 9] = b"NI_ROUTE\0";
/// The only route information version ever seen.
pub const ROUTE_INFO_VERSION: u8 = 2;
/// Header bytes before the route string.
pub const ROUTE_HEADER_LEN: usize = 24;

/// Talk mode byte of a route request.
pub mod talk_mode {
    /// NI-framed messages end to end ("SAP protocol").
    pub const NI_MSG_IO: u8 = 0;
    /// Plain bytes ("native").
    pub const NI_RAW_IO: u8 = 1;
    /// Router-internal NI mode; treated like [`NI_MSG_IO`].
    pub const NI_ROUT_IO: u8 = 2;
}

/// One entry of a route: host, service and password, each as sent (NUL stripped).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RouteHop {
    /// Host name or address literal.
    pub host: String,
    /// Service name or port number; may be empty.
    pub service: String,
    /// Route password for this hop; empty when none. Never printed by `Debug`.
    pub password: String,
}

impl RouteHop {
    /// A hop without a password.
    pub fn new(host: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            service: service.into(),
            password: String::new(),
        }
    }

    /// The same hop with its route password.
    pub fn with_password(self, password: impl Into<String>) -> Self {
        Self {
            password: password.into(),
            ..self
        }
    }

    /// Encoded length of this entry: the three strings and their NULs.
    pub fn encoded_len(&self) -> usize {
        self.host.len() + self.service.len() + self.password.len() + 3
    }
}

impl fmt::Debug for RouteHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteHop")
            .field("host", &self.host)
            .field("service", &self.service)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

/// Why a route request was refused before any routing decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The message does not start with `NI_ROUTE\0` (so it is not a route at all).
    #[error("route expected")]
    NotARoute,
    /// Fewer bytes than the 24-byte header.
    #[error("route header truncated ({0} bytes)")]
    Truncated(usize),
    /// Route information version other than 2.
    #[error("unsupported route info version {0}")]
    InfoVersion(u8),
    /// NI version 0 (SAP: -96 "invalid client version").
    #[error("version {0} too old")]
    NiVersion(u8),
    /// Talk mode above 2.
    #[error("talk mode {0} not allowed")]
    TalkMode(u8),
    /// Empty route string or fewer than 2 entries.
    #[error("no route (entries {entries}, length {length})")]
    Empty {
        /// Declared entries.
        entries: u8,
        /// Declared route length.
        length: u32,
    },
    /// Declared route length differs from the bytes present.
    #[error("route length {declared} but {present} bytes present")]
    Length {
        /// Declared route length.
        declared: u32,
        /// Bytes actually present after the header.
        present: usize,
    },
    /// A field without its terminating NUL inside the declared length.
    #[error("unterminated field in entry {0}")]
    Unterminated(usize),
    /// Declared entries differ from the entries present.
    #[error("{declared} entries declared, {present} present")]
    Entries {
        /// Declared entries.
        declared: u8,
        /// Entries found in the route string.
        present: usize,
    },
    /// Rest nodes 0 or not below the entry count.
    #[error("invalid rest nodes {rest} for {entries} entries")]
    Rest {
        /// Declared rest nodes.
        rest: u8,
        /// Declared entries.
        entries: u8,
    },
    /// Offset not on the entry boundary that the rest-node count implies.
    #[error("invalid offset {0}")]
    Offset(u32),
}

impl RouteError {
    /// SAP's return code for this refusal: -96 for the NI version, -101 for the talk mode,
    /// -93 (internal error / invalid route) otherwise.
    pub fn return_code(&self) -> i32 {
        match self {
            RouteError::NiVersion(_) => -96,
            RouteError::TalkMode(_) => -101,
            _ => -93,
        }
    }
}

/// A decoded, validated route request.
///
/// Invariants after [`RouteRequest::decode`]: at least 2 hops; `1 <= rest < hops.len()`;
/// `offset` is the byte offset of hop `hops.len() - rest` (the next hop of this router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// NI version of the sender (byte 0x0A).
    pub ni_version: u8,
    /// Talk mode (byte 0x0C), 0..=2.
    pub talk_mode: u8,
    /// Remaining nodes (byte 0x0F): hops still ahead, including the next one.
    pub rest: u8,
    /// Byte offset of the next hop in the route string.
    pub offset: u32,
    /// All entries, including those already passed.
    pub hops: Vec<RouteHop>,
}

impl RouteRequest {
    /// A client's route over `hops` (first = first router): rest = entries - 1, offset =
    /// length of entry 0.
    ///
    /// With fewer than 2 hops the result is not a valid route (rest saturates at 0), which
    /// [`RouteRequest::decode`] on the other side rejects.
    pub fn new(hops: Vec<RouteHop>, talk_mode: u8, ni_version: u8) -> Self {
        let rest = u8::try_from(hops.len().saturating_sub(1)).unwrap_or(u8::MAX);
        let offset = hops.first().map_or(0, |h| len_u32(h.encoded_len()));
        Self {
            ni_version,
            talk_mode,
            rest,
            offset,
            hops,
        }
    }

    /// Decodes and strictly validates a route payload (without the NI length prefix).
    ///
    /// Checks, in this order: eyecatcher, header length, route info version, NI version,
    /// talk mode, non-empty route, route length against the bytes present, NUL terminators,
    /// entry count, rest nodes, offset. Strings are decoded lossily; `offset` is recomputed
    /// from the decoded strings so that [`RouteRequest::encode`] stays self-consistent (it
    /// only differs from the wire value when a field was not valid UTF-8).
    pub fn decode(payload: &[u8]) -> Result<Self, RouteError> {
        if payload.get(..ROUTE_EYECATCHER.len()) != Some(&ROUTE_EYECATCHER[..]) {
            return Err(RouteError::NotARoute);
        }
        let (header, route) = match payload.split_at_checked(ROUTE_HEADER_LEN) {
            Some(parts) => parts,
            None => return Err(RouteError::Truncated(payload.len())),
        };
        let mut h = [0u8; ROUTE_HEADER_LEN];
        h.copy_from_slice(header);
        let (info_version, ni_version, entries, talk_mode) = (h[0x09], h[0x0A], h[0x0B], h[0x0C]);
        // 0x0D..0x0F: unused, ignored.
        let rest = h[0x0F];
        let length = u32::from_be_bytes([h[0x10], h[0x11], h[0x12], h[0x13]]);
        let offset = u32::from_be_bytes([h[0x14], h[0x15], h[0x16], h[0x17]]);

        if info_version != ROUTE_INFO_VERSION {
            return Err(RouteError::InfoVersion(info_version));
        }
        if ni_version == 0 {
            return Err(RouteError::NiVersion(ni_version));
        }
        if talk_mode > talk_mode::NI_ROUT_IO {
            return Err(RouteError::TalkMode(talk_mode));
        }
        if entries < 2 || length == 0 {
            return Err(RouteError::Empty { entries, length });
        }
        // Compared as u64: no `0x18 + length` arithmetic that could wrap.
        if u64::from(length) != route.len() as u64 {
            return Err(RouteError::Length {
                declared: length,
                present: route.len(),
            });
        }

        // Never keep more hops than declared (at most 255); keep counting to report.
        let mut hops = Vec::with_capacity(usize::from(entries));
        let mut starts = Vec::with_capacity(usize::from(entries));
        let mut present = 0usize;
        let mut at = 0usize;
        let mut rest_bytes = route;
        while !rest_bytes.is_empty() {
            let (host, r) = take_cstr(rest_bytes).ok_or(RouteError::Unterminated(present))?;
            let (service, r) = take_cstr(r).ok_or(RouteError::Unterminated(present))?;
            let (password, r) = take_cstr(r).ok_or(RouteError::Unterminated(present))?;
            if hops.len() < usize::from(entries) {
                starts.push(at);
                hops.push(RouteHop {
                    host: String::from_utf8_lossy(host).into_owned(),
                    service: String::from_utf8_lossy(service).into_owned(),
                    password: String::from_utf8_lossy(password).into_owned(),
                });
            }
            at = route.len() - r.len();
            rest_bytes = r;
            present += 1;
        }
        if present != usize::from(entries) {
            return Err(RouteError::Entries {
                declared: entries,
                present,
            });
        }
        if rest == 0 || rest >= entries {
            return Err(RouteError::Rest { rest, entries });
        }
        let next = usize::from(entries - rest);
        match starts.get(next) {
            Some(&start) if start as u64 == u64::from(offset) => {}
            _ => return Err(RouteError::Offset(offset)),
        }
        let offset = len_u32(hops.iter().take(next).map(RouteHop::encoded_len).sum());
        Ok(Self {
            ni_version,
            talk_mode,
            rest,
            offset,
            hops,
        })
    }

    /// Encodes the payload (without the NI length prefix).
    ///
    /// The entry count is a byte on the wire: more than 255 hops cannot be represented and
    /// are declared as 255 (the receiver then refuses the route).
    pub fn encode(&self) -> Vec<u8> {
        let route_len: usize = self.hops.iter().map(RouteHop::encoded_len).sum();
        let mut out = Vec::with_capacity(ROUTE_HEADER_LEN.saturating_add(route_len));
        out.extend_from_slice(ROUTE_EYECATCHER);
        out.push(ROUTE_INFO_VERSION);
        out.push(self.ni_version);
        out.push(u8::try_from(self.hops.len()).unwrap_or(u8::MAX));
        out.push(self.talk_mode);
        out.extend_from_slice(&[0, 0]);
        out.push(self.rest);
        out.extend_from_slice(&len_u32(route_len).to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        for hop in &self.hops {
            for field in [&hop.host, &hop.service, &hop.password] {
                out.extend_from_slice(field.as_bytes());
                out.push(0);
            }
        }
        out
    }

    /// Index of the hop this router must connect to.
    pub fn next_index(&self) -> usize {
        self.hops.len() - self.rest as usize
    }

    /// The hop this router must connect to.
    pub fn next_hop(&self) -> &RouteHop {
        &self.hops[self.next_index()]
    }

    /// This router's own entry (the one before the next hop).
    pub fn own_hop(&self) -> &RouteHop {
        &self.hops[self.next_index() - 1]
    }

    /// SAProuters on the route before this one.
    pub fn routers_before(&self) -> usize {
        self.next_index() - 1
    }

    /// SAProuters on the route after this one (the final target is not a router).
    pub fn routers_after(&self) -> usize {
        self.rest as usize - 1
    }

    /// The request the next router must receive: offset advanced past the next hop and rest
    /// decremented. `None` when the next hop is the final target.
    pub fn advanced(&self) -> Option<RouteRequest> {
        if self.rest <= 1 {
            return None;
        }
        let next = self.hops.len().checked_sub(usize::from(self.rest))?;
        let step = len_u32(self.hops.get(next)?.encoded_len());
        Some(RouteRequest {
            offset: self.offset.checked_add(step)?,
            rest: self.rest - 1,
            ..self.clone()
        })
    }
}

/// A length as the u32 of the wire format (saturating; real routes are below 10 KB).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Splits a NUL-terminated field off the front: (field without NUL, remainder).
fn take_cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    let (field, rest) = bytes.split_at(nul);
    Some((field, rest.get(1..)?))
}

#[cfg(test)]
mod tests;
