//! Service names to port numbers: numbers, the system services database (`/etc/services`),
//! and SAP's conventional names when the database lacks them (`sapdpNN` = 3200+NN,
//! `sapgwNN` = 3300+NN, `sapdpNNs` = 4700+NN, `sapgwNNs` = 4800+NN).

use std::collections::HashMap;
use std::path::Path;

/// A services database: TCP service names (and aliases) to ports.
#[derive(Debug, Clone, Default)]
pub struct Services {
    tcp: HashMap<String, u16>,
}

impl Services {
    /// An empty database: only numbers and the built-in SAP names resolve.
    pub fn builtin_only() -> Self {
        Self::default()
    }

    /// Parses services-file text (`name port/proto [aliases...] [# comment]`); TCP entries only;
    /// malformed lines are skipped (the file belongs to the OS, not to us).
    pub fn parse(text: &str) -> Self {
        todo!("policy helper")
    }

    /// Loads `/etc/services` (or `path`); a missing or unreadable file gives
    /// [`Services::builtin_only`].
    pub fn load(path: &Path) -> Self {
        todo!("policy helper")
    }

    /// The system database at `/etc/services`.
    pub fn system() -> Self {
        Self::load(Path::new("/etc/services"))
    }

    /// Resolves a service: a decimal port 1..=65535 (digits only, no sign, no spaces), a
    /// name from the database, or a built-in SAP name. `None` when unknown or out of range.
    pub fn resolve(&self, service: &str) -> Option<u16> {
        todo!("policy helper")
    }
}

/// SAP's built-in names: `sapdpNN`, `sapgwNN`, `sapdpNNs`, `sapgwNNs` with NN two digits.
pub fn builtin_sap_service(name: &str) -> Option<u16> {
    todo!("policy helper")
}
