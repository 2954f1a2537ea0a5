//! Set relations between the match patterns of two lines, exact where they answer `true`:
//! the checker only claims what holds for every address and port.

use std::net::IpAddr;

use crate::routtab::{AddressMask, HostPattern, ServicePattern};

/// True when every address `a` matches is matched by `b` (`false` when unsure: a union of
/// several of `b`'s alternatives covering one of `a`'s is not recognised).
pub fn host_subset(a: &HostPattern, b: &HostPattern) -> bool {
    match (a, b) {
        (_, HostPattern::Any) => true,
        (HostPattern::Any, HostPattern::Addresses(_)) => false,
        (HostPattern::Addresses(av), HostPattern::Addresses(bv)) => {
            av.iter().all(|ma| bv.iter().any(|mb| mask_subset(ma, mb)))
        }
    }
}

/// True when some address matches both patterns.
pub fn hosts_intersect(a: &HostPattern, b: &HostPattern) -> bool {
    match (a, b) {
        (HostPattern::Any, HostPattern::Any) => true,
        (HostPattern::Any, HostPattern::Addresses(v))
        | (HostPattern::Addresses(v), HostPattern::Any) => !v.is_empty(),
        (HostPattern::Addresses(av), HostPattern::Addresses(bv)) => av
            .iter()
            .any(|ma| bv.iter().any(|mb| masks_intersect(ma, mb))),
    }
}

/// True when the pattern matches no address (a host name that did not resolve).
pub fn host_is_empty(p: &HostPattern) -> bool {
    matches!(p, HostPattern::Addresses(v) if v.is_empty())
}

/// True when the pattern matches every address of IPv4 or of IPv6 (`*`, `*.*.*.*`,
/// `0.0.0.0/0`, `::/0`): a wildcard for the checker's purposes.
pub fn host_is_wildcard(p: &HostPattern) -> bool {
    match p {
        HostPattern::Any => true,
        HostPattern::Addresses(v) => v
            .iter()
            .any(|m| bits(m.wildcard) == family_ones(m.wildcard)),
    }
}

/// True when every port `a` matches is matched by `b`.
pub fn service_subset(a: &ServicePattern, b: &ServicePattern) -> bool {
    match (a, b) {
        (_, ServicePattern::Any) => true,
        (ServicePattern::Any, ServicePattern::Range(..)) => false,
        (ServicePattern::Range(amin, amax), ServicePattern::Range(bmin, bmax)) => {
            bmin <= amin && amax <= bmax
        }
    }
}

/// True when some port matches both patterns.
pub fn services_intersect(a: &ServicePattern, b: &ServicePattern) -> bool {
    match (a, b) {
        (ServicePattern::Any, _) | (_, ServicePattern::Any) => true,
        (ServicePattern::Range(amin, amax), ServicePattern::Range(bmin, bmax)) => {
            amin <= bmax && bmin <= amax
        }
    }
}

/// The ports a service pattern matches, as an inclusive range.
pub fn service_range(p: &ServicePattern) -> (u16, u16) {
    match *p {
        ServicePattern::Any => (0, u16::MAX),
        ServicePattern::Range(min, max) => (min, max),
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn family_ones(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => u128::from(u32::MAX),
        IpAddr::V6(_) => u128::MAX,
    }
}

fn same_family(a: &AddressMask, b: &AddressMask) -> bool {
    a.addr.is_ipv4() == b.addr.is_ipv4()
}

/// `a ⊆ b`: every bit `b` cares about, `a` cares about too, with the same value.
fn mask_subset(a: &AddressMask, b: &AddressMask) -> bool {
    let (wa, wb) = (bits(a.wildcard), bits(b.wildcard));
    same_family(a, b) && wa & !wb == 0 && (bits(a.addr) ^ bits(b.addr)) & !wb == 0
}

/// Some address matches both: the bits both care about agree.
fn masks_intersect(a: &AddressMask, b: &AddressMask) -> bool {
    let care = !(bits(a.wildcard) | bits(b.wildcard));
    same_family(a, b) && (bits(a.addr) ^ bits(b.addr)) & care == 0
}
