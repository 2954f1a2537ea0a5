//! `niping`: SAP's NI connectivity and throughput test (docs/configuration.md §4,
//! docs/protocol.md §6).
//!
//! - `niping -s`: echo server (every NI message is sent back verbatim);
//! - `niping -c -H <host|route string>`: client timing `-L` round trips of `-B` bytes;
//! - `niping -t`: self test of the NI layer on loopback.
//!
//! Plain blocking std sockets and one thread per connection: niping measures latency, and
//! a thread per connection keeps the echo path free of any scheduler.

pub mod client;
pub mod report;
pub mod selftest;
pub mod server;

use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::ni::frame::HEADER_LEN;

/// Default niping port (`sapdp98`).
pub const DEFAULT_PORT: u16 = 3298;
/// Largest NI message niping sends or echoes (payload bytes). Memory grows only as bytes
/// actually arrive, so a lying header costs nothing until its body is really sent.
pub const MAX_MESSAGE: usize = 256 * 1024 * 1024;
/// Smallest client message: the `EYECATCHER` text.
pub const MIN_MESSAGE: usize = 10;

/// What to run, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `-s`: echo server.
    Server(server::ServerOptions),
    /// `-c`: client.
    Client(client::ClientOptions),
    /// `-t`: self test.
    SelfTest,
}

/// SAP-style short help.
pub const USAGE: &str = "\
usage: niping -s [-S port] [-H bind_host] [-I idle_sec]
       niping -c -H <host|route string> [-S port] [-B bytes] [-L loops] [-D delay_ms]
       niping -t

  -s             start server (echo every NI message)
  -c             start client
  -t             self test of the NI layer on this host
  -H host        server host for -c (a route string /H/.../H/... goes through saprouters);
                 bind address for -s (default: all)
  -S port        server port (default 3298); for a route string, the last hop's default
  -B bytes       message size (default 1000, minimum 10)
  -L loops       number of round trips (default 10)
  -D delay_ms    delay between round trips (default 0)
  -I idle_sec    server stops after idle_sec without clients (default 0 = never)
  -h, --help     this text;  --version  the version
";

/// What `niping --version` prints.
pub fn version_text() -> String {
    format!(
        "niping (saprouter-rs {}), NI version {}",
        env!("CARGO_PKG_VERSION"),
        crate::ni::NI_VERSION
    )
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Mode, String> {
    let mut mode: Option<char> = None;
    let mut host: Option<String> = None;
    let mut service: Option<String> = None;
    let mut bytes = 1000usize;
    let mut loops = 10u64;
    let mut delay_ms = 0u64;
    let mut idle_s = 0u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option {name} needs a value"))
        };
        match arg.as_str() {
            "-s" | "-c" | "-t" => {
                let m = arg.chars().nth(1).unwrap_or('?');
                if mode.is_some_and(|old| old != m) {
                    return Err("only one of -s, -c, -t".into());
                }
                mode = Some(m);
            }
            "-H" => host = Some(value("-H")?),
            "-S" => service = Some(value("-S")?),
            "-B" => bytes = number(&value("-B")?, "-B")?,
            "-L" => loops = number(&value("-L")?, "-L")?,
            "-D" => delay_ms = number(&value("-D")?, "-D")?,
            "-I" => idle_s = number(&value("-I")?, "-I")?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    match mode {
        Some('s') => {
            let port = match service {
                Some(s) => port(&s).ok_or_else(|| format!("invalid port {s:?}"))?,
                None => DEFAULT_PORT,
            };
            Ok(Mode::Server(server::ServerOptions {
                bind: host,
                port,
                idle_s,
            }))
        }
        Some('c') => {
            let host = host.ok_or("-c needs -H <host>")?;
            if bytes > MAX_MESSAGE {
                return Err(format!("-B {bytes} exceeds the maximum ({MAX_MESSAGE})"));
            }
            if loops == 0 {
                return Err("-L must be at least 1".into());
            }
            Ok(Mode::Client(client::ClientOptions {
                host,
                service: service.unwrap_or_else(|| DEFAULT_PORT.to_string()),
                bytes: bytes.max(MIN_MESSAGE),
                loops,
                delay_ms,
            }))
        }
        Some(_) => Ok(Mode::SelfTest),
        None => Err("one of -s, -c, -t is required".into()),
    }
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("invalid number {text:?} for {name}"))
}

