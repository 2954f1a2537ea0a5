//! The table checker (`saprouter --check`, and the trace at start-up and reload): finds
//! lines that are risky or that cannot do what they say, and says why. Pure: it sees the
//! loaded table, the file's text (to quote lines, passwords masked) and what the command
//! line says; the caller reads files and prints. Every rule has an id documented in
//! `docs/routtab-check.md`.

mod ri;
mod rules;
pub mod sets;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use ri::check_ri_client;

use super::RoutTab;

/// How bad a finding is. Errors and warnings decide the exit code of `--check`; notes do
/// not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, not a problem in itself.
    Note,
    /// Risky or misleading; the router runs as the table says.
    Warning,
    /// A table that opens the router to everyone (or does not load).
    Error,
}

impl Severity {
    /// `note`, `warning`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The rules, each with the id printed in brackets and documented in docs/routtab-check.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The table (or the `-i` file) does not load.
    Load,
    /// `P`/`S` with wildcard source, destination and service.
    OpenRoute,
    /// Wildcard source to message server, gateway or SAProuter ports, no hop limits.
    SensitiveService,
    /// A line an earlier line always decides before it.
    Shadowed,
    /// A host name that does not resolve now.
    UnresolvedHost,
    /// A host name with several addresses.
    MultiAddressHost,
    /// A password in the table.
    Password,
    /// K* lines on a router without `-K`.
    SncWithoutK,
    /// A P/S line that lets plaintext clients reach a destination a KT line protects.
    PlaintextToKt,
    /// Reverse invoke, DMZ side: no ACE list.
    RiNoAce,
    /// Reverse invoke, DMZ side: several LAN routers may register, none vetted.
    RiMaxServers,
    /// Reverse invoke, DMZ side: `exclusive = yes` and the table permits more.
    RiExclusive,
}

impl Rule {
    /// The id printed in brackets.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Load => "load",
            Rule::OpenRoute => "open-route",
            Rule::SensitiveService => "wildcard-to-sensitive-port",
            Rule::Shadowed => "shadowed-line",
            Rule::UnresolvedHost => "unresolved-host",
            Rule::MultiAddressHost => "multi-address-host",
            Rule::Password => "password-in-table",
            Rule::SncWithoutK => "snc-line-without-k",
            Rule::PlaintextToKt => "plaintext-to-snc-target",
            Rule::RiNoAce => "ri-no-ace",
            Rule::RiMaxServers => "ri-max-servers-unvetted",
            Rule::RiExclusive => "ri-exclusive-table",
        }
    }
}

/// One finding: `file:line: severity: message [rule]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file as named on the command line.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// How bad.
    pub severity: Severity,
    /// Which rule.
    pub rule: Rule,
    /// What and why (never a password).
    pub message: String,
    /// Another line the finding is about (the shadowing line, the KT line), if any.
    pub related: Option<usize>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {} [{}]",
            self.file.display(),
            self.line,
            self.severity.name(),
            self.message,
            self.rule.id()
        )
    }
}

/// What the command line says that changes a table's meaning.
#[derive(Debug, Clone, Default)]
pub struct CheckContext {
    /// `-K` is given: the router speaks SNC (TLS) and K* lines can match.
    pub snc: bool,
    /// The router's own ports (`-S`, the reverse-invoke registration port): SAProuter
    /// ports besides 3299.
    pub own_ports: Vec<u16>,
}

/// The table file being checked: its path as named and its text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Path as named (printed in findings).
    pub path: &'a Path,
    /// The file's text (for quoting lines); empty when unavailable.
    pub text: &'a str,
}

impl Source<'_> {
    /// Line `n` shown for a message: fields joined by one blank, the password masked.
    pub fn quote(&self, n: usize) -> String {
        let Some(text) = self.text.split('\n').nth(n.wrapping_sub(1)) else {
            return format!("line {n}");
        };
        let fields = split_fields(text.trim_end_matches('\r'));
        let shown: Vec<String> = fields
            .iter()
            .enumerate()
            .take_while(|(i, f)| *i < 5 || !f.starts_with('#'))
            .take(5)
            .map(|(i, f)| {
                if i == 4 && *f != "*" {
                    "<password>".to_string()
                } else {
                    f.to_string()
                }
            })
            .collect();
        format!("'{}'", shown.join(" "))
    }

    /// The text of field `index` (0-based) of line `n`, quotes kept.
    pub fn field(&self, n: usize, index: usize) -> Option<String> {
        let text = self.text.split('\n').nth(n.wrapping_sub(1))?;
        split_fields(text.trim_end_matches('\r'))
            .get(index)
            .map(|s| s.to_string())
    }
}

/// Splits a line on blanks and tabs, keeping double-quoted fields whole.
fn split_fields(line: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start_matches([' ', '\t']);
    while !rest.is_empty() {
        let end = if let Some(after) = rest.strip_prefix('"') {
            after.find('"').map_or(rest.len(), |i| i + 2)
        } else {
            rest.find([' ', '\t']).unwrap_or(rest.len())
        };
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start_matches([' ', '\t']);
    }
    fields
}

/// Every finding of the table rules, in line order (file-level findings first).
pub fn check_table(table: &RoutTab, source: Source<'_>, ctx: &CheckContext) -> Vec<Finding> {
    let mut findings = rules::all(table, source, ctx);
    sort(&mut findings);
    findings
}

/// Orders findings by file, line, then severity (worst first).
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.file, a.line, std::cmp::Reverse(a.severity)).cmp(&(
            &b.file,
            b.line,
            std::cmp::Reverse(b.severity),
        ))
    });
}

/// Counts by severity: (errors, warnings, notes).
pub fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |s| findings.iter().filter(|f| f.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Note))
}

/// The exit code of `--check`: 2 with an error, 1 with a warning, else 0.
pub fn exit_code(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}
