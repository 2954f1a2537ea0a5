//! The match patterns of a table line: host (address + don't-care mask), service (range),
//! SNC name, and hop limits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `Pv,n` limits: SAProuters allowed before and after this one (255 = `*`, unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopLimits {
    /// Max routers before this one.
    pub before: u8,
    /// Max routers after this one.
    pub after: u8,
}

impl Default for HopLimits {
    fn default() -> Self {
        Self {
            before: 255,
            after: 255,
        }
    }
}

/// A host field: `*`, or alternatives of address + don't-care mask (an IPv4 pattern like
/// `10.1.*.*`, `10.0.0.0/8`, `10.2.00001xxx.*`, or every address of a resolved name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`.
    Any,
    /// Matches when any alternative matches.
    Addresses(Vec<AddressMask>),
}

/// An address with a mask whose set bits are "don't care" (SAP's internal form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressMask {
    /// The address.
    pub addr: IpAddr,
    /// Don't-care bits (same family as `addr`).
    pub wildcard: IpAddr,
}

impl HostPattern {
    /// True when `addr` matches. IPv4-mapped IPv6 addresses match IPv4 patterns.
    pub fn matches(&self, addr: IpAddr) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Addresses(alternatives) => {
                let addr = addr.to_canonical();
                alternatives.iter().any(|alt| alt.matches(addr))
            }
        }
    }
}

impl AddressMask {
    /// An exact address (no don't-care bits); IPv4-mapped IPv6 becomes IPv4.
    pub fn exact(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(v4) => Self::v4(v4, Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(v6) => Self::v6(v6, Ipv6Addr::UNSPECIFIED),
        }
    }

    /// An IPv4 address with don't-care bits; the don't-care bits of `addr` are cleared.
    pub fn v4(addr: Ipv4Addr, wildcard: Ipv4Addr) -> Self {
        let w = u32::from(wildcard);
        Self {
            addr: IpAddr::V4(Ipv4Addr::from(u32::from(addr) & !w)),
            wildcard: IpAddr::V4(wildcard),
        }
    }

    /// An IPv6 address with don't-care bits; the don't-care bits of `addr` are cleared.
    pub fn v6(addr: Ipv6Addr, wildcard: Ipv6Addr) -> Self {
        let w = u128::from(wildcard);
        Self {
            addr: IpAddr::V6(Ipv6Addr::from(u128::from(addr) & !w)),
            wildcard: IpAddr::V6(wildcard),
        }
    }

    /// A CIDR prefix (`prefix` at most 32 for IPv4, 128 for IPv6; larger values clamp).
    /// An IPv4-mapped IPv6 prefix of at least 96 bits becomes the IPv4 prefix.
    pub fn prefix(addr: IpAddr, prefix: u8) -> Self {
        match addr {
            IpAddr::V4(v4) => {
                let host_bits = 32 - u32::from(prefix.min(32));
                let wildcard = u32::MAX.checked_shr(32 - host_bits).unwrap_or(0);
                Self::v4(v4, Ipv4Addr::from(wildcard))
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self::prefix(IpAddr::V4(v4), prefix - 96),
                _ => {
                    let host_bits = 128 - u32::from(prefix.min(128));
                    let wildcard = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
                    Self::v6(v6, Ipv6Addr::from(wildcard))
                }
            },
        }
    }

    /// True when `addr` (already canonical) equals `self.addr` in every cared-for bit.
    fn matches(&self, addr: IpAddr) -> bool {
        match (addr, self.addr, self.wildcard) {
            (IpAddr::V4(a), IpAddr::V4(p), IpAddr::V4(w)) => {
                (u32::from(a) ^ u32::from(p)) & !u32::from(w) == 0
            }
            (IpAddr::V6(a), IpAddr::V6(p), IpAddr::V6(w)) => {
                (u128::from(a) ^ u128::from(p)) & !u128::from(w) == 0
            }
            _ => false,
        }
    }
}

/// A service field: `*` or an inclusive port range (a single port is `min == max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePattern {
    /// `*`.
    Any,
    /// `min..=max`.
    Range(u16, u16),
}

impl ServicePattern {
    /// True when `port` matches.
    pub fn matches(&self, port: u16) -> bool {
        match *self {
            ServicePattern::Any => true,
            ServicePattern::Range(min, max) => (min..=max).contains(&port),
        }
    }
}

/// An SNC name field of a K* line: `*` (any authenticated name) or a name such as
/// `p:CN=SAPROUTER1, O=Example` (the `p:` prefix kept; compared as a normalised
/// distinguished name: attribute types case-insensitive, blanks around `,` and `=` ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SncName {
    /// `*`.
    Any,
    /// A specific name, stored normalised.
    Name(String),
}

impl SncName {
    /// Parses a field (quotes already removed).
    pub fn new(text: &str) -> Self {
        let text = text.trim();
        if text == "*" {
            return SncName::Any;
        }
        let (prefix, body) = split_prefix(text);
        SncName::Name(format!("{prefix}{}", normalise_dn(body)))
    }

    /// True when the authenticated peer name `peer` matches.
    pub fn matches(&self, peer: &str) -> bool {
        match self {
            SncName::Any => true,
            SncName::Name(name) => {
                let (_, ours) = split_prefix(name);
                let (_, theirs) = split_prefix(peer.trim());
                ours == normalise_dn(theirs)
            }
        }
    }
}

impl std::fmt::Display for SncName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SncName::Any => f.write_str("*"),
            SncName::Name(name) => f.write_str(name),
        }
    }
}

/// Splits an optional `p:` prefix (any case) off; the prefix comes back as `"p:"` or `""`.
fn split_prefix(text: &str) -> (&'static str, &str) {
    match text.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("p:") => ("p:", &text[2..]),
        _ => ("", text),
    }
}

/// Normalises a distinguished name: RDNs split on unescaped commas, blanks around each RDN
/// and around its first unescaped `=` removed, attribute types lowercased, values kept.
fn normalise_dn(dn: &str) -> String {
    split_unescaped(dn, ',')
        .into_iter()
        .map(|rdn| {
            let rdn = rdn.trim();
            match split_unescaped(rdn, '=').split_first() {
                Some((attr, value)) if !value.is_empty() => {
                    let value = &rdn[attr.len() + 1..];
                    format!("{}={}", attr.trim().to_ascii_lowercase(), value.trim())
                }
                _ => rdn.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}
