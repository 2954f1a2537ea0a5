//! Route strings, the text form of a route: `/H/host/S/service/W/password` per hop
//! (config.md §5), shared by the router, its admin client and niping.

use super::route::RouteHop;

/// A route string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteStringError {
    /// Empty input or not starting with `/H/`.
    #[error("route string must start with /H/: {0:?}")]
    NoHost(String),
    /// An unknown tag (`/X/`), or text outside a tag.
    #[error("unexpected {found:?} at byte {at} of the route string")]
    Unexpected {
        /// What was found.
        found: String,
        /// Byte offset.
        at: usize,
    },
    /// A tag with an empty value (`/H//S/...`).
    #[error("empty value for /{0}/ in the route string")]
    EmptyValue(char),
}

/// True when `text` is a route string rather than a plain host name.
pub fn is_route_string(text: &str) -> bool {
    text.starts_with("/H/") || text.starts_with("/h/")
}

/// Parses a route string into hops.
///
/// Hops without `/S/` get `3299` (a SAProuter), except the last, which gets
/// `last_default_service` (e.g. `3298` for niping, `3299` for a route whose last hop is a
/// router). `/W/` sets the password of the hop it follows; the pre-4.0 `/P/` is accepted
/// the same way (it stays on the hop where it appears). Tags `H`, `S`, `W`, `P` are
/// matched case-insensitively; SAP GUI's own tags (`/R/ /G/ /A/ /M/`) are rejected.
pub fn parse(text: &str, last_default_service: &str) -> Result<Vec<RouteHop>, RouteStringError> {
    todo!("wire helper")
}

/// Formats hops as a route string (`/H/h/S/s/W/p...`), omitting empty services and passwords.
/// Passwords are written as `/W/` (use [`format_redacted`] for logs).
pub fn format(hops: &[RouteHop]) -> String {
    todo!("wire helper")
}

/// Like [`format`], with every password shown as `/W/***`.
pub fn format_redacted(hops: &[RouteHop]) -> String {
    todo!("wire helper")
}
