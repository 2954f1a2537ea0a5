//! The `saprouter` command line, letter for letter as SAP's: which function it asks for
//! (help, version, a table tool, an admin request, the info request, or a start), checked
//! before anything runs. What a start needs beyond that is in [`super::start`].

use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::first_line;
use super::start::StartArgs;
use crate::ni::admin::AdminCommand;

/// The usage text: on stdout for `--help`, on stderr after a usage error.
pub const USAGE: &str = "\
usage: saprouter -r [options]          start router
       saprouter -i file [options]     start router with reverse invoke (parameter file)
       saprouter -s [-H host] [-S port] stop router
       saprouter -p [-H host] [-S port] soft shutdown
       saprouter -n [-H host] [-S port] reread route permission table
       saprouter -l|-L [-H host] [-S port] [-P infopass]  router info (short / long)
       saprouter -c id [-H host] [-S port]  cancel route
       saprouter -t [\"on|off <id>|<ip>\"] [-H host] [-S port]  toggle trace
       saprouter -d | -f | -z [-H host] [-S port]  dump buffers / flush / hide error info
       saprouter --check [-R file] [-i file] [-K [name]] [--format text|json]  check the table
       saprouter --explain SOURCE ROUTE [-R file] [--snc-name NAME] [--format text|json]

options:
  -R routtab      route permission table     (default ./saprouttab)
  -G logfile      connection log             (default: none)
  -T tracefile    trace file                 (default dev_rout)
  -V level        trace level 1..3           (default 1)
  -H hostname     bind address / admin target (default: all / localhost)
  -S service      listen port / admin port   (default 3299)
  -P infopass     password for info requests
  -C clients      max. no. of clients        (default 800)
  -K [myname]     SNC name of the router, p:<DN> (SNC is TLS: certificate from
                  $SECUDIR/saprouter.crt, key saprouter.key, CA ca.crt, or
                  --snc-cert FILE --snc-key FILE --snc-ca FILE; or PKCS#12:
                  $SECUDIR/saprouter.p12 or --snc-p12 FILE [--snc-p12-pass-file FILE])
  -D              no reverse DNS lookup
  -E              append to log and trace files
  -J maxsize      max. size of the log and trace files in bytes
  -Z              hide error details from clients
  -W timeout      network timeout in ms      (default 5000)
  -B packets      max. queued packets per client (default 1)
  -Q bytes        max. total queue size      (default 20000000)
  -Y n            auto-start limit (only 1 = never is supported)
  -6              IPv6 (bind all IPv6 and IPv4 addresses)
  --metrics ADDR:PORT   serve Prometheus metrics, /healthz and /readyz over HTTP
  --log-format text|json  trace file format (default text; json: one object per line)
  --help, -h (alone)  this text;  --version  the version

limits (this router's own; each is shown by -l):
  --max-pending n             connections without a route, in all (default -C / 2)
  --max-pending-per-source n  connections without a route from one address (default 32)
  --max-connecting n          outbound connects in progress (default 128)
  --penalty FAILURES/SECONDS  close an address's connections at accept for SECONDS (doubling
                              on repeat, up to 16x) after FAILURES refusals within SECONDS
                              (denied or invalid routes, wrong info passwords, failed TLS
                              handshakes, refused registrations); off by default
  --proxy-from CIDR[,CIDR...] load balancers whose connections start with a PROXY protocol
                              header (v1 or v2); the client address in it is the source
";

/// What `saprouter --version` prints.
pub fn version_text() -> String {
    format!(
        "saprouter-rs {}, SAProuter {} compatible",
        env!("CARGO_PKG_VERSION"),
        crate::ni::admin::ROUTER_VERSION
    )
}

/// Why the command line cannot be run. Both print `saprouter: <text>` on stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag or value the command line does not accept: the usage text follows, exit 2.
    /// Empty for the bare usage (no arguments at all).
    #[error("{0}")]
    Usage(String),
    /// A well-formed request that cannot be carried out (a file that does not load, a
    /// refused SAP feature): exit 1.
    #[error("{0}")]
    Fail(String),
}

impl CliError {
    /// A failure from any error type, in its own words.
    pub fn fail(err: impl std::fmt::Display) -> Self {
        Self::Fail(err.to_string())
    }

    /// The process exit code: 2 for usage errors, 1 for failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Fail(_) => 1,
        }
    }

    /// Prints the error (and, for a usage error, the usage text) on stderr and returns the
    /// exit code.
    pub fn report(&self) -> std::process::ExitCode {
        match self {
            Self::Usage(problem) => {
                if !problem.is_empty() {
                    eprintln!("saprouter: {problem}");
                }
                eprint!("{USAGE}");
            }
            Self::Fail(message) => eprintln!("saprouter: {message}"),
        }
        std::process::ExitCode::from(self.exit_code())
    }
}

