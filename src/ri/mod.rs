//! Reverse invoke (`saprouter -i FILE`): the LAN router dials out to the DMZ router and
//! registers a pseudo address; routed sessions to that address then travel as multiplexed
//! streams over the LAN router's outbound links, so nothing ever listens on the LAN side.
//!
//! SAP's own link protocol is undocumented: both ends of a link must be saprouter-rs
//! (docs/reverse-invoke.md has the layout).
//!
//! - [`params`]: the `-i` parameter file with SAP's names and defaults ([`ace`]: `ACE` lines).
//! - [`link`]: the registration handshake and control-stream messages (sans-IO);
//!   [`control`]: heartbeat tokens and their echoes (round-trip times).
//! - [`carrier`]: the multiplexer a link runs, chosen by the handshake's version: [`mux`]
//!   (version 1: the yamux session of one link: driver, stream counting, heartbeats) or
//!   [`linkmux`] (version 2: this project's own, with `splice(2)` on plain TCP links).
//! - [`registry`]: the DMZ side's registrations, behind the router's `RegisteredHops`.
//! - [`client`]: client mode (DMZ): the registration port.
//! - [`server`]: server mode (LAN): the outbound links and the sessions over them.
//! - [`snc`]: SNC as TLS on the links (`-K`): TLS, and the `KT` name checks.

pub mod ace;
pub mod carrier;
pub mod client;
pub mod control;
pub mod link;
pub mod linkmux;
pub mod mux;
pub mod params;
pub mod registry;
pub mod server;
pub mod snc;

use std::sync::Arc;

use crate::ni::route::{talk_mode, RouteRequest};
use crate::ni::NI_VERSION;
use crate::router::Shared;
pub use params::{ParamsError, RiParams};

pub(crate) use crate::timefmt::ctime;

/// Why reverse invoke could not start.
#[derive(Debug, thiserror::Error)]
pub enum RiError {
    /// `client_hostname` does not resolve (client mode).
    #[error("reverse invoke: cannot resolve '{host}': {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The registration port cannot be bound.
    #[error("reverse invoke: cannot listen on {addr}: {source}")]
    Bind {
        /// Address tried.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// The running reverse-invoke role.
pub enum RiHandle {
    /// DMZ side.
    Client(client::ClientSide),
    /// LAN side.
    Server(server::ServerSide),
}

impl RiHandle {
    /// Call after the router's `run` returned: lets sessions over links finish as the
    /// lifecycle says, then closes every link.
    pub async fn finish(self) {
        match self {
            RiHandle::Client(c) => c.stop(),
            RiHandle::Server(s) => s.finish().await,
        }
    }
}

/// Starts the role `params` describes on a bound router (before `Router::run`).
pub async fn start(shared: Arc<Shared>, params: RiParams) -> Result<RiHandle, RiError> {
    match params {
        RiParams::Client(p) => {
            shared.set_exclusive_ri(p.exclusive);
            if let Some(hops) = &p.route {
                // Port-forwarder: every connection on -S takes this route, raw.
                shared.set_fixed_route(RouteRequest::new(
                    hops.clone(),
                    talk_mode::NI_RAW_IO,
                    NI_VERSION,
                ));
            }
            client::start(shared, p).await.map(RiHandle::Client)
        }
        RiParams::Server(p) => Ok(RiHandle::Server(server::start(shared, p))),
    }
}
