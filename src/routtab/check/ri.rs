//! The rules on a reverse-invoke DMZ (client) parameter file and the table beside it.

use std::path::Path;

use super::sets::service_range;
use super::{CheckContext, Finding, Rule, Severity, Source};
use crate::ri::params::ClientParams;
use crate::routtab::{Action, RoutTab};

/// The line of the first `key = ...` line of a parameter file (0 when absent).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim();
            !l.starts_with('#')
                && l.split_once('=')
                    .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        })
        .map_or(0, |i| i + 1)
}

/// Findings for a DMZ router's `-i` file (`ri_text` is its text) and its table.
pub fn check_ri_client(
    params: &ClientParams,
    ri_path: &Path,
    ri_text: &str,
    table: &RoutTab,
    table_src: Source<'_>,
    ctx: &CheckContext,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |line: usize, severity, rule, message: String| Finding {
        file: ri_path.to_path_buf(),
        line,
        severity,
        rule,
        message,
        related: None,
    };
    let role_line = key_line(ri_text, "client");
    if params.ace.is_empty() {
        let who = if ctx.snc {
            "any router holding a certificate of the CA"
        } else {
            "anyone who reaches it"
        };
        out.push(at(
            role_line,
            Severity::Warning,
            Rule::RiNoAce,
            format!(
                "no ACE list: {who} may register on port {} and receive the routes to the \
                 pseudo address it registers; add ACE lines for the LAN routers \
                 (ACE = P <address>/32) and end with ACE = D 0.0.0.0/0",
                params.service
            ),
        ));
    }
    let open_ace = params.ace.is_empty() || params.ace.iter().any(|a| a.permit && a.prefix == 0);
    if params.max_servers > 1 && open_ace && !ctx.snc {
        let line = match key_line(ri_text, "max_servers") {
            0 => role_line,
            n => n,
        };
        out.push(at(
            line,
            Severity::Warning,
            Rule::RiMaxServers,
            format!(
                "max_servers = {} lets further LAN routers register beside the first, and \
                 nothing vets them (no narrow ACE list, no -K): a rogue router can register \
                 a pseudo address of its own choosing; list the LAN routers in ACE lines or \
                 run with -K and KT lines naming them",
                params.max_servers
            ),
        ));
    }
    if params.exclusive {
        let exclusive_at = match key_line(ri_text, "exclusive") {
            0 => "by default".to_string(),
            n => format!("at {}:{n}", ri_path.display()),
        };
        for e in &table.entries {
            if !matches!(
                e.action,
                Action::Permit | Action::Secure | Action::SncPermit | Action::SncSecure
            ) {
                continue;
            }
            let (min, max) = service_range(&e.service);
            let ports = usize::from(max - min) + 1;
            if ports <= params.max_servers {
                continue;
            }
            out.push(Finding {
                file: table_src.path.to_path_buf(),
                line: e.line,
                severity: Severity::Warning,
                rule: Rule::RiExclusive,
                message: format!(
                    "{} permits {ports} ports, but exclusive = yes ({exclusive_at}) lets this \
                     router route only to registered pseudo addresses, and at most {} LAN \
                     router(s) register one pseudo port each: the rest of what the line \
                     permits is refused; name the pseudo addresses and ports, or set \
                     exclusive = no",
                    table_src.quote(e.line),
                    params.max_servers
                ),
                related: None,
            });
        }
    }
    out
}
