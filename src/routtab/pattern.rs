//! The match patterns of a table line: host (address + don't-care mask), service (range),
//! SNC name, and hop limits.

use std::net::IpAddr;

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
        todo!("policy helper")
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
        todo!("policy helper")
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
        todo!("policy helper")
    }

    /// True when the authenticated peer name `peer` matches.
    pub fn matches(&self, peer: &str) -> bool {
        todo!("policy helper")
    }
}
