//! The resolver the daemon uses: the system's host resolver (`getaddrinfo` through
//! [`std::net::ToSocketAddrs`]) and its services database.

use std::net::{IpAddr, ToSocketAddrs};

use super::Resolver;
use crate::services::Services;

/// Resolves host names with the system resolver and service names with a [`Services`]
/// database (by default `/etc/services` plus SAP's built-in names). Blocking: use it where
/// the table loads, not on a connection's path.
#[derive(Debug, Clone)]
pub struct SystemResolver {
    services: Services,
}

impl SystemResolver {
    /// The system resolver with `/etc/services`.
    pub fn new() -> Self {
        Self::with_services(Services::system())
    }

    /// The system resolver with the given services database.
    pub fn with_services(services: Services) -> Self {
        Self { services }
    }
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl Resolver for SystemResolver {
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let addrs = (name, 0u16).to_socket_addrs().map_err(|e| e.to_string())?;
        let mut out: Vec<IpAddr> = Vec::new();
        for addr in addrs {
            let ip = addr.ip().to_canonical();
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    fn resolve_service(&self, name: &str) -> Option<u16> {
        self.services.resolve(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_localhost_and_builtin_services() {
        let r = SystemResolver::with_services(Services::parse("telnet 23/tcp\n"));
        let addrs = r.resolve_host("localhost").unwrap();
        assert!(addrs.iter().all(|a| a.is_loopback()), "{addrs:?}");
        assert!(!addrs.is_empty());
        assert_eq!(r.resolve_service("telnet"), Some(23));
        assert_eq!(r.resolve_service("sapdp01"), Some(3201));
        assert_eq!(r.resolve_service("nonexistent-service-name"), None);
    }

    #[test]
    fn unknown_host_is_an_error() {
        let r = SystemResolver::with_services(Services::builtin_only());
        assert!(r.resolve_host("no-such-host.invalid").is_err());
    }
}
