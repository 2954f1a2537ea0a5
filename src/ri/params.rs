//! The reverse-invoke parameter file of `saprouter -i FILE` (docs/reverse-invoke.md, "Parameter
//! file").
//!
//! `name = value` lines (blanks around `=` optional), whole-line `#` comments, blank lines.
//! The file is read in two passes: first every line is split into key and value, so the
//! role (`client` or `server`, which may appear anywhere) is known; then each value is
//! checked against that role. Any mistake names the file, the line and the key, because an
//! operator who swaps in this router keeps SAP's file and needs to know exactly what we
//! refuse. `#` starts a comment only at the start of a line: a route string's password may
//! contain one.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ni::route::RouteHop;
use crate::ni::routestr;
use crate::services::Services;

pub use super::ace::{ace_permits, parse_ace, Ace};

/// Most access-control entries SAP accepts.
pub const MAX_ACE: usize = 32;
/// Upper bound on `max_servers` (each server holds up to `conn_pool_size` links).
pub const MAX_SERVERS_LIMIT: usize = 1024;
/// Upper bound on `conn_pool_size` (links per server).
pub const MAX_POOL_SIZE: u16 = 64;
/// Largest parameter file read (it is a handful of lines; anything big is a mistake).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A parameter file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file cannot be read.
    #[error("{file}: cannot read reverse-invoke parameters: {source}")]
    Read {
        /// The `-i` path.
        file: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// One line is wrong.
    #[error("{file}:{line}: {key}: {message}")]
    Line {
        /// The `-i` path.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The key as written (or the line's text when there is no key).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file as a whole is wrong (role missing or doubled, a required key missing).
    #[error("{file}: {message}")]
    File {
        /// The `-i` path.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Address family for the registration port (client) or registered addresses (server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Either (SAP's default).
    #[default]
    Unspec,
}

impl Protocol {
    /// Whether `ip` belongs to this family.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Protocol::V4 => ip.is_ipv4(),
            Protocol::V6 => ip.is_ipv6(),
            Protocol::Unspec => true,
        }
    }

    /// SAP's spelling, for `-l`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "IPv4",
            Protocol::V6 => "IPv6",
            Protocol::Unspec => "unspec",
        }
    }
}

/// The DMZ side: accepts registrations.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientParams {
    /// `client_service`: the registration port.
    pub service: u16,
    /// `client_hostname`: bind address of the registration port (`None` = all).
    pub hostname: Option<String>,
    /// `ACE`: who may register.
    pub ace: Vec<Ace>,
    /// `max_servers`: distinct LAN routers registered at once.
    pub max_servers: usize,
    /// `conn_pool_size`: links each LAN router keeps (told to it on registration).
    pub conn_pool_size: u16,
    /// `listen_protocol`.
    pub listen_protocol: Protocol,
    /// `exclusive`: only registered LAN routers as next hops (shown by `-l`; see
    /// docs/reverse-invoke.md).
    pub exclusive: bool,
    /// `connect_timeout`: deadline for a registration handshake.
    pub connect_timeout: Duration,
    /// `route`: port-forwarder mode, the fixed route applied to every connection on `-S`.
    pub route: Option<Vec<RouteHop>>,
}

/// The LAN side: dials out and registers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerParams {
    /// `client_hostname` as written, normalised (`10.0.0.1, dmz-b.example`): for `-l` and
    /// logs.
    pub client_hostname: String,
    /// The DMZ routers: each item of `client_hostname` (a name may stand for several, one
    /// per address it resolves to).
    pub client_hosts: Vec<String>,
    /// `client_service`: its registration port.
    pub client_service: u16,
    /// `reg_hostname` (`None`: the address each link leaves from, see docs).
    pub reg_hostname: Option<String>,
    /// `reg_service`: the pseudo port.
    pub reg_service: u16,
    /// `connect_timeout` (`None` = -1 = no deadline of our own; the OS's applies).
    pub connect_timeout: Option<Duration>,
    /// `retry_timeout`: cap of the reconnect back-off.
    pub retry_timeout: Duration,
    /// `conn_on_demand`.
    pub conn_on_demand: bool,
    /// `reg_protocol`.
    pub reg_protocol: Protocol,
    /// `link_protocol` (this project's own): the link protocol version the LAN router
    /// offers, 1 (yamux, the default) or 2 (linkmux, zero-copy on plain TCP links).
    pub link_version: u8,
}

/// A parsed parameter file: one role.
#[derive(Debug, Clone, PartialEq)]
pub enum RiParams {
    /// `client = ...`: DMZ router.
    Client(ClientParams),
    /// `server = ...`: LAN router.
    Server(ServerParams),
}

/// One `key = value` line.
struct Entry<'a> {
    line: usize,
    key: &'a str,
    value: &'a str,
}

/// Which role a key belongs to.
#[derive(PartialEq)]
enum Role {
    Client,
    Server,
    Both,
}

