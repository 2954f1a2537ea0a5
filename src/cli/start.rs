//! A start's command line (`-r`, `-i FILE`) turned into what the router runs with: the
//! [`RouterConfig`], the reverse-invoke role, the observability options and the SNC
//! identity. The flag checks need no file; [`StartArgs::build`] then loads the files in the
//! order the router always has (`-i` file, flags, `-K` identity).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;

use super::command::{number, CliError};
use crate::ri::RiParams;
use crate::router::penalty::PenaltyPolicy;
use crate::router::{RouterConfig, Secret};
use crate::tls::{SncOptions, SncSource, SncTls};

/// A start's command line, its flags not yet checked.
pub struct StartArgs {
    m: ArgMatches,
    port: u16,
    wait_ms: u64,
}

/// Without the flags: `-P` is a password.
impl std::fmt::Debug for StartArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartArgs")
            .field("port", &self.port)
            .field("wait_ms", &self.wait_ms)
            .finish_non_exhaustive()
    }
}

/// Everything a start runs with.
#[derive(Debug)]
pub struct Start {
    /// The router's configuration, SNC identity included.
    pub config: RouterConfig,
    /// `-i FILE`: the reverse-invoke role.
    pub ri: Option<RiParams>,
    /// `--metrics`, `--log-format`.
    pub observe: Observe,
}

/// The observability options (`--metrics`, `--log-format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observe {
    /// `--metrics ADDR:PORT`.
    pub metrics: Option<SocketAddr>,
    /// `--log-format json`.
    pub json: bool,
}

/// What `-K` asks for: the wanted name (`None`: the certificate's subject) and the files.
#[derive(Debug, Clone)]
pub struct SncRequest {
    /// The name after `-K`, if one is given.
    pub name: Option<String>,
    /// `--snc-cert`, `--snc-key`, `--snc-ca`, `--snc-p12`, `--snc-p12-pass-file`.
    pub options: SncOptions,
}

impl StartArgs {
    /// `port` and `wait_ms` are `-S` and `-W`, already read.
    pub(super) fn new(m: ArgMatches, port: u16, wait_ms: u64) -> Self {
        Self { m, port, wait_ms }
    }

    /// Loads the files and checks the remaining flags: the `-i` file (a failure), the flags
    /// (usage errors), the `-K` identity (a failure), in that order.
    pub fn build(self) -> Result<Start, CliError> {
        let ri = match self.ri_file() {
            Some(path) => {
                let params = crate::ri::params::load(&path, &crate::services::Services::system())
                    .map_err(CliError::fail)?;
                super::check::remember_ri_file(&path, &params);
                Some(params)
            }
            None => None,
        };
        let observe = self.observe()?;
        let mut config = self.config()?;
        config.snc = match self.snc_request() {
            Some(request) => Some(request.open().map_err(CliError::fail)?),
            None => None,
        };
        Ok(Start {
            config,
            ri,
            observe,
        })
    }

    /// `-i FILE`.
    pub fn ri_file(&self) -> Option<PathBuf> {
        self.m.get_one::<String>("ri").map(PathBuf::from)
    }

