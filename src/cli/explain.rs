//! `saprouter --explain SOURCE ROUTE [-R FILE] [--snc-name NAME] [-K [NAME]] [-S PORT]
//! [--raw] [--hop N] [--format text|json]`: which line of the table decides the hop this
//! router would make for a route from SOURCE, and why each earlier line did not match.
//!
//! The steps are the router's own (router/routing.rs): the next hop's service and host are
//! resolved by the same code (services database; `router::nexthop`'s host check and address
//! choice), a route to the router's own port is refused, the `KT` source check runs, then
//! the table decides through [`RoutTab::decide_traced`], the walk [`RoutTab::decide`] makes.
//! Exit code: 0 permitted, 1 refused, 2 usage or a table that does not load.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

use super::{common_args, first_line, json_string, own_port, Format};
use crate::ni::route::{talk_mode, RouteRequest};
use crate::ni::{routestr, NI_VERSION};
use crate::router::nexthop::{host_spec, pick_address, HostSpec};
use crate::router::selfaddr;
use crate::routtab::check::Source;
use crate::routtab::{Action, Decision, DenyReason, Entry, Mismatch, RoutTab, RouteQuery};
use crate::services::Services;

const USAGE: &str = "usage: saprouter --explain SOURCE ROUTE [-R saprouttab] [--snc-name NAME] [-K [snc-name]] [-S port] [--raw] [--hop N] [--format text|json]";

/// Looks up a host name (the system resolver in the command; a table in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Vec<IpAddr>, String>;

/// One question: a route from a source.
#[derive(Debug, Clone)]
pub struct Question {
    /// The peer address the route comes from.
    pub source: IpAddr,
    /// The route string, `/H/.../S/.../H/...`.
    pub route: String,
    /// The connection's authenticated SNC (TLS) name, if any.
    pub snc_name: Option<String>,
    /// Native (raw) talk mode instead of NI.
    pub raw: bool,
    /// 1-based position of this router among the route's hops (1: the first).
    pub hop: usize,
    /// `-K` given.
    pub snc: bool,
    /// The router's own ports.
    pub own_ports: Vec<u16>,
    /// A reverse-invoke DMZ router with `exclusive = yes` (`-i`).
    pub exclusive: bool,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The table permits the hop (by this line).
    Permit {
        /// Deciding line.
        line: usize,
    },
    /// The table refuses it (`line` `None`: no line matched).
    Deny {
        /// Deciding line.
        line: Option<usize>,
        /// Why.
        reason: DenyReason,
    },
    /// Refused before or after the table (unknown service or host, own port, SNC checks).
    Refused {
        /// SAP return code.
        rc: i32,
        /// Why, in the router's words.
        why: String,
    },
}

/// The explanation: the verdict, the query the table saw, one entry per line looked at.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// What the router does.
    pub verdict: Verdict,
    /// The table's own verdict, when the table was asked (the one `decide` gives).
    pub decision: Option<Decision>,
    /// Lines looked at: (line, quoted text, reasons; empty reasons = the deciding line).
    pub lines: Vec<(usize, String, Vec<String>)>,
    /// What the deciding line's conditions said (empty when nothing decided).
    pub decider_note: String,
    /// The `-G` log line the router would write (`PERM DENIED ...` / `CONNECT TO ...`).
    pub log: String,
    /// Summary lines (route, source, next hop).
    pub header: Vec<String>,
}