const KEYS: &[(&str, Role)] = &[
    ("client", Role::Client),
    ("server", Role::Server),
    ("client_service", Role::Both),
    ("client_hostname", Role::Both),
    ("connect_timeout", Role::Both),
    ("ace", Role::Client),
    ("max_servers", Role::Client),
    ("conn_pool_size", Role::Client),
    ("listen_protocol", Role::Client),
    ("exclusive", Role::Client),
    ("route", Role::Client),
    ("reg_hostname", Role::Server),
    ("reg_service", Role::Server),
    ("retry_timeout", Role::Server),
    ("conn_on_demand", Role::Server),
    ("reg_protocol", Role::Server),
    ("link_protocol", Role::Server),
];

/// Reads and parses `path`.
pub fn load(path: &Path, services: &Services) -> Result<RiParams, ParamsError> {
    let read = |source| ParamsError::Read {
        file: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ParamsError::File {
            file: path.to_path_buf(),
            message: format!("file too large ({} bytes)", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|e| ParamsError::File {
        file: path.to_path_buf(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse(&text, path, services)
}

/// Parses the text of a parameter file; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path, services: &Services) -> Result<RiParams, ParamsError> {
    let line_err = |line: usize, key: &str, message: String| ParamsError::Line {
        file: file.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let file_err = |message: String| ParamsError::File {
        file: file.to_path_buf(),
        message,
    };

    // Pass 1: split lines, check keys exist and are not repeated (ACE excepted).
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(line_err(line, trimmed, "expected 'name = value'".into()));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(line_err(
                line,
                trimmed,
                "no parameter name before '='".into(),
            ));
        }
        let lower = key.to_ascii_lowercase();
        if !KEYS.iter().any(|(k, _)| *k == lower) {
            return Err(line_err(line, key, "unknown parameter".into()));
        }
        if lower != "ace" {
            if let Some(first) = entries.iter().find(|e| e.key.eq_ignore_ascii_case(key)) {
                return Err(line_err(
                    line,
                    key,
                    format!("given twice (first on line {})", first.line),
                ));
            }
        }
        entries.push(Entry { line, key, value });
    }

    let has = |name: &str| entries.iter().any(|e| e.key.eq_ignore_ascii_case(name));
    let role = match (has("client"), has("server")) {
        (true, false) => Role::Client,
        (false, true) => Role::Server,
        (true, true) => {
            return Err(file_err(
                "both 'client' and 'server' are set; a router is one or the other".into(),
            ))
        }
        (false, false) => {
            return Err(file_err(
                "neither 'client' (DMZ side) nor 'server' (LAN side) is set".into(),
            ))
        }
    };
    // A key of the other role is a mistake worth naming, not something to ignore.
    for e in &entries {
        let lower = e.key.to_ascii_lowercase();
        let key_role = KEYS
            .iter()
            .find(|(k, _)| *k == lower)
            .map(|(_, r)| r)
            .unwrap_or(&Role::Both);
        if *key_role != Role::Both && *key_role != role {
            let (what, this) = match role {
                Role::Client => ("server", "client"),
                _ => ("client", "server"),
            };
            return Err(line_err(
                e.line,
                e.key,
                format!("is a {what} parameter; this file sets '{this}'"),
            ));
        }
    }

    let ctx = Ctx {
        entries: &entries,
        services,
        line_err: &line_err,
    };
    match role {
        Role::Client => client(&ctx).map(RiParams::Client),
        _ => server(&ctx).map(RiParams::Server),
    }
    .map_err(|e| match e {
        Missing(key) => file_err(format!("'{key}' is required")),
        Bad(err) => err,
    })
}

/// Why a role's values failed.
enum Failure {
    Missing(&'static str),
    Bad(ParamsError),
}
use Failure::{Bad, Missing};

type LineErr<'a> = dyn Fn(usize, &str, String) -> ParamsError + 'a;

struct Ctx<'a> {
    entries: &'a [Entry<'a>],
    services: &'a Services,
    line_err: &'a LineErr<'a>,
}

impl Ctx<'_> {
    fn get(&self, name: &str) -> Option<&Entry<'_>> {
        self.entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(name))
    }

    /// Applies `convert` to the value of `name`, if present.
    fn value<T>(
        &self,
        name: &str,
        convert: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Failure> {
        match self.get(name) {
            None => Ok(None),
            Some(e) => convert(e.value)
                .map(Some)
                .map_err(|m| Bad((self.line_err)(e.line, e.key, m))),
        }
    }

    fn port(&self, name: &'static str) -> Result<Option<u16>, Failure> {
        self.value(name, |v| {
            self.services
                .resolve(v)
                .ok_or_else(|| format!("'{v}' is not a port number or known service name"))
        })
    }
}

