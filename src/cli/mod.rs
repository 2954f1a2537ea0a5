//! The table tools of the `saprouter` command: `--check` (find risky lines) and
//! `--explain` (which line decides a route, and why the earlier ones did not). The binary
//! only hands its arguments here when one of the two flags is present.

pub mod check;
pub mod explain;

use std::process::ExitCode;

/// Runs `--check` or `--explain` when `args` (program name first) ask for one; `None`
/// otherwise, and the caller goes on with the router's own command line.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let wants = |flag: &str| args.iter().skip(1).any(|a| a == flag);
    if wants("--check") {
        return Some(ExitCode::from(check::main(args)));
    }
    if wants("--explain") {
        return Some(ExitCode::from(explain::main(args)));
    }
    None
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Output format of both tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people (and `grep`).
    Text,
    /// One JSON object for scripts.
    Json,
}

impl Format {
    fn parse(text: Option<&String>) -> Result<Self, String> {
        match text.map(String::as_str) {
            None | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(format!("--format {other:?}: expected text or json")),
        }
    }
}

/// The arguments both tools share with the router: `-R`, `-i`, `-K`, `-S`, `--format`.
fn common_args() -> Vec<clap::Arg> {
    use clap::Arg;
    vec![
        Arg::new("routtab").short('R').num_args(1),
        Arg::new("ri").short('i').num_args(1),
        Arg::new("snc")
            .short('K')
            .num_args(0..=1)
            .default_missing_value(""),
        Arg::new("service").short('S').num_args(1),
        Arg::new("format").long("format").num_args(1),
    ]
}

/// The router's own ports as the command line gives them (`-S`, default 3299).
fn own_port(m: &clap::ArgMatches) -> Result<u16, String> {
    match m.get_one::<String>("service") {
        None => Ok(3299),
        Some(text) => crate::services::Services::system()
            .resolve(text.trim())
            .ok_or_else(|| format!("-S {text:?}: not a port or service name")),
    }
}

/// A clap error as one line.
fn first_line(err: &clap::Error) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}
