//! The router's settings, as the command line gives them (config.md §2).

use std::path::PathBuf;
use std::time::Duration;

/// Everything a running router needs to know from its command line.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// `-H`: bind address; `None` = all local addresses.
    pub bind_host: Option<String>,
    /// `-S`: listening port.
    pub port: u16,
    /// `-R`: route permission table.
    pub routtab: PathBuf,
    /// `-W`: deadline for receiving the route, connecting, and a downstream router's answer.
    pub timeout: Duration,
    /// `-C`: client table size (two clients per routed session).
    pub max_clients: usize,
    /// `-Z`: send a generic error instead of the detailed reason.
    pub hide_errors: bool,
    /// `-D`: no reverse DNS for incoming peers.
    pub no_dns: bool,
    /// `-P`: password for info requests. Never printed by `Debug` (see below).
    pub info_password: Option<Secret>,
    /// `-G`: connection log file.
    pub log_file: Option<PathBuf>,
    /// `-T`: trace file.
    pub trace_file: PathBuf,
    /// `-V`: trace level 1..=3.
    pub trace_level: u8,
    /// `-E`: append to log and trace instead of overwriting.
    pub append: bool,
    /// `-J`: maximum connection-log size in bytes.
    pub max_log_size: Option<u64>,
    /// `-K`: the router's SNC (TLS) identity; `None` = no SNC.
    pub snc: Option<crate::tls::SncTls>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            bind_host: None,
            port: 3299,
            routtab: PathBuf::from("saprouttab"),
            timeout: Duration::from_millis(5000),
            max_clients: 800,
            hide_errors: false,
            no_dns: false,
            info_password: None,
            log_file: None,
            trace_file: PathBuf::from("dev_rout"),
            trace_level: 1,
            append: false,
            max_log_size: None,
            snc: None,
        }
    }
}

/// A password that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Constant-time comparison with an offered password.
    pub fn matches(&self, offered: &str) -> bool {
        crate::secret::constant_time_eq(self.0.as_bytes(), offered.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
