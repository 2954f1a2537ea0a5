//! The NI wire protocol, sans IO: every byte layout SAP's router and its clients exchange.
//!
//! Nothing here touches a socket; callers feed byte slices and get typed values back (or
//! encode typed values into bytes). All integers are big-endian.

pub mod admin;
pub mod control;
pub mod frame;
pub mod route;
pub mod routestr;
pub mod rterr;

/// The NI version this implementation speaks and announces (SAP's 7.20+ routers: 40).
pub const NI_VERSION: u8 = 40;
