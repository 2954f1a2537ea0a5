//! The connection log of `-G`: one line per event in SAP's shape
//! (`<ctime> CONNECT FROM C1/- host 10.0.0.1/51234`), docs/configuration.md §6.
//!
//! Writing never blocks routing for long and never stops it: a failed write is reported
//! once through tracing and the line is dropped. `-J` caps the size: the full file is
//! renamed to `<file>.old` and a new one started.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::errors::ctime_now;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The log was opened.
    InitLogfile,
    /// The route permission table was (re)read.
    ReadRouttab,
    /// A client connected.
    ConnectFrom,
    /// The router connected to the next hop.
    ConnectTo,
    /// One side closed.
    Disconnect,
    /// The table refused a route.
    PermDenied,
    /// The first message was not a route.
    InvalData,
    /// The SNC (TLS) certificate now in use (at start and after each reload).
    SncCertificate,
}

impl Event {
    fn label(self) -> &'static str {
        match self {
            Event::InitLogfile => "INIT LOGFILE",
            Event::ReadRouttab => "READ ROUTTAB",
            Event::ConnectFrom => "CONNECT FROM",
            Event::ConnectTo => "CONNECT TO",
            Event::Disconnect => "DISCONNECT",
            Event::PermDenied => "PERM DENIED",
            Event::InvalData => "INVAL DATA",
            Event::SncCertificate => "SNC CERT",
        }
    }
}

struct Sink {
    file: File,
    written: u64,
    failed: bool,
}

/// The open connection log.
pub struct ConnLog {
    path: PathBuf,
    max_size: Option<u64>,
    sink: Mutex<Sink>,
}

impl ConnLog {
    /// Opens (or creates) the log; `append` keeps existing content (`-E`).
    pub fn open(path: &Path, append: bool, max_size: Option<u64>) -> io::Result<Self> {
        let file = super::logfile::open(path, append)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let log = Self {
            path: path.to_path_buf(),
            max_size,
            sink: Mutex::new(Sink {
                file,
                written,
                failed: false,
            }),
        };
        log.write(Event::InitLogfile, "", &path.display().to_string());
        Ok(log)
    }

    /// Writes one line: `<ctime> <EVENT> <handles> <text>`. Control characters in `text`
    /// (which may come from the network) are escaped.
    pub fn write(&self, event: Event, handles: &str, text: &str) {
        let text = escape(text);
        tracing::info!(target: "connlog", event = event.label(), handles, text = %text, "{}", event.label());
        let line = format!(
            "{} {:<13}{:<7} {}\n",
            ctime_now(),
            event.label(),
            handles,
            text
        );
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(max) = self.max_size {
            if sink.written + line.len() as u64 > max {
                self.rotate(&mut sink);
            }
        }
        match sink.file.write_all(line.as_bytes()) {
            Ok(()) => {
                sink.written += line.len() as u64;
                sink.failed = false;
            }
            Err(err) if !sink.failed => {
                sink.failed = true;
                tracing::error!(path = %self.path.display(), %err, "connection log write failed; routing continues");
            }
            Err(_) => {}
        }
    }

    fn rotate(&self, sink: &mut Sink) {
        // Only regular files rotate: never rename a device (`-G /dev/full`).
        if !sink.file.metadata().is_ok_and(|m| m.is_file()) {
            sink.written = 0;
            return;
        }
        let mut old = self.path.clone().into_os_string();
        old.push(".old");
        let renamed = std::fs::rename(&self.path, &old);
        match renamed.and_then(|()| super::logfile::open(&self.path, false)) {
            Ok(file) => {
                sink.file = file;
                sink.written = 0;
            }
            Err(err) => {
                // Keep writing where we are, and start counting again, so the rename is
                // tried once per `-J` bytes and not on every line (as the trace file does).
                sink.written = 0;
                tracing::error!(path = %self.path.display(), %err, "connection log rotation failed; writing on in the same file")
            }
        }
    }

    /// The line that says the route permission table at `path` was read (at start, on
    /// `saprouter -n` and on SIGHUP alike).
    pub fn read_routtab(&self, path: &Path) {
        self.write(Event::ReadRouttab, "", &path.display().to_string());
    }
}

/// Escapes everything but printable ASCII, so a hostile host name cannot forge log lines.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape("a\r\nFAKE"), "a\\r\\nFAKE");
        assert_eq!(escape("ok host-1.x"), "ok host-1.x");
    }

    #[test]
    fn lines_and_rotation() {
        let dir = std::env::temp_dir().join(format!("connlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let log = ConnLog::open(&path, false, Some(300)).unwrap();
        log.write(Event::ConnectFrom, "C1/-", "host 127.0.0.1/5000");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("INIT LOGFILE"), "{text}");
        assert!(
            text.contains("CONNECT FROM C1/-    host 127.0.0.1/5000"),
            "{text}"
        );
        for _ in 0..10 {
            log.write(Event::Disconnect, "C1/2", "host 127.0.0.1/5000");
        }
        assert!(dir.join("log.old").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn failed_rotation_is_not_retried_on_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // `<log>.old` is a directory that is not empty: the rename fails, even for root.
        std::fs::create_dir_all(dir.path().join("log.old/keep")).unwrap();
        let log = ConnLog::open(&path, false, Some(200)).unwrap();
        for _ in 0..20 {
            log.write(Event::Disconnect, "C1/2", "host 127.0.0.1/5000");
        }
        // Every line is kept in the one file, and the count started again after the failure.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("DISCONNECT").count(), 20, "{text}");
        let written = log.sink.lock().unwrap().written;
        assert!(
            written <= 200,
            "counting restarts after a failed rotation: {written}"
        );
    }
}
