//! Connections from load balancers (`--proxy-from`). A listed sender must open every
//! connection with a PROXY protocol header (v1 or v2, see [`crate::proxyproto`]); the
//! client address in it then stands for the connection's source everywhere: the table's
//! decisions, the `-G` log, the client table of `-l`, the trace, the per-source caps and the
//! penalties. The balancer's own address is never capped or penalised as if it were one
//! client, and a header from anyone else is never read as one (it is an invalid first
//! message like any other).
//!
//! The header is read within the connection's `-W` deadline, a peek and a read at a time,
//! never past its end: the client's first bytes (an NI route, a TLS ClientHello) stay on
//! the connection for the session. A sender that does not send a valid header in time is
//! closed without a reply (whatever it relays is not a client this router can answer)
//! and logged, rate-limited. Health checks (v2 `LOCAL`, v1 `UNKNOWN`, or a header naming
//! the balancer's own connection, which is what haproxy's version 1 checks send) are
//! closed at once and quietly: no `-G` line, a debug line in the trace.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::limits::PendingPermit;
use super::selfaddr;
use super::session;
use super::state::Shared;
use crate::metrics::SessionEnd;
use crate::proxyproto::{self, Command, Header, HeaderError, Scan, MAX_HEADER};

/// One network of `--proxy-from`: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    /// The network address (host bits cleared; IPv4-mapped IPv6 as IPv4).
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv4 or IPv6 address"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= bits && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("prefix length '{p}' is not a number 0..={bits}")),
            },
        };
        // An IPv4-mapped IPv6 network of at least 96 bits is the IPv4 network.
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        Ok(Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = selfaddr::canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The senders of `--proxy-from`: empty (the default) means no PROXY protocol at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyFrom {
    nets: Vec<Net>,
}

impl ProxyFrom {
    /// Parses one `--proxy-from` value, `CIDR[,CIDR...]` (a bare address is one host), and
    /// adds its networks.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("'{text}': an empty entry"));
            }
            let net = Net::parse(part).map_err(|why| format!("'{text}': {why}"))?;
            if !self.nets.contains(&net) {
                self.nets.push(net);
            }
        }
        Ok(())
    }

    /// True when connections from `ip` must start with a PROXY protocol header.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// True when no sender is listed.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl fmt::Display for ProxyFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// The `-l` line of the setting.
pub fn info_line(shared: &Shared) -> String {
    let from = &shared.config().proxy_from;
    if from.is_empty() {
        "PROXY protocol      : off (--proxy-from)".to_string()
    } else {
        format!("PROXY protocol      : required from {from} (--proxy-from); clients are the addresses in the headers")
    }
}