    /// `--metrics` and `--log-format`.
    pub fn observe(&self) -> Result<Observe, CliError> {
        let metrics = match self.m.get_one::<String>("metrics") {
            None => None,
            Some(text) => Some(metrics_addr(text).map_err(CliError::Usage)?),
        };
        let json = match self.m.get_one::<String>("log_format").map(String::as_str) {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(CliError::Usage(format!(
                    "--log-format {other:?}: expected text or json"
                )))
            }
        };
        Ok(Observe { metrics, json })
    }

    /// The router's configuration from the flags, without the SNC identity (see
    /// [`Self::snc_request`]).
    pub fn config(&self) -> Result<RouterConfig, CliError> {
        let m = &self.m;
        let mut c = RouterConfig {
            port: self.port,
            timeout: Duration::from_millis(self.wait_ms.max(1)),
            ..RouterConfig::default()
        };
        if let Some(path) = m.get_one::<String>("routtab") {
            c.routtab = PathBuf::from(path);
        }
        c.bind_host = m.get_one::<String>("host").cloned();
        if m.get_flag("ipv6") && c.bind_host.is_none() {
            c.bind_host = Some("::".into());
        }
        if let Some(n) = number::<usize>(m, "clients", "-C")? {
            if n == 0 {
                return Err(CliError::Usage(
                    "-C 0: at least one client is needed".into(),
                ));
            }
            c.max_clients = n;
        }
        if let Some(level) = number::<u8>(m, "level", "-V")? {
            c.trace_level = level.clamp(1, 3);
        }
        if let Some(n) = number::<u32>(m, "autostart", "-Y")? {
            if n != 1 {
                return Err(CliError::Usage(format!(
                    "-Y {n}: starting further router processes is not supported; raise -C instead"
                )));
            }
        }
        c.hide_errors = m.get_flag("hideerr");
        c.no_dns = m.get_flag("nodns");
        c.append = m.get_flag("append");
        c.info_password = m
            .get_one::<String>("infopass")
            .map(|p| Secret::new(p.clone()));
        c.log_file = m.get_one::<String>("log").map(PathBuf::from);
        if let Some(path) = m.get_one::<String>("tracefile") {
            c.trace_file = PathBuf::from(path);
        }
        c.max_log_size = number(m, "maxlog", "-J")?;
        if m.get_one::<String>("snc").is_none() {
            for (id, flag) in SNC_FILES {
                if m.get_one::<String>(id).is_some() {
                    return Err(CliError::Usage(format!("{flag} needs -K (SNC)")));
                }
            }
        }
        if let Some(n) = number::<usize>(m, "packets", "-B")? {
            c.max_queued_packets = n.max(1);
        }
        if let Some(n) = number::<u64>(m, "queue", "-Q")? {
            c.max_queue_bytes = n;
        }
        c.max_pending = number(m, "max_pending", "--max-pending")?;
        if let Some(n) = c.max_pending {
            at_least_one(n, "--max-pending")?;
        }
        if let Some(n) = number(m, "max_pending_per_source", "--max-pending-per-source")? {
            c.max_pending_per_source = at_least_one(n, "--max-pending-per-source")?;
        }
        if let Some(n) = number(m, "max_connecting", "--max-connecting")? {
            c.max_connecting = at_least_one(n, "--max-connecting")?;
        }
        if let Some(text) = m.get_one::<String>("penalty") {
            let policy = PenaltyPolicy::parse(text)
                .map_err(|why| CliError::Usage(format!("--penalty {why}")))?;
            c.penalty = Some(policy);
        }
        for text in m.get_many::<String>("proxy_from").into_iter().flatten() {
            c.proxy_from
                .add(text)
                .map_err(|why| CliError::Usage(format!("--proxy-from {why}")))?;
        }
        Ok(c)
    }

    /// `-K [name]` and its file options; `None` without `-K`.
    pub fn snc_request(&self) -> Option<SncRequest> {
        let name = self.m.get_one::<String>("snc")?;
        let path = |id: &str| self.m.get_one::<String>(id).map(PathBuf::from);
        Some(SncRequest {
            name: Some(name.trim())
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            options: SncOptions {
                cert: path("snc_cert"),
                key: path("snc_key"),
                ca: path("snc_ca"),
                p12: path("snc_p12"),
                p12_password_file: path("snc_p12_pass"),
            },
        })
    }
}

impl SncRequest {
    /// Opens the identity: the files given, else those in `$SECUDIR`. Without a name, the
    /// certificate's subject is the name.
    pub fn open(self) -> Result<SncTls, crate::tls::TlsError> {
        let secudir = std::env::var_os("SECUDIR").map(PathBuf::from);
        let source = SncSource::resolve(self.options, secudir)?;
        SncTls::open(source, self.name.as_deref())
    }
}

/// The `-K` file options (clap id, flag), which mean nothing without `-K`.
const SNC_FILES: [(&str, &str); 5] = [
    ("snc_cert", "--snc-cert"),
    ("snc_key", "--snc-key"),
    ("snc_ca", "--snc-ca"),
    ("snc_p12", "--snc-p12"),
    ("snc_p12_pass", "--snc-p12-pass-file"),
];

/// `n`, or a usage error naming `flag` when it is 0.
fn at_least_one(n: usize, flag: &str) -> Result<usize, CliError> {
    if n == 0 {
        Err(CliError::Usage(format!("{flag} 0: must be at least 1")))
    } else {
        Ok(n)
    }
}

/// `ADDR:PORT` (`[::1]:9326` for IPv6) or `:PORT` for all IPv4 addresses.
pub fn metrics_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)))
            .ok(),
        None => text.parse().ok(),
    };
    parsed.ok_or_else(|| format!("--metrics {text:?}: expected ADDR:PORT, e.g. 127.0.0.1:9326"))
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
