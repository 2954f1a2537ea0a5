//! `saprouter`: SAP's command line, letter for letter. Start functions (`-r`, `-i`) run the
//! daemon; the lower-case admin functions talk to a running router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use saprouter::adminclient;
use saprouter::ni::admin::AdminCommand;
use saprouter::router::{Lifecycle, Router, RouterConfig, Secret, TraceHook};
use saprouter::tls::{SncOptions, SncSource, SncTls, TlsError};
use tracing_subscriber::{fmt, prelude::*, reload, EnvFilter};

const USAGE: &str = "\
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

/// A usage error: one line, the help text, exit 2.
fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("saprouter: {problem}");
    }
    eprint!("{USAGE}");
    ExitCode::from(2)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("saprouter: {message}");
    ExitCode::FAILURE
}

fn number<T: std::str::FromStr>(m: &ArgMatches, id: &str, flag: &str) -> Result<Option<T>, String> {
    match m.get_one::<String>(id) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{flag} {text:?}: not a valid number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() <= 1 {
        return usage("");
    }
    // Asked-for help goes to stdout and succeeds; `-h` with a value stays SAP's genpass.
    if args.iter().any(|a| a == "--help") || args[1..] == ["-h"] {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version") {
        println!(
            "saprouter-rs {}, SAProuter {} compatible",
            env!("CARGO_PKG_VERSION"),
            saprouter::ni::admin::ROUTER_VERSION
        );
        return ExitCode::SUCCESS;
    }
    // --check and --explain (the table tools) have a command line of their own.
    if let Some(code) = saprouter::cli::dispatch(&args) {
        return code;
    }
    let matches = match command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(err) => {
            let text = err.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            return usage(first);
        }
    };
    saprouter::router::alloc::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return fail(format!("cannot start the runtime: {err}")),
    };
    runtime.block_on(dispatch(matches))
}

