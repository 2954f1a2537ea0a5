//! The rules on the table alone (and `-K`): wildcards, sensitive ports, shadowed lines,
//! host names, passwords, SNC lines.

use super::sets::{
    host_is_empty, host_is_wildcard, host_subset, hosts_intersect, service_range, service_subset,
    services_intersect,
};
use super::{CheckContext, Finding, Rule, Severity, Source};
use crate::routtab::{Action, Entry, HostPattern, RoutTab, ServicePattern, Source as LineSource};

/// SAP's ports that should never be open to every source: (first, last, what).
pub const SENSITIVE_PORTS: &[(u16, u16, &str)] = &[
    (3299, 3299, "SAProuter (3299)"),
    (3300, 3399, "gateway (33xx)"),
    (4800, 4899, "secure gateway (48xx)"),
    (3600, 3699, "message server (36xx)"),
    (3900, 3999, "message server internal port (39xx)"),
];

pub fn all(table: &RoutTab, src: Source<'_>, ctx: &CheckContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |line: usize, severity, rule, message: String, related| Finding {
        file: src.path.to_path_buf(),
        line,
        severity,
        rule,
        message,
        related,
    };
    for warning in &table.warnings {
        out.push(finding(
            warning.line,
            Severity::Warning,
            Rule::UnresolvedHost,
            warning.message.clone(),
            None,
        ));
    }
    for (index, e) in table.entries.iter().enumerate() {
        let quote = src.quote(e.line);
        let permits = matches!(e.action, Action::Permit | Action::Secure);
        let wildcard_source = matches!(&e.source, LineSource::Host(p) if host_is_wildcard(p));
        let unlimited = e.hops.before == 255 && e.hops.after == 255;
        let open = permits
            && wildcard_source
            && host_is_wildcard(&e.destination)
            && e.service == ServicePattern::Any;
        if open {
            let mut m = format!(
                "{quote} permits every source to every host and port: the router is an open \
                 proxy into every network it reaches (scanners find such routers and pivot \
                 through them); name the sources, hosts and ports each route needs"
            );
            if !unlimited {
                m.push_str("; hop limits do not narrow the targets");
            }
            if e.password.is_some() {
                m.push_str("; the password travels in clear and does not make it safe");
            }
            out.push(finding(e.line, Severity::Error, Rule::OpenRoute, m, None));
        } else if permits && wildcard_source && unlimited {
            let reached: Vec<&str> = sensitive_reached(&e.service, &ctx.own_ports);
            if !reached.is_empty() {
                let m = format!(
                    "{quote} lets any source reach {} without hop limits: these services \
                     administer SAP systems or route further; name the sources, or bound the \
                     route with hop limits (e.g. P*,0)",
                    reached.join(", ")
                );
                out.push(finding(
                    e.line,
                    Severity::Warning,
                    Rule::SensitiveService,
                    m,
                    None,
                ));
            }
        }
        if let Some(earlier) = shadowing_line(&table.entries[..index], e) {
            let m = format!(
                "{quote} is never reached: line {} {} matches every route it matches and \
                 decides first{}",
                earlier.line,
                src.quote(earlier.line),
                conditions_note(earlier)
            );
            out.push(finding(
                e.line,
                Severity::Warning,
                Rule::Shadowed,
                m,
                Some(earlier.line),
            ));
        }
        multi_address(e, src, &mut out);
        if e.password.is_some() {
            out.push(password_finding(e, &quote, ctx, src));
        }
        if !ctx.snc {
            snc_without_k(e, &quote, &mut out, src);
        }
    }
    plaintext_to_kt(table, src, &mut out);
    out
}