/// Where an admin or info request goes (`-H`, `-S`) and how long it waits (`-W`, at
/// least one second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTarget {
    /// `-H` (default `localhost`).
    pub host: String,
    /// `-S` (default 3299).
    pub port: u16,
    /// `-W` in ms, raised to one second.
    pub wait: Duration,
}

/// The function a command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// `--help`, or `-h` alone: the usage on stdout.
    Help,
    /// `--version`.
    Version,
    /// `--check`: the table check, with a command line of its own ([`super::check::main`]).
    Check,
    /// `--explain`: the route explanation, with a command line of its own
    /// ([`super::explain::main`]).
    Explain,
    /// A request that runs in the tokio runtime ([`super::run::run`]).
    Run(Request),
}

/// What runs in the tokio runtime. `Debug` leaves out the info password.
pub enum Request {
    /// `-s`, `-p`, `-n`, `-c`, `-t`, `-d`, `-f`, `-z`: one admin request to a running router.
    Admin(AdminTarget, AdminCommand),
    /// `-l` / `-L`: the info request of a running router.
    Info {
        /// Where it goes.
        target: AdminTarget,
        /// `-P`.
        password: Option<String>,
        /// `-L` (the long form).
        long: bool,
    },
    /// `-r` or `-i FILE`: start the router.
    Start(StartArgs),
}

impl Invocation {
    /// Reads a command line (program name first). Checks everything that needs no file or
    /// network; a start's remaining checks are [`StartArgs::build`]'s.
    pub fn parse(args: &[String]) -> Result<Self, CliError> {
        if args.len() <= 1 {
            return Err(CliError::Usage(String::new()));
        }
        // Asked-for help goes to stdout and succeeds; `-h` with a value stays SAP's genpass.
        if args.iter().any(|a| a == "--help") || args[1..] == ["-h"] {
            return Ok(Self::Help);
        }
        if args.iter().any(|a| a == "--version") {
            return Ok(Self::Version);
        }
        // --check and --explain (the table tools) have a command line of their own.
        let wants = |flag: &str| args.iter().skip(1).any(|a| a == flag);
        if wants("--check") {
            return Ok(Self::Check);
        }
        if wants("--explain") {
            return Ok(Self::Explain);
        }
        let m = command()
            .try_get_matches_from(args)
            .map_err(|err| CliError::Usage(first_line(&err)))?;
        Request::from_matches(m).map(Self::Run)
    }
}

impl Request {
    fn from_matches(m: ArgMatches) -> Result<Self, CliError> {
        if m.get_one::<String>("genpass").is_some() {
            return Err(CliError::Fail("-h: encrypted saprouttab passwords are not used by this router; write the password in clear in the table (it is compared in constant time and never logged)".into()));
        }
        if m.get_one::<String>("extlib").is_some() || m.get_one::<String>("initstring").is_some() {
            return Err(CliError::Fail(
                "-a/-A: third-party libraries are not loaded by this router".into(),
            ));
        }
        let port: u16 = number(&m, "service", "-S")?.unwrap_or(3299);
        let wait_ms: u64 = number(&m, "timeout", "-W")?.unwrap_or(5000);
        let target = AdminTarget {
            host: m
                .get_one::<String>("host")
                .cloned()
                .unwrap_or_else(|| "localhost".into()),
            port,
            wait: Duration::from_millis(wait_ms.max(1000)),
        };
        if let Some(cmd) = admin_command(&m)? {
            return Ok(Self::Admin(target, cmd));
        }
        if m.get_flag("info") || m.get_flag("info_long") {
            return Ok(Self::Info {
                target,
                password: m.get_one::<String>("infopass").cloned(),
                long: m.get_flag("info_long"),
            });
        }
        // -i FILE starts the router like -r, with the reverse-invoke role of FILE.
        if !m.get_flag("start") && m.get_one::<String>("ri").is_none() {
            return Err(CliError::Usage(
                "no function given (-r to start the router)".into(),
            ));
        }
        Ok(Self::Start(StartArgs::new(m, port, wait_ms)))
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admin(target, cmd) => f.debug_tuple("Admin").field(target).field(cmd).finish(),
            Self::Info { target, long, .. } => f
                .debug_struct("Info")
                .field("target", target)
                .field("long", long)
                .finish_non_exhaustive(),
            Self::Start(args) => f.debug_tuple("Start").field(args).finish(),
        }
    }
}

