//! Reverse invoke (`saprouter -i FILE`): the LAN router dials out to the DMZ router and
//! registers a pseudo address; routed sessions to that address then travel as multiplexed
//! streams over the LAN router's outbound links, so nothing ever listens on the LAN side.
//!
//! - [`params`]: the `-i` parameter file with SAP's names and defaults.
//! - [`link`]: the registration handshake and control-stream messages (sans-IO).
//! - [`mux`]: the yamux session of one link: driver, stream counting, heartbeats.

pub mod link;
pub mod mux;
pub mod params;
pub mod registry;