/// A port 1..=65535 or a service name (system services database, then SAP's built-in
/// `sapdpNN`/`sapgwNN` names), as the router resolves them.
pub fn port(text: &str) -> Option<u16> {
    crate::services::Services::system().resolve(text)
}

/// Runs niping with the arguments after the program name; returns the exit code
/// (0 success, 1 failure, 2 usage).
pub fn main(args: &[String]) -> i32 {
    // Asked for, help and the version go to stdout and succeed.
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-?"))
    {
        print!("{USAGE}");
        return 0;
    }
    if args.iter().any(|a| a == "--version") {
        println!("{}", version_text());
        return 0;
    }
    let mode = match parse_args(args) {
        Ok(mode) => mode,
        Err(why) => {
            let mut err = io::stderr().lock();
            if !args.is_empty() {
                let _ = writeln!(err, "niping: {why}\n");
            }
            let _ = err.write_all(USAGE.as_bytes());
            return 2;
        }
    };
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    match mode {
        Mode::Server(opts) => {
            drop(out);
            drop(err);
            server::run(&opts)
        }
        Mode::Client(opts) => client::run(&opts, &mut out, &mut err),
        Mode::SelfTest => selftest::run(&mut out),
    }
}

/// Reads one NI message into `buf` (header included), growing `buf` only as bytes arrive.
///
/// `Ok(false)`: the peer closed cleanly before a new header. A header announcing more than
/// `max` payload bytes is `InvalidData`; EOF inside a message is `UnexpectedEof`.
pub fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    buf.clear();
    let mut header = [0u8; HEADER_LEN];
    let mut have = 0;
    while have < HEADER_LEN {
        match stream.read(header.get_mut(have..).unwrap_or(&mut [])) {
            Ok(0) if have == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message length {len} exceeds max ({max})"),
        ));
    }
    buf.extend_from_slice(&header);
    let mut left = len;
    let mut chunk = [0u8; 64 * 1024];
    while left > 0 {
        let want = left.min(chunk.len());
        let n = match stream.read(chunk.get_mut(..want).unwrap_or(&mut [])) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        left -= n;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_modes_and_defaults() {
        assert_eq!(
            parse_args(&args("-s")),
            Ok(Mode::Server(server::ServerOptions {
                bind: None,
                port: 3298,
                idle_s: 0
            }))
        );
        assert_eq!(
            parse_args(&args("-s -S 4000 -I 5 -H 127.0.0.1")),
            Ok(Mode::Server(server::ServerOptions {
                bind: Some("127.0.0.1".into()),
                port: 4000,
                idle_s: 5
            }))
        );
        assert_eq!(
            parse_args(&args("-c -H h")),
            Ok(Mode::Client(client::ClientOptions {
                host: "h".into(),
                service: "3298".into(),
                bytes: 1000,
                loops: 10,
                delay_ms: 0
            }))
        );
        let Ok(Mode::Client(c)) = parse_args(&args("-c -H /H/r/H/t -S 3200 -B 1 -L 3 -D 7")) else {
            panic!("client expected");
        };
        assert_eq!(
            (c.service.as_str(), c.bytes, c.loops, c.delay_ms),
            ("3200", 10, 3, 7)
        );
        assert_eq!(parse_args(&args("-t")), Ok(Mode::SelfTest));
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            "",
            "-x",
            "-c",
            "-c -H",
            "-s -c",
            "-s -S port",
            "-s -S 0",
            "-s -S 70000",
            "-c -H h -L 0",
            "-c -H h -B x",
            "-c -H h -B 999999999999",
            "--help",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_are_strict() {
        assert_eq!(port("3298"), Some(3298));
        assert_eq!(port("sapdp98"), Some(3298));
        assert_eq!(port("sapgw01"), Some(3301));
        for bad in ["", "0", "+1", " 1", "65536", "sapdp100", "-1"] {
            assert_eq!(port(bad), None, "{bad:?}");
        }
    }
}
