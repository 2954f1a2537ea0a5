//! Is an address this machine? The classic SAProuter admin bypass routes to the router's own
//! port through a spelling of a local address (`127.1`, `2130706433`, its own IP, `0.0.0.0`);
//! the check runs on the resolved address, so every spelling ends up here.

use std::net::{IpAddr, UdpSocket};

/// IPv4-mapped IPv6 addresses as IPv4; everything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// True when `ip` is loopback, unspecified, or assigned to a local interface.
pub fn is_local(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    // Binding succeeds only for addresses of this host: the OS answers for every interface,
    // with no interface list to keep fresh.
    UdpSocket::bind((ip, 0)).is_ok()
}

/// True when `ip:port` would reach one of this router's own listening ports.
pub fn is_own_listener(ip: IpAddr, port: u16, own_ports: &[u16]) -> bool {
    own_ports.contains(&port) && is_local(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_spellings() {
        for text in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_local(ip), "{text}");
        }
        assert!(!is_local("192.0.2.1".parse().unwrap()));
        assert!(is_own_listener("127.0.0.1".parse().unwrap(), 3299, &[3299]));
        assert!(!is_own_listener(
            "127.0.0.1".parse().unwrap(),
            3298,
            &[3299]
        ));
    }
}