async fn dispatch(m: ArgMatches) -> ExitCode {
    if let Some(pass) = m.get_one::<String>("genpass") {
        let _ = pass;
        return fail("-h: encrypted saprouttab passwords are not used by this router; write the password in clear in the table (it is compared in constant time and never logged)");
    }
    if m.get_one::<String>("extlib").is_some() || m.get_one::<String>("initstring").is_some() {
        return fail("-a/-A: third-party libraries are not loaded by this router");
    }
    let port: u16 = match number(&m, "service", "-S") {
        Ok(p) => p.unwrap_or(3299),
        Err(e) => return usage(&e),
    };
    let wait_ms: u64 = match number(&m, "timeout", "-W") {
        Ok(w) => w.unwrap_or(5000),
        Err(e) => return usage(&e),
    };
    let admin_host = m
        .get_one::<String>("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let wait = Duration::from_millis(wait_ms.max(1000));

    let admin: Option<AdminCommand> = if m.get_flag("stop") {
        Some(AdminCommand::Stop)
    } else if m.get_flag("soft") {
        Some(AdminCommand::SoftShutdown)
    } else if m.get_flag("reload") {
        Some(AdminCommand::NewRoutTab)
    } else if let Some(id) = m.get_one::<String>("cancel") {
        match id.trim().parse::<u32>() {
            Ok(id) => Some(AdminCommand::Cancel(vec![id])),
            Err(_) => return usage(&format!("-c {id:?}: not a client id")),
        }
    } else if let Some(spec) = m.get_one::<String>("trace") {
        match trace_command(spec) {
            Ok(cmd) => Some(cmd),
            Err(e) => return usage(&e),
        }
    } else if m.get_flag("dump") {
        Some(AdminCommand::DumpBuffers)
    } else if m.get_flag("flush") {
        Some(AdminCommand::FlushBuffers)
    } else if m.get_flag("hide") {
        Some(AdminCommand::HideErrors)
    } else {
        None
    };
    if let Some(cmd) = admin {
        return match adminclient::command(&admin_host, port, cmd, wait).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(err),
        };
    }
    if m.get_flag("info") || m.get_flag("info_long") {
        let password = m.get_one::<String>("infopass").map(String::as_str);
        return match adminclient::info(&admin_host, port, password, wait).await {
            Ok(reply) => {
                print!(
                    "{}",
                    adminclient::info_text::render(
                        &reply,
                        m.get_flag("info_long"),
                        &saprouter::router::errors::ctime_now()
                    )
                );
                ExitCode::SUCCESS
            }
            Err(err) => fail(err),
        };
    }
    // -i FILE starts the router like -r, with the reverse-invoke role of FILE.
    let ri = match m.get_one::<String>("ri") {
        Some(path) => {
            match saprouter::ri::params::load(
                std::path::Path::new(path),
                &saprouter::services::Services::system(),
            ) {
                Ok(params) => {
                    saprouter::cli::check::remember_ri_file(std::path::Path::new(path), &params);
                    Some(params)
                }
                Err(err) => return fail(err),
            }
        }
        None => None,
    };
    if !m.get_flag("start") && ri.is_none() {
        return usage("no function given (-r to start the router)");
    }
    let observe = match Observe::from_matches(&m) {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    let mut config = match start_config(&m, port, wait_ms) {
        Ok(config) => config,
        Err(e) => return usage(&e),
    };
    match snc_identity(&m) {
        Ok(snc) => config.snc = snc,
        Err(e) => return fail(e),
    }
    run_router(config, ri, observe).await
}

/// The observability options (`--metrics`, `--log-format`).
struct Observe {
    metrics: Option<SocketAddr>,
    json: bool,
}

impl Observe {
    fn from_matches(m: &ArgMatches) -> Result<Self, String> {
        let metrics = match m.get_one::<String>("metrics") {
            None => None,
            Some(text) => Some(metrics_addr(text)?),
        };
        let json = match m.get_one::<String>("log_format").map(String::as_str) {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => return Err(format!("--log-format {other:?}: expected text or json")),
        };
        Ok(Self { metrics, json })
    }
}

/// `ADDR:PORT` (`[::1]:9326` for IPv6) or `:PORT` for all IPv4 addresses.
fn metrics_addr(text: &str) -> Result<SocketAddr, String> {
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

/// `-t`, `-t "on 7"`, `-t "off 10.0.0.*"`.
fn trace_command(spec: &str) -> Result<AdminCommand, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(AdminCommand::ToggleTrace),
        [on_off, target] => {
            let on = match on_off.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => {
                    return Err(format!(
                        "-t {spec:?}: expected \"on <id|address>\" or \"off <id|address>\""
                    ))
                }
            };
            match target.parse::<u32>() {
                Ok(id) if on => Ok(AdminCommand::TraceConnection(vec![id])),
                Ok(id) => Ok(AdminCommand::TraceConnection2(vec![id])),
                Err(_) if on => Ok(AdminCommand::SetTracePeer(target.to_string())),
                Err(_) => Ok(AdminCommand::ClearTracePeer(target.to_string())),
            }
        }
        _ => Err(format!(
            "-t {spec:?}: expected \"on <id|address>\" or \"off <id|address>\""
        )),
    }
}

