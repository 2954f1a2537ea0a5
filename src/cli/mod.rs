//! The `saprouter` command line: [`command`] reads it (SAP's flags, letter for letter),
//! [`start`] turns a start's flags into the router's configuration, [`run`] carries out an
//! admin request or runs the router. The table tools `--check` (find risky lines) and
//! `--explain` (which line decides a route, and why the earlier ones did not) have command
//! lines of their own. The binary only parses, answers help and version, and runs.

pub mod check;
pub mod command;
pub mod explain;
pub mod run;
pub mod start;

pub use command::{CliError, Invocation, Request};

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
