//! The route permission table (`saprouttab`), sans IO: parse the text (with line and column
//! on every error), then decide routes by first match (docs/configuration.md §1).
//!
//! Host names in the table are resolved when it loads, through a [`Resolver`] the caller
//! supplies, so the table itself holds only address patterns.

pub mod check;
mod decide;
mod field;
mod parse;
mod pattern;
mod system;
#[cfg(test)]
mod tests;

pub use decide::{Decision, DecisionTrace, DenyReason, LineTrace, Mismatch, RouteQuery};
pub use parse::{parse_table, TableError, MAX_PASSWORD_LEN};
pub use pattern::{AddressMask, HopLimits, HostPattern, ServicePattern, SncName};
pub use system::SystemResolver;

use std::net::IpAddr;
use std::path::Path;

/// Looks up what a table names: host names and service names.
pub trait Resolver {
    /// All addresses of a host name (not called for address literals or patterns).
    fn resolve_host(&self, name: &str) -> Result<Vec<IpAddr>, String>;
    /// The port of a service name (not called for numbers, ranges or `*`).
    fn resolve_service(&self, name: &str) -> Option<u16>;
}

/// What a line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `P`: permit, NI and native (raw) talk modes.
    Permit,
    /// `S`: permit NI talk modes only.
    Secure,
    /// `D`: deny.
    Deny,
    /// `KT`: the hop to (or from) this host/service is SNC (TLS) with this peer name.
    SncTarget,
    /// `KP`: permit for an authenticated SNC peer name.
    SncPermit,
    /// `KS`: like KP, NI talk modes only.
    SncSecure,
    /// `KD`: deny for an authenticated SNC peer name.
    SncDeny,
}

/// Who a line's first field matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// P/S/D: the peer address of the incoming connection.
    Host(HostPattern),
    /// K* lines: the authenticated SNC name of the incoming connection.
    Snc(SncName),
}

/// One parsed line.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line type.
    pub action: Action,
    /// `Pv,n` / `Sv,n` limits (unlimited when not written).
    pub hops: HopLimits,
    /// Field 2.
    pub source: Source,
    /// Field 3 (KT: the SNC host).
    pub destination: HostPattern,
    /// Field 4.
    pub service: ServicePattern,
    /// Field 5; `None` = no password check (`*` or omitted). Never printed by `Debug`.
    pub password: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("line", &self.line)
            .field("action", &self.action)
            .field("hops", &self.hops)
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("service", &self.service)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A loaded table.
#[derive(Debug, Clone, Default)]
pub struct RoutTab {
    /// Lines in file order (comments and blanks dropped).
    pub entries: Vec<Entry>,
    /// Problems that did not stop the load (host names that did not resolve).
    pub warnings: Vec<TableError>,
}

impl RoutTab {
    /// Reads and parses the table at `path` (see [`parse_table`]). An unreadable file is an
    /// error with line 0; so is text that is not UTF-8 (with the line of the first bad byte).
    pub fn load(path: &Path, resolver: &dyn Resolver) -> Result<RoutTab, TableError> {
        let error = |line: usize, message: String| TableError {
            file: path.to_path_buf(),
            line,
            column: 0,
            message,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| error(0, format!("cannot read route permission table: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = 1 + bytes[..valid].iter().filter(|&&b| b == b'\n').count();
            let line_start = bytes[..valid]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&bytes[line_start..valid])
                .chars()
                .count()
                + 1;
            TableError {
                column,
                ..error(line, "the line is not valid UTF-8".to_string())
            }
        })?;
        parse_table(&text, path, resolver)
    }
}
