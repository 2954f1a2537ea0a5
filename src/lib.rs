//! saprouter-rs: a drop-in, SAProuter-compatible NI route daemon.
//!
//! Layers, from the bytes up:
//! - [`ni`]: the NI wire protocol (frames, `NI_ROUTE`, `NI_RTERR`, `ROUTER_ADM`, route strings);
//!   no sockets, no configuration.
//! - [`routtab`]: the route permission table (`saprouttab`) and its first-match decision; no sockets.
//! - [`services`]: service names to ports (system services database plus SAP's built-in names).
//! - [`router`]: the tokio daemon: listener, sessions, relay, admin requests, logs.
//! - [`tls`]: SNC as TLS: the router's identity, mutual TLS 1.3, peer SNC names.
//! - [`niping`]: SAP's NI test program (echo server, timing client, self test).
//! - [`metrics`]: Prometheus metrics, health and readiness (`--metrics`).
//! - [`proxyproto`]: PROXY protocol headers from load balancers (`--proxy-from`); no sockets.
//! - [`ri`]: reverse invoke (the `-i` file, the link protocol, the DMZ and LAN sides).
//! - [`adminclient`]: the client side of the admin requests (`-l`, `-s`, `-n`, ...).
//! - [`cli`]: the `saprouter` command line (flags to a request or the router's
//!   configuration) and the table tools `saprouter --check` and `saprouter --explain`.
//! - [`secret`], [`timefmt`]: constant-time password comparison; the one `ctime` format.

// System calls go through rustix's safe wrappers; the one unsafe call of the project (glibc's
// mallopt) lives in the saprouter binary (src/bin/saprouter/alloc.rs), not here.
#![forbid(unsafe_code)]

pub mod adminclient;
pub mod cli;
pub mod metrics;
pub mod ni;
pub mod niping;
pub mod proxyproto;
pub mod ri;
pub mod router;
pub mod routtab;
pub mod secret;
pub mod services;
pub mod timefmt;
pub mod tls;
