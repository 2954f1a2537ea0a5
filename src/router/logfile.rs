//! The trace file (`-T`) as a writer that `-J` caps and that a full disk cannot stop: at the
//! cap the file moves to `<file>.old` and a new one starts (as the `-G` log does); a failed
//! write drops the line, is reported once on stderr, and never reaches the caller, so logging
//! cannot fail a session (hostile input H56 and SAP's soft shutdown V10, docs/hardening.md).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A size-capped, failure-tolerant log file.
pub struct CappedFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_size: Option<u64>,
    failing: bool,
}

impl CappedFile {
    /// Opens `path`, appending (`-E`) or truncating; `max_size` is `-J`.
    pub fn open(path: &Path, append: bool, max_size: Option<u64>) -> io::Result<Self> {
        let file = open(path, append)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            written,
            max_size,
            failing: false,
        })
    }

    fn rotate(&mut self) {
        // Only regular files rotate: never rename a device (`-T /dev/full`, `/dev/null`).
        if !self.file.metadata().is_ok_and(|m| m.is_file()) {
            self.max_size = None;
            return;
        }
        let mut old = self.path.clone().into_os_string();
        old.push(".old");
        if std::fs::rename(&self.path, &old).is_ok() {
            if let Ok(file) = open(&self.path, false) {
                self.file = file;
            }
        }
        // Rotation failed (e.g. a device like /dev/full): keep writing where we are, but
        // stop counting so the rename is not retried on every line.
        self.written = 0;
    }
}

/// Opens a log file for appending or anew (truncated), creating it if missing.
pub(super) fn open(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(path)
}

impl Write for CappedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(max) = self.max_size {
            if self.written.saturating_add(buf.len() as u64) > max {
                self.rotate();
            }
        }
        match self.file.write_all(buf) {
            Ok(()) => {
                self.written = self.written.saturating_add(buf.len() as u64);
                self.failing = false;
            }
            Err(err) if !self.failing => {
                self.failing = true;
                eprintln!(
                    "saprouter: trace file {} not writable ({err}); lines are dropped, routing continues",
                    self.path.display()
                );
            }
            Err(_) => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.file.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev_rout");
        let mut f = CappedFile::open(&path, false, Some(100)).unwrap();
        for _ in 0..30 {
            f.write_all(b"0123456789\n").unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(dir.path().join("dev_rout.old").exists());
    }

    #[test]
    fn a_full_device_swallows_lines() {
        let Ok(mut f) = CappedFile::open(Path::new("/dev/full"), true, Some(10)) else {
            return; // no /dev/full here
        };
        for _ in 0..5 {
            assert_eq!(f.write(b"line that does not fit\n").unwrap(), 23);
        }
        f.flush().unwrap();
        assert!(
            Path::new("/dev/full").exists(),
            "a device is never rotated away"
        );
    }
}
