//! The router's settings, as the command line gives them (docs/configuration.md §2).

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
    /// `-J`: maximum size in bytes of the connection log and of the trace file.
    pub max_log_size: Option<u64>,
    /// `-K`: the router's SNC (TLS) identity; `None` = no SNC.
    pub snc: Option<crate::tls::SncTls>,
    /// `--max-pending`: connections without a route, in all; `None` = half of `-C`.
    pub max_pending: Option<usize>,
    /// `--max-pending-per-source`: connections without a route from one address.
    pub max_pending_per_source: usize,
    /// `--max-connecting`: outbound connects in progress at once.
    pub max_connecting: usize,
    /// `--penalty FAILURES/SECONDS`: per-source penalties; `None` = off.
    pub penalty: Option<super::penalty::PenaltyPolicy>,
    /// `-B`: queued packets per client (each one relay read of up to [`RELAY_PACKET`]).
    pub max_queued_packets: usize,
    /// `-Q`: total bytes of all clients' relay queues.
    pub max_queue_bytes: u64,
    /// `--proxy-from`: load balancers whose connections start with a PROXY protocol header.
    pub proxy_from: super::proxy::ProxyFrom,
}

/// The most one relay read (one queued "packet") holds.
pub const RELAY_PACKET: usize = 32 * 1024;
/// The smallest relay buffer, whatever `-Q` and `-C` say.
pub const MIN_RELAY_BUFFER: usize = 1024;

impl RouterConfig {
    /// The global cap on connections without a route (`--max-pending`, default `-C` / 2).
    pub fn pending_limit(&self) -> usize {
        self.max_pending.unwrap_or(self.max_clients / 2).max(1)
    }

    /// Bytes of one relay direction's buffer: `-B` packets of at most [`RELAY_PACKET`], and
    /// at most `-Q` / `-C`, so that all clients' buffers together stay within `-Q` (each
    /// client is one direction of a routed session). Never below [`MIN_RELAY_BUFFER`].
    pub fn relay_buffer(&self) -> usize {
        let by_packets = self.max_queued_packets.max(1).saturating_mul(RELAY_PACKET);
        let share = self.max_queue_bytes / self.max_clients.max(1) as u64;
        let share = usize::try_from(share).unwrap_or(usize::MAX);
        by_packets.min(share).max(MIN_RELAY_BUFFER)
    }
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
            max_pending: None,
            max_pending_per_source: 32,
            max_connecting: 128,
            penalty: None,
            max_queued_packets: 1,
            max_queue_bytes: 20_000_000,
            proxy_from: super::proxy::ProxyFrom::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_limits() {
        let c = RouterConfig::default();
        assert_eq!(c.pending_limit(), 400);
        assert_eq!(c.relay_buffer(), 25_000, "-Q 20000000 shared by -C 800");
        let c = RouterConfig {
            max_clients: 2,
            max_queued_packets: 2,
            ..RouterConfig::default()
        };
        assert_eq!(c.relay_buffer(), 2 * RELAY_PACKET);
        assert_eq!(c.pending_limit(), 1);
        let c = RouterConfig {
            max_queue_bytes: 10,
            ..RouterConfig::default()
        };
        assert_eq!(c.relay_buffer(), MIN_RELAY_BUFFER);
    }
}
