//! `saprouter --check [-R FILE] [-i FILE] [-K [NAME]] [-S PORT] [--format text|json]`:
//! loads the table (and the reverse-invoke file) as start-up does, prints every finding
//! of [`crate::routtab::check`], and exits 0 (clean), 1 (warnings) or 2 (errors, or a file
//! that does not load). Also the report the router writes to its trace when a table loads.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::{Arg, ArgAction, Command};

use super::{common_args, first_line, json_string, own_port, Format};
use crate::ri::params::{self, ClientParams, ParamsError, RiParams};
use crate::routtab::check::{self, CheckContext, Finding, Rule, Severity, Source};
use crate::routtab::{RoutTab, TableError};
use crate::services::Services;

const USAGE: &str = "usage: saprouter --check [-R saprouttab] [-i ri-file] [-K [snc-name]] [-S port] [--format text|json]";

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// `-R` (default `saprouttab`).
    pub routtab: PathBuf,
    /// `-i`.
    pub ri: Option<PathBuf>,
    /// `-K` given, and `-S`.
    pub ctx: CheckContext,
}

/// Runs the command; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let command = Command::new("saprouter")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(Arg::new("check").long("check").action(ArgAction::SetTrue))
        .args(common_args());
    let m = match command.try_get_matches_from(args) {
        Ok(m) => m,
        Err(err) => {
            eprintln!("saprouter: {}\n{USAGE}", first_line(&err));
            return 2;
        }
    };
    let format = match Format::parse(m.get_one::<String>("format")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("saprouter: {e}\n{USAGE}");
            return 2;
        }
    };
    let port = match own_port(&m) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("saprouter: {e}\n{USAGE}");
            return 2;
        }
    };
    let request = CheckRequest {
        routtab: m
            .get_one::<String>("routtab")
            .map_or_else(|| PathBuf::from("saprouttab"), PathBuf::from),
        ri: m.get_one::<String>("ri").map(PathBuf::from),
        ctx: CheckContext {
            snc: m.get_one::<String>("snc").is_some(),
            own_ports: vec![port],
        },
    };
    let findings = run(&request, &Services::system());
    print!("{}", render(&findings, format));
    check::exit_code(&findings)
}

/// Loads and checks what `request` names, through the system resolver and `services`.
pub fn run(request: &CheckRequest, services: &Services) -> Vec<Finding> {
    let mut ctx = request.ctx.clone();
    let mut findings = Vec::new();
    let mut client = None;
    if let Some(path) = &request.ri {
        match params::load(path, services) {
            Ok(RiParams::Client(p)) => {
                ctx.own_ports.push(p.service);
                client = Some(p);
            }
            Ok(RiParams::Server(_)) => {}
            Err(err) => findings.push(ri_load_error(path, &err)),
        }
    }
    let table = match crate::router::state::load_routtab(&request.routtab, services.clone()) {
        Ok(table) => table,
        Err(err) => {
            findings.push(load_error(&err));
            check::sort(&mut findings);
            return findings;
        }
    };
    let text = std::fs::read_to_string(&request.routtab).unwrap_or_default();
    let src = Source {
        path: &request.routtab,
        text: &text,
    };
    findings.extend(check::check_table(&table, src, &ctx));
    if let (Some(p), Some(path)) = (&client, &request.ri) {
        let ri_text = std::fs::read_to_string(path).unwrap_or_default();
        findings.extend(check::check_ri_client(p, path, &ri_text, &table, src, &ctx));
    }
    check::sort(&mut findings);
    findings
}

fn load_error(err: &TableError) -> Finding {
    let message = match err.column {
        0 => err.message.clone(),
        column => format!("column {column}: {}; the table does not load", err.message),
    };
    Finding {
        file: err.file.clone(),
        line: err.line,
        severity: Severity::Error,
        rule: Rule::Load,
        message,
        related: None,
    }
}

fn ri_load_error(path: &Path, err: &ParamsError) -> Finding {
    let (line, message) = match err {
        ParamsError::Line {
            line, key, message, ..
        } => (*line, format!("{key}: {message}")),
        other => (0, other.to_string()),
    };
    Finding {
        file: path.to_path_buf(),
        line,
        severity: Severity::Error,
        rule: Rule::Load,
        message: format!("{message}; the reverse-invoke file does not load"),
        related: None,
    }
}

/// The findings as text lines or one JSON object.
pub fn render(findings: &[Finding], format: Format) -> String {
    let (errors, warnings, notes) = check::counts(findings);
    match format {
        Format::Text => {
            let mut out: String = findings.iter().map(|f| format!("{f}\n")).collect();
            out.push_str(&format!(
                "{errors} error(s), {warnings} warning(s), {notes} note(s)\n"
            ));
            out
        }
        Format::Json => {
            let items: Vec<String> = findings
                .iter()
                .map(|f| {
                    format!(
                        "{{\"file\":{},\"line\":{},\"severity\":\"{}\",\"rule\":\"{}\",\"message\":{},\"related_line\":{}}}",
                        json_string(&f.file.display().to_string()),
                        f.line,
                        f.severity.name(),
                        f.rule.id(),
                        json_string(&f.message),
                        f.related.map_or("null".to_string(), |n| n.to_string())
                    )
                })
                .collect();
            format!(
                "{{\"findings\":[{}],\"errors\":{errors},\"warnings\":{warnings},\"notes\":{notes}}}\n",
                items.join(",")
            )
        }
    }
}

/// The reverse-invoke DMZ file the router was started with (`-i`), for the report at load.
static RI_CLIENT: OnceLock<(PathBuf, ClientParams)> = OnceLock::new();

/// Remembers the router's `-i` file (when it is a DMZ file) so that the reports at start-up
/// and reload include its rules. Call before the router binds; only the first call counts.
pub fn remember_ri_file(path: &Path, params: &RiParams) {
    if let RiParams::Client(p) = params {
        let _ = RI_CLIENT.set((path.to_path_buf(), p.clone()));
    }
}

/// The router's report when a table has loaded (start-up, `-n`, SIGHUP): every finding as
/// a warning in the trace (a finding never stops the router), and the
/// `saprouter_routtab_findings` gauge.
pub fn report_loaded(path: &Path, table: &RoutTab, snc: bool, port: u16) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let src = Source { path, text: &text };
    let mut ctx = CheckContext {
        snc,
        own_ports: vec![port],
    };
    let mut findings = Vec::new();
    if let Some((ri_path, params)) = RI_CLIENT.get() {
        ctx.own_ports.push(params.service);
        let ri_text = std::fs::read_to_string(ri_path).unwrap_or_default();
        findings = check::check_ri_client(params, ri_path, &ri_text, table, src, &ctx);
    }
    findings.extend(check::check_table(table, src, &ctx));
    check::sort(&mut findings);
    for f in findings.iter().filter(|f| f.rule != Rule::UnresolvedHost) {
        // Unresolved names are already in the trace from the loader.
        tracing::warn!(
            severity = f.severity.name(),
            rule = f.rule.id(),
            "route permission table check: {f}"
        );
    }
    let (errors, warnings, notes) = check::counts(&findings);
    crate::metrics::routtab_findings(errors, warnings, notes);
}
