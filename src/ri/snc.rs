//! SNC as TLS on reverse-invoke links (docs/snc-tls.md). With `-K`, every link is TLS 1.3
//! with mutual authentication:
//!
//! - the DMZ router accepts registrations over TLS only, and a LAN router registering an
//!   address and service that a `KT` line names must present that line's name;
//! - the LAN router checks the DMZ router's certificate (and its name, when a `KT` line
//!   names the DMZ router's registration port), and the sessions it receives over the link
//!   carry the DMZ router's name for the `KP`/`KS`/`KD` lines.
//!
//! A router without `-K` keeps plain links, and refuses a registration a `KT` line names.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::link::{RegAddr, Register};
use crate::ni::rterr::rc;
use crate::router::conn::Side;
use crate::router::errors::RouteFailure;
use crate::router::selfaddr::canonical;
use crate::router::state::Shared;
use crate::routtab::RoutTab;

/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Why the DMZ side did not get a link to read a registration from.
pub enum NoLink {
    /// Answer this plaintext connection with the refusal.
    Refuse(TcpStream, RouteFailure),
    /// The TLS handshake failed (already logged); just close.
    Closed,
}

/// DMZ side: the registration connection as the link to read from, and the LAN router's
/// SNC name. With `-K` it must be TLS (checked on the first byte, so a plaintext LAN
/// router hears why); without, it stays plain.
pub async fn accept_link(
    shared: &Shared,
    socket: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Result<(Side, Option<String>), NoLink> {
    let Some(snc) = shared.config().snc.clone() else {
        return Ok((Side::Tcp(socket), None));
    };
    let mut first = [0u8; 1];
    let tls = matches!(
        timeout_at(deadline, socket.peek(&mut first)).await,
        Ok(Ok(1))
    ) && first[0] == TLS_HANDSHAKE;
    if !tls {
        let refusal = RouteFailure::registration_refused(
            rc::NIEROUT_SNC_FAILURE,
            "this router runs with SNC (-K): registrations must use TLS",
        );
        return Err(NoLink::Refuse(socket, refusal));
    }
    match snc.accept(socket, deadline).await {
        Ok((stream, name)) => {
            tracing::info!(%peer, snc_name = %name, "reverse-invoke: TLS link authenticated");
            Ok((Side::stream(stream), Some(name)))
        }
        Err(why) => {
            tracing::warn!(%peer, %why, "reverse-invoke: TLS handshake failed; registration connection closed");
            Err(NoLink::Closed)
        }
    }
}

/// DMZ side: every registered address whose `KT` line (for the registered service) names
/// an SNC peer must have been registered by a LAN router authenticated with that name.
///
/// `Ok(true)` when the registrant is vetted by `KT` lines: it is authenticated and a `KT`
/// line names it for every address it registers (it may then share them with other vetted
/// LAN routers, active-active).
pub fn check_registration(
    routtab: &RoutTab,
    reg: &Register,
    peer: SocketAddr,
    name: Option<&str>,
) -> Result<bool, RouteFailure> {
    let mut ips: Vec<IpAddr> = reg
        .addrs
        .iter()
        .filter_map(|a| match a {
            RegAddr::Ip(ip) => Some(canonical(*ip)),
            RegAddr::Name(_) => None,
        })
        .collect();
    // The registry adds the observed source address to these registrations: check it too.
    if reg.implicit || ips.is_empty() {
        ips.push(canonical(peer.ip()));
    }
    // A registration of names only has no address a KT line could vouch for by name.
    let names_only = reg.addrs.iter().all(|a| !matches!(a, RegAddr::Ip(_)));
    let mut vetted = name.is_some() && !names_only;
    for ip in ips {
        let Some(wanted) = routtab.snc_target(ip, reg.reg_service) else {
            vetted = false;
            continue;
        };
        let this = match name {
            Some(name) if wanted.matches(name) => continue,
            Some(name) => format!("this LAN router is {name}"),
            None => "this registration is not SNC (TLS)".to_string(),
        };
        return Err(RouteFailure::registration_refused(
            rc::NIEROUT_SNC_FAILURE,
            format!(
                "a KT line requires SNC name {wanted} for {ip}:{}; {this}",
                reg.reg_service
            ),
        ));
    }
    Ok(vetted)
}

/// LAN side: the connection to the DMZ router as the link, and the DMZ router's SNC name.
/// With `-K` the link is TLS; a `KT` line for the DMZ router's address and registration
/// port must name it. Errors are the reason the slot logs.
pub async fn connect_link(
    shared: &Shared,
    socket: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Result<(Side, Option<String>), String> {
    let routtab = shared.routtab();
    let kt = routtab.snc_target(peer.ip(), peer.port());
    let Some(snc) = shared.config().snc.clone() else {
        return match kt {
            None => Ok((Side::Tcp(socket), None)),
            Some(wanted) => Err(format!(
                "a KT line requires SNC name {wanted} for the DMZ router at {peer}, but this router runs without -K"
            )),
        };
    };
    let (stream, name) = snc
        .connect(socket, peer.ip(), deadline)
        .await
        .map_err(|why| format!("TLS with the DMZ router at {peer} failed: {why}"))?;
    if let Some(wanted) = kt {
        if !wanted.matches(&name) {
            return Err(format!(
                "the DMZ router at {peer} is {name}; the KT line requires {wanted}"
            ));
        }
    }
    tracing::info!(%peer, snc_name = %name, "reverse-invoke: TLS link to the DMZ router authenticated");
    Ok((Side::stream(stream), Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ri::link::LINK_VERSION;
    use crate::routtab::{parse_table, SystemResolver};

    fn table(text: &str) -> RoutTab {
        parse_table(text, std::path::Path::new("t"), &SystemResolver::default()).unwrap()
    }

    fn reg(addrs: &[RegAddr], implicit: bool) -> Register {
        Register {
            version: LINK_VERSION,
            instance: 1,
            link_index: 0,
            reg_service: 5002,
            implicit,
            addrs: addrs.to_vec(),
        }
    }

    fn ip(s: &str) -> RegAddr {
        RegAddr::Ip(s.parse().unwrap())
    }

    #[test]
    fn a_kt_line_for_every_registered_address_vets_the_registrant() {
        let t = table("KT \"p:CN=lan\" 10.9.9.9 5002\nKT * 10.9.9.8 5002\nP * * *\n");
        let peer: SocketAddr = "10.0.0.21:40000".parse().unwrap();
        let pseudo = reg(&[ip("10.9.9.9")], false);
        assert_eq!(
            check_registration(&t, &pseudo, peer, Some("p:CN=lan")),
            Ok(true)
        );
        let both = reg(&[ip("10.9.9.9"), ip("10.9.9.8")], false);
        assert_eq!(
            check_registration(&t, &both, peer, Some("p:CN=lan")),
            Ok(true)
        );
        // The wrong name is refused, as before.
        let refused = check_registration(&t, &pseudo, peer, Some("p:CN=other")).unwrap_err();
        assert_eq!(refused.rc, rc::NIEROUT_SNC_FAILURE);
        // An address no KT line names: admitted, not vetted.
        let partly = reg(&[ip("10.9.9.9"), ip("10.9.9.7")], false);
        assert_eq!(
            check_registration(&t, &partly, peer, Some("p:CN=lan")),
            Ok(false)
        );
        // Implicit: the observed source (no KT line) joins, so it is not vetted.
        let implicit = reg(&[ip("10.9.9.9")], true);
        assert_eq!(
            check_registration(&t, &implicit, peer, Some("p:CN=lan")),
            Ok(false)
        );
        // Names only, or no SNC at all: never vetted by KT.
        let names = reg(&[RegAddr::Name("lan.example".into())], false);
        let t_any = table("KT * * 5002\nP * * *\n");
        assert_eq!(
            check_registration(&t_any, &names, peer, Some("p:CN=lan")),
            Ok(false)
        );
        let plain = table("P * * *\n");
        assert_eq!(check_registration(&plain, &pseudo, peer, None), Ok(false));
    }
}