/// The admin request among the flags, if any; SAP's precedence when several are given.
fn admin_command(m: &ArgMatches) -> Result<Option<AdminCommand>, CliError> {
    Ok(if m.get_flag("stop") {
        Some(AdminCommand::Stop)
    } else if m.get_flag("soft") {
        Some(AdminCommand::SoftShutdown)
    } else if m.get_flag("reload") {
        Some(AdminCommand::NewRoutTab)
    } else if let Some(id) = m.get_one::<String>("cancel") {
        match id.trim().parse::<u32>() {
            Ok(id) => Some(AdminCommand::Cancel(vec![id])),
            Err(_) => return Err(CliError::Usage(format!("-c {id:?}: not a client id"))),
        }
    } else if let Some(spec) = m.get_one::<String>("trace") {
        Some(trace_command(spec).map_err(CliError::Usage)?)
    } else if m.get_flag("dump") {
        Some(AdminCommand::DumpBuffers)
    } else if m.get_flag("flush") {
        Some(AdminCommand::FlushBuffers)
    } else if m.get_flag("hide") {
        Some(AdminCommand::HideErrors)
    } else {
        None
    })
}

/// `-t`, `-t "on 7"`, `-t "off 10.0.0.*"`.
pub fn trace_command(spec: &str) -> Result<AdminCommand, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let expected = || format!("-t {spec:?}: expected \"on <id|address>\" or \"off <id|address>\"");
    match words.as_slice() {
        [] => Ok(AdminCommand::ToggleTrace),
        [on_off, target] => {
            let on = match on_off.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(expected()),
            };
            match target.parse::<u32>() {
                Ok(id) if on => Ok(AdminCommand::TraceConnection(vec![id])),
                Ok(id) => Ok(AdminCommand::TraceConnection2(vec![id])),
                Err(_) if on => Ok(AdminCommand::SetTracePeer(target.to_string())),
                Err(_) => Ok(AdminCommand::ClearTracePeer(target.to_string())),
            }
        }
        _ => Err(expected()),
    }
}

/// The value of flag `id` (shown as `flag`) as a number, if given; a usage error naming the
/// flag otherwise.
pub(super) fn number<T: std::str::FromStr>(
    m: &ArgMatches,
    id: &str,
    flag: &str,
) -> Result<Option<T>, CliError> {
    match m.get_one::<String>(id) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| CliError::Usage(format!("{flag} {text:?}: not a valid number"))),
    }
}

/// SAP's flags (and this router's long ones) as clap arguments; no help or version flags of
/// clap's own.
fn command() -> Command {
    let flag = |id: &'static str, short: char| Arg::new(id).short(short).action(ArgAction::SetTrue);
    let value = |id: &'static str, short: char| {
        Arg::new(id)
            .short(short)
            .num_args(1)
            .allow_hyphen_values(false)
    };
    Command::new("saprouter")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args([
            flag("start", 'r'),
            value("ri", 'i'),
            flag("stop", 's'),
            flag("soft", 'p'),
            flag("reload", 'n'),
            flag("info", 'l'),
            flag("info_long", 'L'),
            value("cancel", 'c'),
            Arg::new("trace")
                .short('t')
                .num_args(0..=1)
                .default_missing_value(""),
            flag("dump", 'd'),
            flag("flush", 'f'),
            flag("hide", 'z'),
            value("genpass", 'h'),
            value("extlib", 'a'),
            value("routtab", 'R'),
            value("log", 'G'),
            value("tracefile", 'T'),
            value("level", 'V'),
            value("host", 'H'),
            value("service", 'S'),
            value("infopass", 'P'),
            value("clients", 'C'),
            value("autostart", 'Y'),
            Arg::new("snc")
                .short('K')
                .num_args(0..=1)
                .default_missing_value(""),
            value("initstring", 'A'),
            flag("nodns", 'D'),
            flag("append", 'E'),
            value("maxlog", 'J'),
            flag("ipv6", '6'),
            flag("hideerr", 'Z'),
            value("packets", 'B'),
            value("queue", 'Q'),
            value("timeout", 'W'),
            value("portrange", 'M'),
            value("localaddr", 'I'),
            Arg::new("sock_buf_size")
                .long("sock_buf_size")
                .num_args(1)
                .require_equals(true),
            Arg::new("metrics").long("metrics").num_args(1),
            Arg::new("log_format").long("log-format").num_args(1),
            Arg::new("snc_cert").long("snc-cert").num_args(1),
            Arg::new("snc_key").long("snc-key").num_args(1),
            Arg::new("snc_ca").long("snc-ca").num_args(1),
            Arg::new("snc_p12").long("snc-p12").num_args(1),
            Arg::new("snc_p12_pass")
                .long("snc-p12-pass-file")
                .num_args(1),
            Arg::new("max_pending").long("max-pending").num_args(1),
            Arg::new("max_pending_per_source")
                .long("max-pending-per-source")
                .num_args(1),
            Arg::new("max_connecting")
                .long("max-connecting")
                .num_args(1),
            Arg::new("penalty").long("penalty").num_args(1),
            Arg::new("proxy_from")
                .long("proxy-from")
                .num_args(1)
                .action(ArgAction::Append),
        ])
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