fn client(ctx: &Ctx) -> Result<ClientParams, Failure> {
    let service = ctx
        .port("client_service")?
        .ok_or(Missing("client_service"))?;
    let hostname = ctx.value("client_hostname", host)?;
    let mut ace = Vec::new();
    for e in ctx
        .entries
        .iter()
        .filter(|e| e.key.eq_ignore_ascii_case("ace"))
    {
        if ace.len() == MAX_ACE {
            return Err(Bad((ctx.line_err)(
                e.line,
                e.key,
                format!("more than {MAX_ACE} entries"),
            )));
        }
        ace.push(parse_ace(e.value).map_err(|m| Bad((ctx.line_err)(e.line, e.key, m)))?);
    }
    let max_servers = ctx
        .value("max_servers", |v| bounded(v, 1, MAX_SERVERS_LIMIT))?
        .unwrap_or(1);
    let conn_pool_size = ctx
        .value("conn_pool_size", |v| {
            bounded(v, 1, usize::from(MAX_POOL_SIZE)).map(|n| n as u16)
        })?
        .unwrap_or(3);
    let connect_timeout = ctx
        .value("connect_timeout", |v| {
            bounded(v, 1, 3_600_000).map(|ms| Duration::from_millis(ms as u64))
        })?
        .unwrap_or(Duration::from_millis(2000));
    let route = ctx.value("route", |v| {
        let hops = routestr::parse(v, "").map_err(|e| format!("invalid route string: {e}"))?;
        if hops.len() < 2 {
            return Err("the route must name this router and at least one hop behind it".into());
        }
        if hops.last().is_some_and(|h| h.service.is_empty()) {
            return Err("the last hop needs an explicit /S/ (the port to forward to)".into());
        }
        Ok(hops)
    })?;
    Ok(ClientParams {
        service,
        hostname,
        ace,
        max_servers,
        conn_pool_size,
        listen_protocol: ctx.value("listen_protocol", protocol)?.unwrap_or_default(),
        exclusive: ctx.value("exclusive", yes_no)?.unwrap_or(true),
        connect_timeout,
        route,
    })
}

fn server(ctx: &Ctx) -> Result<ServerParams, Failure> {
    let client_hosts = ctx
        .value("client_hostname", host_list)?
        .ok_or(Missing("client_hostname"))?;
    let client_service = ctx
        .port("client_service")?
        .ok_or(Missing("client_service"))?;
    let connect_timeout = ctx
        .value("connect_timeout", |v| match v.trim() {
            "-1" => Ok(None),
            other => bounded(other, 1, 3_600_000)
                .map(|ms| Some(Duration::from_millis(ms as u64)))
                .map_err(|m| format!("{m} (or -1 for none)")),
        })?
        .flatten();
    Ok(ServerParams {
        client_hostname: client_hosts.join(", "),
        client_hosts,
        client_service,
        reg_hostname: ctx.value("reg_hostname", host)?,
        reg_service: ctx.port("reg_service")?.unwrap_or(3299),
        connect_timeout,
        retry_timeout: ctx
            .value("retry_timeout", |v| {
                bounded(v, 1, 86_400).map(|s| Duration::from_secs(s as u64))
            })?
            .unwrap_or(Duration::from_secs(5)),
        conn_on_demand: ctx.value("conn_on_demand", yes_no)?.unwrap_or(true),
        reg_protocol: ctx.value("reg_protocol", protocol)?.unwrap_or_default(),
        link_version: ctx
            .value("link_protocol", link_protocol)?
            .unwrap_or(super::link::YAMUX_VERSION),
    })
}

/// A host name or address literal: non-empty, no blanks, DNS-ish characters.
fn host(v: &str) -> Result<String, String> {
    let name = v
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(v);
    if name.is_empty() {
        return Err("empty host name".into());
    }
    if name.len() > 253
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:%".contains(&b))
    {
        return Err(format!("'{v}' is not a host name or address"));
    }
    Ok(name.to_string())
}

/// A comma-separated list of DMZ routers (LAN side): each item a [`host`], none empty,
/// none given twice (names compared in any case).
fn host_list(v: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for (n, item) in v.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("item {} of the list is empty", n + 1));
        }
        let name = host(item)?;
        if out.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
            return Err(format!("'{item}' is listed twice"));
        }
        out.push(name);
    }
    Ok(out)
}

fn bounded(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("'{v}' is not a number from {min} to {max}")),
    }
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" => Ok(true),
        "no" | "n" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{v}' is not yes or no")),
    }
}

/// `link_protocol`: the multiplexer a LAN router asks for, by name or version number.
fn link_protocol(v: &str) -> Result<u8, String> {
    match v.to_ascii_lowercase().as_str() {
        "yamux" | "1" => Ok(super::link::YAMUX_VERSION),
        "linkmux" | "2" => Ok(super::link::LINKMUX_VERSION),
        _ => Err(format!("'{v}' is not yamux (1) or linkmux (2)")),
    }
}

fn protocol(v: &str) -> Result<Protocol, String> {
    match v.to_ascii_lowercase().as_str() {
        "ipv4" => Ok(Protocol::V4),
        "ipv6" => Ok(Protocol::V6),
        "unspec" => Ok(Protocol::Unspec),
        _ => Err(format!("'{v}' is not IPv4, IPv6 or unspec")),
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