fn start_config(m: &ArgMatches, port: u16, wait_ms: u64) -> Result<RouterConfig, String> {
    let mut c = RouterConfig {
        port,
        timeout: Duration::from_millis(wait_ms.max(1)),
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
            return Err("-C 0: at least one client is needed".into());
        }
        c.max_clients = n;
    }
    if let Some(level) = number::<u8>(m, "level", "-V")? {
        c.trace_level = level.clamp(1, 3);
    }
    if let Some(n) = number::<u32>(m, "autostart", "-Y")? {
        if n != 1 {
            return Err(format!(
                "-Y {n}: starting further router processes is not supported; raise -C instead"
            ));
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
        for (id, flag) in [
            ("snc_cert", "--snc-cert"),
            ("snc_key", "--snc-key"),
            ("snc_ca", "--snc-ca"),
            ("snc_p12", "--snc-p12"),
            ("snc_p12_pass", "--snc-p12-pass-file"),
        ] {
            if m.get_one::<String>(id).is_some() {
                return Err(format!("{flag} needs -K (SNC)"));
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
    let at_least_one = |n: usize, flag: &str| {
        if n == 0 {
            Err(format!("{flag} 0: must be at least 1"))
        } else {
            Ok(n)
        }
    };
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
        let policy = saprouter::router::penalty::PenaltyPolicy::parse(text)
            .map_err(|why| format!("--penalty {why}"))?;
        c.penalty = Some(policy);
    }
    for text in m.get_many::<String>("proxy_from").into_iter().flatten() {
        c.proxy_from
            .add(text)
            .map_err(|why| format!("--proxy-from {why}"))?;
    }
    Ok(c)
}

/// `-K [name]`: the router's SNC (TLS) identity. Without a name, the certificate's subject
/// is the name.
fn snc_identity(m: &ArgMatches) -> Result<Option<SncTls>, TlsError> {
    let Some(name) = m.get_one::<String>("snc") else {
        return Ok(None);
    };
    let path = |id: &str| m.get_one::<String>(id).map(PathBuf::from);
    let options = SncOptions {
        cert: path("snc_cert"),
        key: path("snc_key"),
        ca: path("snc_ca"),
        p12: path("snc_p12"),
        p12_password_file: path("snc_p12_pass"),
    };
    let source = SncSource::resolve(options, std::env::var_os("SECUDIR").map(PathBuf::from))?;
    let wanted = Some(name.trim()).filter(|n| !n.is_empty());
    SncTls::open(source, wanted).map(Some)
}

/// The trace file's filter for a level (1 info, 2 debug, 3 trace); `RUST_LOG` wins.
fn filter_for(level: u8) -> EnvFilter {
    if let Ok(env) = EnvFilter::try_from_default_env() {
        return env;
    }
    EnvFilter::new(match level {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    })
}

async fn run_router(
    config: RouterConfig,
    ri: Option<saprouter::ri::RiParams>,
    observe: Observe,
) -> ExitCode {
    let trace = match saprouter::router::logfile::CappedFile::open(
        &config.trace_file,
        config.append,
        config.max_log_size,
    ) {
        Ok(file) => file,
        Err(err) => {
            return fail(format!(
                "cannot open trace file {}: {err}",
                config.trace_file.display()
            ))
        }
    };
    let (filter, handle) = reload::Layer::new(filter_for(config.trace_level));
    let writer = std::sync::Mutex::new(trace);
    let (text, json) = if observe.json {
        let json = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer);
        (None, Some(json))
    } else {
        (
            Some(fmt::layer().with_ansi(false).with_writer(writer)),
            None,
        )
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    if observe.metrics.is_some() {
        // Before anything can be counted (the reverse-invoke links start with the router).
        saprouter::metrics::install();
    }
    if let Some(snc) = &config.snc {
        tracing::info!(snc_name = %snc.name(), "SNC active: TLS 1.3 with mutual authentication");
    }
    let hook: TraceHook = Box::new(move |level| {
        let _ = handle.modify(|f| *f = filter_for(level));
    });
    let router = match Router::bind(config, Some(hook)).await {
        Ok(router) => router,
        Err(err) => {
            tracing::error!(%err, "router not started");
            return fail(err);
        }
    };
    let shared = router.shared();
    shared.snc_started();
    if let Some(addr) = observe.metrics {
        if let Err(err) = saprouter::metrics::start(addr, shared.status_source()).await {
            tracing::error!(%addr, %err, "metrics endpoint not started");
            return fail(format!("--metrics {addr}: cannot listen: {err}"));
        }
    }
    let ri = match ri {
        Some(params) => match saprouter::ri::start(router.shared(), params).await {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::error!(%err, "router not started");
                return fail(err);
            }
        },
        None => None,
    };
    tokio::spawn(async move {
        signals(shared).await;
    });
    let outcome = router.run().await;
    if let Some(ri) = ri {
        ri.finish().await;
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

/// SIGTERM/SIGINT stop like `-s`; SIGHUP reloads like `-n`.
async fn signals(shared: std::sync::Arc<saprouter::router::Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("signal handlers not installed");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); shared.set_lifecycle(Lifecycle::Stopping); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); shared.set_lifecycle(Lifecycle::Stopping); }
            _ = hup.recv() => {
                // Errors are in the trace already; the identity in use stays.
                let _ = shared.reload_snc().await;
                match shared.reload_routtab().await {
                    Ok(lines) => {
                        tracing::info!(lines, "SIGHUP: route permission table reloaded");
                        if let Some(log) = shared.connlog() {
                            log.read_routtab(&shared.config().routtab);
                        }
                    }
                    Err(err) => tracing::error!(%err, "SIGHUP: table not reloaded; the old table stays"),
                }
            }
        }
    }
}
