//! `ACE` lines of the DMZ router's parameter file: who may register (docs/reverse-invoke.md,
//! "Parameter file").
//! `P|D address[/prefix]`, up to 32, first match decides, no match denies, an empty list
//! lets anyone register (SAP's "ACL size 0").

use std::net::IpAddr;

/// One access-control entry: permit or deny registrations from a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ace {
    /// `P` (true) or `D` (false).
    pub permit: bool,
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 when written without one).
    pub prefix: u8,
}

impl Ace {
    /// Whether `ip` lies in this entry's network. IPv4-mapped IPv6 peers count as IPv4.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = crate::router::selfaddr::canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Ace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = if self.permit { 'P' } else { 'D' };
        write!(f, "{action} {}/{}", self.addr, self.prefix)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let bits = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - bits);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// First matching entry decides; no match denies, unless the list is empty (anyone).
pub fn ace_permits(list: &[Ace], ip: IpAddr) -> bool {
    if list.is_empty() {
        return true;
    }
    list.iter()
        .find(|a| a.matches(ip))
        .is_some_and(|a| a.permit)
}

/// `P 10.0.0.0/8`, `D 192.0.2.7`, `p ::1/128`.
pub fn parse_ace(v: &str) -> Result<Ace, String> {
    let mut words = v.split_whitespace();
    let (Some(action), Some(net), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("'{v}': expected 'P|D address[/prefix]'"));
    };
    let permit = match action {
        "P" | "p" => true,
        "D" | "d" => false,
        _ => return Err(format!("'{action}': action must be P (permit) or D (deny)")),
    };
    let (addr_text, prefix_text) = match net.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (net, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("'{addr_text}' is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("'/{p}': prefix must be 0 to {max}")),
        },
    };
    Ok(Ace {
        permit,
        addr,
        prefix,
    })
}