/// A password in a line: in clear on every plaintext hop of the route.
fn password_finding(e: &Entry, quote: &str, ctx: &CheckContext, src: Source<'_>) -> Finding {
    let snc_line = matches!(
        e.action,
        Action::SncPermit | Action::SncSecure | Action::SncDeny
    );
    let (severity, message) = if snc_line {
        (
            Severity::Note,
            format!(
                "{quote} carries a password although its peer is authenticated by SNC (TLS): \
                 the route string holding it is passed on to every router behind this one, \
                 in clear on any plaintext hop; the SNC name alone can decide"
            ),
        )
    } else {
        let fix = if ctx.snc {
            "authenticate the peer with SNC (TLS) instead: a KP or KS line naming its SNC name"
        } else {
            "authenticate peers with SNC (TLS) instead: start with -K and use KP or KS lines"
        };
        (
            Severity::Warning,
            format!(
                "{quote} carries a password: routes carry it in clear (/W/ in the route \
                 string), so anyone on the path can read and replay it; {fix}"
            ),
        )
    };
    Finding {
        file: src.path.to_path_buf(),
        line: e.line,
        severity,
        rule: Rule::Password,
        message,
        related: None,
    }
}

/// The sensitive port classes a service pattern reaches.
fn sensitive_reached(service: &ServicePattern, own: &[u16]) -> Vec<&'static str> {
    let (min, max) = service_range(service);
    let mut reached: Vec<&str> = SENSITIVE_PORTS
        .iter()
        .filter(|(lo, hi, _)| min <= *hi && *lo <= max)
        .map(|(_, _, what)| *what)
        .collect();
    if own.iter().any(|p| *p != 3299 && (min..=max).contains(p)) {
        reached.push("this router's own port");
    }
    reached
}

/// The first earlier line that matches every query `e` matches (so `e` never decides).
/// Only certain cases count: each key of `e` must be a subset of the earlier line's key.
fn shadowing_line<'a>(earlier: &'a [Entry], e: &Entry) -> Option<&'a Entry> {
    if e.action == Action::SncTarget || matches_nothing(e) {
        return None;
    }
    earlier.iter().find(|i| covers(i, e))
}

fn matches_nothing(e: &Entry) -> bool {
    host_is_empty(&e.destination) || matches!(&e.source, LineSource::Host(p) if host_is_empty(p))
}

/// True when line `i` matches every query line `j` matches (see `Entry::mismatch`: source,
/// destination, service, and SAP's native-`*` exception, which depends on the line type).
pub fn covers(i: &Entry, j: &Entry) -> bool {
    if i.action == Action::SncTarget {
        return false;
    }
    let source = match (&i.source, &j.source) {
        (LineSource::Host(pi), LineSource::Host(pj)) => host_subset(pj, pi),
        // A P/S/D line with source `*` matches any connection, SNC or not.
        (LineSource::Host(pi), LineSource::Snc(_)) => *pi == HostPattern::Any,
        (LineSource::Snc(ni), LineSource::Snc(nj)) => {
            *ni == crate::routtab::SncName::Any || ni == nj
        }
        // A K* line never matches a plaintext connection that a P/S/D line matches.
        (LineSource::Snc(_), LineSource::Host(_)) => false,
    };
    // A permitting `*` service does not match native routes on the last router; a line
    // that does match those (a listed port, or a deny line) is then not covered.
    let is_deny = |e: &Entry| matches!(e.action, Action::Deny | Action::SncDeny);
    let skips_native = |e: &Entry| e.service == ServicePattern::Any && !is_deny(e);
    let native_gap = skips_native(i) && !skips_native(j);
    source
        && !native_gap
        && host_subset(&j.destination, &i.destination)
        && service_subset(&j.service, &i.service)
}

/// What the shadowing line does with routes it decides, when that may surprise.
fn conditions_note(i: &Entry) -> String {
    let mut conditions = Vec::new();
    if i.hops.before != 255 || i.hops.after != 255 {
        conditions.push("hop limits");
    }
    if i.password.is_some() {
        conditions.push("password");
    }
    if matches!(i.action, Action::Secure | Action::SncSecure) {
        conditions.push("NI-only restriction");
    }
    if conditions.is_empty() {
        return String::new();
    }
    format!(
        " (a route that fails its {} is refused there; it does not fall through)",
        conditions.join(" or ")
    )
}