/// Why no client came of a balancer's connection.
#[derive(Debug)]
enum Failure {
    /// `-W` passed before the header was complete.
    Timeout,
    /// The sender closed (or reset) first.
    Closed,
    /// The bytes are not a header this router takes.
    Invalid(HeaderError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no complete header within -W"),
            Failure::Closed => f.write_str("closed before a complete header"),
            Failure::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// Reads the header off `stream` before `deadline`, and nothing behind it.
async fn read_header(stream: &mut TcpStream, deadline: Instant) -> Result<Header, Failure> {
    timeout_at(deadline, read_header_now(stream))
        .await
        .unwrap_or(Err(Failure::Timeout))
}

async fn read_header_now(stream: &mut TcpStream) -> Result<Header, Failure> {
    // The bound, not the length field, sizes the buffer.
    let mut buf = vec![0u8; MAX_HEADER];
    let mut have = 0;
    loop {
        // Look without taking: whatever follows the header must stay on the connection.
        let seen = match stream.peek(&mut buf[have..]).await {
            Ok(0) | Err(_) => return Err(Failure::Closed),
            Ok(n) => have + n,
        };
        match proxyproto::scan(&buf[..seen]).map_err(Failure::Invalid)? {
            Scan::Complete(end) => {
                // scan() said "incomplete" for the bytes already taken, so `end > have`.
                let take = &mut buf[have.min(end)..end];
                stream.read_exact(take).await.map_err(|_| Failure::Closed)?;
                return proxyproto::parse(&buf[..end]).map_err(Failure::Invalid);
            }
            Scan::Incomplete => {
                // The header goes on past what is there, so all of it is header: take it;
                // the next peek then waits for more.
                stream
                    .read_exact(&mut buf[have..seen])
                    .await
                    .map_err(|_| Failure::Closed)?;
                have = seen;
            }
        }
        if have == buf.len() {
            // scan() never leaves a header this long incomplete; a guard, not a path.
            return Err(Failure::Invalid(HeaderError::NotAHeader));
        }
    }
}

/// Reads a balancer's header and admits the client it names: returns the client's address
/// (which then stands for the connection's source) and its place in the route phase, or
/// how the connection ended when it is to be closed (no valid header, a health check, a
/// client under penalty, or the route phase full for it: then -100 is sent as at accept).
pub async fn admit(
    shared: &Shared,
    stream: &mut TcpStream,
    balancer: SocketAddr,
    deadline: Instant,
) -> Result<(SocketAddr, PendingPermit), SessionEnd> {
    let header = match read_header(stream, deadline).await {
        Ok(header) => header,
        Err(why) => {
            crate::gated!(shared.refusal_log(), warn, %balancer, %why, "no valid PROXY protocol header from a --proxy-from sender; connection closed");
            return Err(SessionEnd::Closed);
        }
    };
    let version = header.version;
    let (source, destination) = match header.command {
        Command::Proxy {
            source,
            destination,
        } => (source, destination),
        Command::Local => {
            tracing::debug!(%balancer, version, "PROXY protocol health check (LOCAL/UNKNOWN); connection closed");
            return Err(SessionEnd::Closed);
        }
        Command::NoAddress => {
            crate::gated!(shared.refusal_log(), info, %balancer, version, "PROXY protocol header without a client IP address (UNSPEC or UNIX); connection closed");
            return Err(SessionEnd::Closed);
        }
    };
    let client = SocketAddr::new(selfaddr::canonical(source.ip()), source.port());
    // haproxy's version 1 health checks (`check-send-proxy`) name their own connection:
    // the balancer speaking for itself, like LOCAL.
    if client == SocketAddr::new(selfaddr::canonical(balancer.ip()), balancer.port()) {
        tracing::debug!(%balancer, version, "PROXY protocol health check (the balancer's own address); connection closed");
        return Err(SessionEnd::Closed);
    }
    // Local clients may administer the router: a balancer on another host cannot make one.
    if selfaddr::is_local(client.ip()) && !selfaddr::is_local(balancer.ip()) {
        crate::gated!(shared.refusal_log(), warn, %balancer, %client, "PROXY protocol header from a remote balancer names an address of this host; connection closed");
        return Err(SessionEnd::Closed);
    }
    tracing::info!(%balancer, %client, %destination, version, "PROXY protocol: connection relayed for client");
    if shared.turned_away(client) {
        return Err(SessionEnd::Closed);
    }
    match shared.admission().enter_route_phase(client.ip()) {
        Ok(pending) => Ok((client, pending)),
        Err(refusal) => {
            let failure = super::pending_refused(shared, client, refusal);
            let end = session::refuse(shared, Some(stream), client, failure.into(), None).await;
            session::linger(stream).await;
            Err(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn shared() -> Arc<Shared> {
        let mut config = super::super::RouterConfig::default();
        config.proxy_from.add("0.0.0.0/0").unwrap();
        // One refusal would penalise: the tests see whether anything was counted.
        config.penalty = Some(super::super::penalty::PenaltyPolicy::parse("1/60").unwrap());
        Shared::for_tests(config)
    }

    /// Sends `bytes` over a loopback connection and runs `admit` on the router's end as if
    /// the peer were `balancer`; returns the outcome and the bytes left on the connection.
    async fn admit_bytes(
        bytes: &[u8],
        balancer: &str,
    ) -> (Option<SocketAddr>, Vec<u8>, Arc<Shared>) {
        let shared = shared();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        client.write_all(bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let admitted = admit(&shared, &mut stream, balancer.parse().unwrap(), deadline).await;
        let client_addr = admitted.ok().map(|(addr, pending)| {
            assert_eq!(
                shared.admission().in_route_phase(),
                1,
                "the client holds its place"
            );
            drop(pending);
            addr
        });
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        (client_addr, rest, shared)
    }

    #[tokio::test]
    async fn the_header_is_taken_and_nothing_behind_it() {
        let mut bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 3299\r\n".to_vec();
        bytes.extend_from_slice(b"\x16\x03\x01 and the rest");
        let (client, rest, shared) = admit_bytes(&bytes, "192.0.2.1:5000").await;
        assert_eq!(client, Some("192.0.2.7:40000".parse().unwrap()));
        assert_eq!(rest, b"\x16\x03\x01 and the rest");
        assert_eq!(shared.admission().in_route_phase(), 0);
        // IPv4-mapped clients are IPv4 clients.
        let mut v2 = proxyproto::V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x21, 0, 36]);
        v2.extend_from_slice(
            &"::ffff:192.0.2.8"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        v2.extend_from_slice(&[0; 16]);
        v2.extend_from_slice(&[0, 7, 0, 8]);
        v2.extend_from_slice(b"NI");
        let (client, rest, _) = admit_bytes(&v2, "192.0.2.1:5000").await;
        assert_eq!(client, Some("192.0.2.8:7".parse().unwrap()));
        assert_eq!(rest, b"NI");
    }

    #[tokio::test]
    async fn a_remote_balancer_cannot_name_this_host() {
        let header = b"PROXY TCP4 127.0.0.1 198.51.100.1 40000 3299\r\n";
        let (client, _, _) = admit_bytes(header, "192.0.2.1:5000").await;
        assert_eq!(client, None, "remote balancer, local client");
        let (client, _, _) = admit_bytes(header, "127.0.0.2:5000").await;
        assert_eq!(
            client,
            Some("127.0.0.1:40000".parse().unwrap()),
            "both local"
        );
    }

    #[tokio::test]
    async fn checks_and_failures_admit_no_one() {
        for (what, bytes) in [
            ("LOCAL", {
                let mut h = proxyproto::V2_SIGNATURE.to_vec();
                h.extend_from_slice(&[0x20, 0, 0, 0]);
                h
            }),
            ("UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec()),
            (
                "own connection",
                b"PROXY TCP4 192.0.2.1 198.51.100.1 5000 3299\r\n".to_vec(),
            ),
            ("closed early", b"PROXY TCP4 192.0.2.1".to_vec()),
            ("garbage", b"\x00\x00\x00\x10NI_ROUTE".to_vec()),
        ] {
            let (client, _, shared) = admit_bytes(&bytes, "192.0.2.1:5000").await;
            assert_eq!(client, None, "{what}");
            assert_eq!(shared.admission().in_route_phase(), 0, "{what}");
            assert_eq!(
                shared.admission().penalties_tracked(),
                0,
                "{what}: no one penalised"
            );
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_match_and_print() {
        let mut from = ProxyFrom::default();
        assert!(from.is_empty());
        from.add("10.1.2.3/8, 192.0.2.7").unwrap();
        from.add("2001:db8::/32,::ffff:198.51.100.0/120").unwrap();
        from.add("192.0.2.7").unwrap();
        assert_eq!(
            from.to_string(),
            "10.0.0.0/8, 192.0.2.7/32, 2001:db8::/32, 198.51.100.0/24"
        );
        assert!(from.contains(ip("10.255.0.1")));
        assert!(from.contains(ip("::ffff:10.0.0.1")));
        assert!(from.contains(ip("192.0.2.7")));
        assert!(!from.contains(ip("192.0.2.8")));
        assert!(from.contains(ip("2001:db8:ffff::1")));
        assert!(!from.contains(ip("2001:db9::1")));
        assert!(from.contains(ip("198.51.100.200")));
        assert!(!from.contains(ip("11.0.0.1")));
        let mut all = ProxyFrom::default();
        all.add("0.0.0.0/0,::/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")) && all.contains(ip("fe80::1")));
    }

    #[test]
    fn bad_values_name_themselves() {
        for (text, needle) in [
            ("10.0.0.0/33", "prefix length '33'"),
            ("::/129", "prefix length '129'"),
            ("10.0.0.0/+8", "prefix length '+8'"),
            ("10.0.0.0/", "prefix length ''"),
            (
                "host.example",
                "'host.example' is not an IPv4 or IPv6 address",
            ),
            ("10.0.0.1,,10.0.0.2", "an empty entry"),
            ("", "an empty entry"),
        ] {
            let err = ProxyFrom::default().add(text).unwrap_err();
            assert!(err.contains(needle) && err.contains(text), "{text}: {err}");
        }
    }
}