/// Runs the command; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let command = Command::new("saprouter")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("explain")
                .long("explain")
                .num_args(2)
                .value_names(["SOURCE", "ROUTE"])
                .allow_hyphen_values(false),
        )
        .arg(Arg::new("snc_name").long("snc-name").num_args(1))
        .arg(Arg::new("raw").long("raw").action(ArgAction::SetTrue))
        .arg(Arg::new("hop").long("hop").num_args(1))
        .args(common_args());
    let usage = |problem: String| {
        eprintln!("saprouter: {problem}\n{USAGE}");
        2
    };
    let m = match command.try_get_matches_from(args) {
        Ok(m) => m,
        Err(err) => return usage(first_line(&err)),
    };
    let values: Vec<&String> = m
        .get_many::<String>("explain")
        .map(|v| v.collect())
        .unwrap_or_default();
    let [source, route] = values.as_slice() else {
        return usage("--explain needs SOURCE and ROUTE".into());
    };
    let Ok(source) = source.trim().parse::<IpAddr>() else {
        return usage(format!("SOURCE {source:?}: not an IP address"));
    };
    let format = match Format::parse(m.get_one::<String>("format")) {
        Ok(f) => f,
        Err(e) => return usage(e),
    };
    let port = match own_port(&m) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let hop = match m
        .get_one::<String>("hop")
        .map(|h| h.trim().parse::<usize>())
    {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return usage("--hop: a position from 1".into()),
    };
    let services = Services::system();
    let mut own_ports = vec![port];
    let mut exclusive = false;
    if let Some(path) = m.get_one::<String>("ri") {
        match crate::ri::params::load(std::path::Path::new(path), &services) {
            Ok(crate::ri::RiParams::Client(p)) => {
                own_ports.push(p.service);
                exclusive = p.exclusive;
            }
            Ok(_) => {}
            Err(err) => {
                eprintln!("saprouter: {err}");
                return 2;
            }
        }
    }
    let path = m
        .get_one::<String>("routtab")
        .map_or_else(|| PathBuf::from("saprouttab"), PathBuf::from);
    let table = match crate::router::state::load_routtab(&path, services.clone()) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("saprouter: {err}");
            return 2;
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let question = Question {
        source,
        route: route.to_string(),
        snc_name: m.get_one::<String>("snc_name").cloned(),
        raw: m.get_flag("raw"),
        hop,
        snc: m.get_one::<String>("snc").is_some(),
        own_ports,
        exclusive,
    };
    let lookup = |name: &str| system_lookup(name);
    let src = Source {
        path: &path,
        text: &text,
    };
    let explanation = match explain(&table, src, &services, &lookup, &question) {
        Ok(e) => e,
        Err(e) => return usage(e),
    };
    match format {
        Format::Text => print!("{}", render_text(&explanation)),
        Format::Json => println!("{}", render_json(&explanation)),
    }
    match explanation.verdict {
        Verdict::Permit { .. } => 0,
        _ => 1,
    }
}