/// Host names with several addresses (a name is the only field that yields several).
fn multi_address(e: &Entry, src: Source<'_>, out: &mut Vec<Finding>) {
    let fields: [(usize, Option<&HostPattern>); 2] = [
        (
            1,
            match &e.source {
                LineSource::Host(p) => Some(p),
                LineSource::Snc(_) => None,
            },
        ),
        (2, Some(&e.destination)),
    ];
    for (index, pattern) in fields {
        let Some(HostPattern::Addresses(addrs)) = pattern else {
            continue;
        };
        if addrs.len() < 2 {
            continue;
        }
        let name = src
            .field(e.line, index)
            .unwrap_or_else(|| "the host name".into());
        let list: Vec<String> = addrs.iter().map(|m| m.addr.to_string()).collect();
        let loopback = addrs.iter().all(|m| m.addr.is_loopback());
        let what = if index == 1 { "source" } else { "destination" };
        let message = format!(
            "{what} '{name}' resolves to {} addresses ({}): the line matches all of them, a \
             route naming the host goes to one (IPv4 first), and the set changes only when \
             the table is re-read; write the addresses meant",
            addrs.len(),
            list.join(", ")
        );
        out.push(Finding {
            file: src.path.to_path_buf(),
            line: e.line,
            severity: if loopback {
                Severity::Note
            } else {
                Severity::Warning
            },
            rule: super::Rule::MultiAddressHost,
            message,
            related: None,
        });
    }
}

fn snc_without_k(e: &Entry, quote: &str, out: &mut Vec<Finding>, src: Source<'_>) {
    let message = match e.action {
        Action::SncTarget => format!(
            "{quote} makes the hop to this host and service SNC (TLS), but the router runs \
             without -K: routes there, and connections from the host, are refused (-104)"
        ),
        Action::SncPermit | Action::SncSecure | Action::SncDeny => format!(
            "{quote} can never match: without -K no connection is TLS, so none carries an \
             SNC name"
        ),
        _ => return,
    };
    out.push(Finding {
        file: src.path.to_path_buf(),
        line: e.line,
        severity: Severity::Warning,
        rule: Rule::SncWithoutK,
        message,
        related: None,
    });
}

/// P/S lines whose destination and service overlap a KT line's: the hop behind the router
/// is TLS, but the client's own hop is plaintext and unauthenticated.
fn plaintext_to_kt(table: &RoutTab, src: Source<'_>, out: &mut Vec<Finding>) {
    let kts: Vec<&Entry> = table
        .entries
        .iter()
        .filter(|e| e.action == Action::SncTarget)
        .collect();
    for e in &table.entries {
        if !matches!(e.action, Action::Permit | Action::Secure) || matches_nothing(e) {
            continue;
        }
        let Some(kt) = kts.iter().find(|k| {
            hosts_intersect(&e.destination, &k.destination)
                && services_intersect(&e.service, &k.service)
        }) else {
            continue;
        };
        let name = src.field(kt.line, 1).unwrap_or_else(|| match &kt.source {
            LineSource::Snc(n) => n.to_string(),
            LineSource::Host(_) => String::new(),
        });
        let message = format!(
            "{} lets plaintext, unauthenticated clients reach a destination that KT line {} \
             protects with SNC name {name}: the hop behind the router is TLS, the client's \
             own hop is not; permit SNC-authenticated peers with KP or KS lines instead",
            src.quote(e.line),
            kt.line
        );
        out.push(Finding {
            file: src.path.to_path_buf(),
            line: e.line,
            severity: Severity::Warning,
            rule: Rule::PlaintextToKt,
            message,
            related: Some(kt.line),
        });
    }
}