/// The system resolver (`getaddrinfo`), as tokio's `lookup_host` uses it in the router.
fn system_lookup(name: &str) -> Result<Vec<IpAddr>, String> {
    use std::net::ToSocketAddrs;
    (name, 0u16)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

/// Explains `q` against `table` (`src` is its file, for quoting lines).
pub fn explain(
    table: &RoutTab,
    src: Source<'_>,
    services: &Services,
    lookup: Lookup<'_>,
    q: &Question,
) -> Result<Explanation, String> {
    let hops = routestr::parse(&q.route, "3299").map_err(|e| format!("ROUTE: {e}"))?;
    if hops.len() < 2 {
        return Err("ROUTE: a route names this router and at least one hop behind it".into());
    }
    if q.hop >= hops.len() {
        return Err(format!(
            "--hop {}: the route has {} hops; this router must be one before the last",
            q.hop,
            hops.len()
        ));
    }
    let mode = if q.raw {
        talk_mode::NI_RAW_IO
    } else {
        talk_mode::NI_MSG_IO
    };
    let mut route = RouteRequest::new(hops, mode, NI_VERSION);
    route.rest = u8::try_from(route.hops.len() - q.hop).unwrap_or(u8::MAX);
    let next = route.next_hop().clone();
    let source = selfaddr::canonical(q.source);
    let mut e = Explanation {
        verdict: Verdict::Refused {
            rc: 0,
            why: String::new(),
        },
        decision: None,
        lines: Vec::new(),
        decider_note: String::new(),
        log: String::new(),
        header: vec![
            format!(
                "route: {} ({}; this router is hop {} of {}: {} router(s) before it, {} after)",
                routestr::format_redacted(&route.hops),
                if q.raw { "native (raw)" } else { "NI" },
                q.hop,
                route.hops.len(),
                route.routers_before(),
                route.routers_after()
            ),
            format!(
                "source: {source}{}",
                q.snc_name
                    .as_deref()
                    .map_or(" (plaintext, no SNC name)".to_string(), |n| format!(
                        " (SNC name {n})"
                    ))
            ),
        ],
    };
    let perm_denied = |why: &str| {
        format!(
            "PERM DENIED host {source} to {}/{} ({why})",
            next.host, next.service
        )
    };
    let refuse = |mut e: Explanation, rc: i32, why: String, log: String| {
        e.verdict = Verdict::Refused { rc, why };
        e.log = log;
        Ok(e)
    };
    let ip = match host_spec(&next.host) {
        Err(f) => {
            return refuse(
                e,
                f.rc,
                format!("{} ({})", f.error, f.detail),
                String::new(),
            )
        }
        Ok(HostSpec::Literal(ip)) => ip,
        Ok(HostSpec::Name(name)) => match lookup(name).map(|a| pick_address(&next.host, &a)) {
            Ok(Ok(ip)) => ip,
            Ok(Err(f)) => {
                return refuse(
                    e,
                    f.rc,
                    format!("{} ({})", f.error, f.detail),
                    String::new(),
                )
            }
            Err(why) => {
                let why = format!("hostname '{}' unknown ({why})", next.host);
                return refuse(
                    e,
                    crate::ni::rterr::rc::NIEROUT_HOST_UNKNOWN,
                    why,
                    String::new(),
                );
            }
        },
    };
    let Some(port) = services.resolve(&next.service) else {
        let why = format!("service '{}' unknown (-91)", next.service);
        return refuse(
            e,
            crate::ni::rterr::rc::NIEROUT_SERV_UNKNOWN,
            why,
            String::new(),
        );
    };
    e.header.push(format!(
        "next hop: {} -> {ip} port {port} ({})",
        next.host, next.service
    ));
    if selfaddr::is_own_listener(ip, port, &q.own_ports) {
        let why = "route to the router itself".to_string();
        return refuse(
            e,
            crate::ni::rterr::rc::NIEROUT_PERM_DENIED,
            why.clone(),
            perm_denied(&why),
        );
    }
    if q.exclusive {
        e.header.push(format!(
            "exclusive = yes: the router takes this hop only when a LAN router registered {ip}/{port}; otherwise it is refused (-94, exclusive reverse invoke) before the table is asked. --explain cannot see registrations: the table's verdict below assumes one."
        ));
    }
    if let Some((line, wanted)) = table.snc_source_refusal(source, q.snc_name.as_deref()) {
        let why = format!(
            "KT line {line} requires connections from {source} to be SNC (TLS) with name {wanted} (-104)"
        );
        return refuse(
            e,
            crate::ni::rterr::rc::NIEROUT_SNC_FAILURE,
            why,
            String::new(),
        );
    }
    let passwords: Vec<&str> = [route.own_hop().password.as_str(), next.password.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let query = RouteQuery {
        source,
        snc_name: q.snc_name.as_deref(),
        destination: ip,
        port,
        passwords: &passwords,
        raw: q.raw,
        routers_before: route.routers_before(),
        routers_after: route.routers_after(),
    };
    let trace = table.decide_traced(&query);
    let by_line = |n: usize| table.entries.iter().find(|x| x.line == n);
    for skipped in &trace.skipped {
        if let Some(entry) = by_line(skipped.line) {
            let reasons = reasons(entry, skipped.mismatch, &query, src);
            e.lines.push((entry.line, src.quote(entry.line), reasons));
        }
    }
    e.decision = Some(trace.decision);
    match trace.decision {
        Decision::Permit { line } => {
            e.lines.push((line, src.quote(line), Vec::new()));
            e.decider_note =
                "matches source, destination and service; its conditions hold: permitted".into();
            if let Some((kt_line, wanted)) = kt_hop(table, ip, port) {
                if !q.snc {
                    let why = format!(
                        "permitted by line {line}, but KT line {kt_line} makes the hop SNC (TLS) with {wanted} and the router runs without -K (-104)"
                    );
                    return refuse(
                        e,
                        crate::ni::rterr::rc::NIEROUT_SNC_FAILURE,
                        why,
                        String::new(),
                    );
                }
                e.decider_note.push_str(&format!(
                    "; the hop is TLS with peer name {wanted} (KT line {kt_line})"
                ));
            }
            let native = if q.raw {
                ", *** NATIVE ROUTING ***"
            } else {
                ""
            };
            e.log = format!(
                "CONNECT TO host {ip}/{} ({}){native}",
                next.service, next.host
            );
            e.verdict = Verdict::Permit { line };
        }
        Decision::Deny { line, reason } => {
            if let Some(n) = line {
                e.lines.push((n, src.quote(n), Vec::new()));
                if let Some(entry) = by_line(n) {
                    e.decider_note = condition_text(entry, reason, &query);
                }
            }
            e.log = perm_denied(reason.log_text());
            e.verdict = Verdict::Deny { line, reason };
        }
    }
    Ok(e)
}

/// The first `KT` line for the hop to `ip:port`, as (line, name).
fn kt_hop(table: &RoutTab, ip: IpAddr, port: u16) -> Option<(usize, String)> {
    let wanted = table.snc_target(ip, port)?;
    table
        .entries
        .iter()
        .find(|e| {
            e.action == Action::SncTarget && e.destination.matches(ip) && e.service.matches(port)
        })
        .map(|e| (e.line, wanted.to_string()))
}

/// Why a line did not match, one text per failed key.
fn reasons(entry: &Entry, m: Mismatch, q: &RouteQuery<'_>, src: Source<'_>) -> Vec<String> {
    let field = |i: usize| src.field(entry.line, i).unwrap_or_else(|| "*".into());
    let mut out = Vec::new();
    if m.snc_target {
        out.push("a KT line: it declares SNC for a hop, it does not permit or deny".into());
        return out;
    }
    if m.no_snc_name {
        out.push("a K* line: the connection carries no SNC name (it is not TLS)".into());
    }
    if m.source {
        match q.snc_name {
            Some(name) if matches!(entry.source, crate::routtab::Source::Snc(_)) => {
                out.push(format!("SNC name {name} does not match {}", field(1)))
            }
            _ => out.push(format!("source {} does not match {}", q.source, field(1))),
        }
    }
    if m.source && matches!(entry.source, crate::routtab::Source::Host(_)) {
        // The name's addresses follow the quoted name (the table matched those).
        if let (Some(last), crate::routtab::Source::Host(p)) = (out.last_mut(), &entry.source) {
            last.push_str(&addresses(&field(1), p));
        }
    }
    if m.destination {
        out.push(format!(
            "destination {} does not match {}{}",
            q.destination,
            field(2),
            addresses(&field(2), &entry.destination)
        ));
    }
    if m.service {
        let named = field(3);
        let port = match entry.service {
            crate::routtab::ServicePattern::Range(a, b)
                if a == b && named.parse::<u16>().is_err() =>
            {
                format!(" ({a})")
            }
            _ => String::new(),
        };
        out.push(format!("service {} does not match {named}{port}", q.port));
    }
    if m.native_wildcard {
        out.push(
            "native (raw) route on the last router: a '*' service does not permit it (the port must be listed)"
                .into(),
        );
    }
    out
}

/// " (a, b)" after a host name: the addresses it resolved to when the table loaded.
fn addresses(field: &str, pattern: &crate::routtab::HostPattern) -> String {
    let named = field.contains(|c: char| c.is_ascii_alphabetic()) && !field.contains(':');
    match pattern {
        crate::routtab::HostPattern::Addresses(list) if named => {
            let list: Vec<String> = list.iter().map(|m| m.addr.to_string()).collect();
            match list.is_empty() {
                true => " (the name did not resolve)".into(),
                false => format!(" ({})", list.join(", ")),
            }
        }
        _ => String::new(),
    }
}

/// What the deciding line's conditions said about a refused route.
fn condition_text(entry: &Entry, reason: DenyReason, q: &RouteQuery<'_>) -> String {
    let limit = |n: u8| {
        if n == 255 {
            "*".to_string()
        } else {
            n.to_string()
        }
    };
    match reason {
        DenyReason::NoMatch => String::new(),
        DenyReason::DenyLine => "a deny line: denied by entry".into(),
        DenyReason::HopLimit => format!(
            "hop limit exceeded: {} router(s) before this one and {} after; the line allows {} before and {} after",
            q.routers_before,
            q.routers_after,
            limit(entry.hops.before),
            limit(entry.hops.after)
        ),
        DenyReason::Password => match q.passwords.len() {
            0 => "wrong password: the line needs a password and the route carries none (/W/)".into(),
            _ => "wrong password: the route's password (/W/) is not the line's".into(),
        },
        DenyReason::NativeNotAllowed => {
            "native (raw) routes not allowed by entry: an S/KS line permits the SAP (NI) protocol only".into()
        }
    }
}

/// The explanation for people.
pub fn render_text(e: &Explanation) -> String {
    let mut out: String = e.header.iter().map(|h| format!("{h}\n")).collect();
    for (line, text, reasons) in &e.lines {
        if reasons.is_empty() {
            out.push_str(&format!(
                "line {line}: {text}: decides: {}\n",
                e.decider_note
            ));
        } else {
            out.push_str(&format!(
                "line {line}: {text}: no match: {}\n",
                reasons.join("; ")
            ));
        }
    }
    out.push_str(&format!("verdict: {}\n", verdict_text(&e.verdict)));
    if !e.log.is_empty() {
        out.push_str(&format!("-G log: {}\n", e.log));
    }
    out
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Permit { line } => format!("permitted by line {line}"),
        Verdict::Deny {
            line: Some(n),
            reason,
        } => {
            format!(
                "refused by line {n} (-94 route permission denied: {})",
                reason.log_text()
            )
        }
        Verdict::Deny { line: None, .. } => {
            "refused: no line matches (-94 route permission denied: no matching entry)".into()
        }
        Verdict::Refused { rc, why } => format!("refused ({rc}): {why}"),
    }
}

/// The explanation for scripts.
pub fn render_json(e: &Explanation) -> String {
    let (verdict, line, reason, rc) = match &e.verdict {
        Verdict::Permit { line } => ("permit", Some(*line), String::new(), 0),
        Verdict::Deny { line, reason } => ("deny", *line, reason.log_text().to_string(), -94),
        Verdict::Refused { rc, why } => ("refused", None, why.clone(), *rc),
    };
    let lines: Vec<String> = e
        .lines
        .iter()
        .map(|(n, text, reasons)| {
            let reasons: Vec<String> = reasons.iter().map(|r| json_string(r)).collect();
            format!(
                "{{\"line\":{n},\"text\":{},\"decides\":{},\"reasons\":[{}]}}",
                json_string(text),
                reasons.is_empty(),
                reasons.join(",")
            )
        })
        .collect();
    format!(
        "{{\"verdict\":\"{verdict}\",\"line\":{},\"reason\":{},\"rc\":{rc},\"log\":{},\"note\":{},\"lines\":[{}]}}",
        line.map_or("null".into(), |n| n.to_string()),
        json_string(&reason),
        json_string(&e.log),
        json_string(&e.decider_note),
        lines.join(",")
    )
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
