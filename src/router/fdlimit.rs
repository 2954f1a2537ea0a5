//! Process limits the router depends on: the open-file limit, raised at start so the number
//! of concurrent sessions is bounded by `-C` and the system, not by a small default soft
//! limit (each routed session holds two descriptors).

use std::sync::OnceLock;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// An unlimited soft or hard limit.
const UNLIMITED: u64 = u64::MAX;

/// The open-file limit after start-up: (soft, hard).
static NOFILE: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, once per process. Returns (soft, hard)
/// as in force afterwards.
pub fn raise_nofile() -> (u64, u64) {
    *NOFILE.get_or_init(|| {
        let (soft, hard) = current();
        // An unlimited hard limit still stops at the kernel's per-process ceiling.
        let target = hard.min(nr_open());
        if soft < target {
            let wanted = Rlimit {
                current: Some(target),
                maximum: Some(hard).filter(|&h| h != UNLIMITED),
            };
            if let Err(err) = setrlimit(Resource::Nofile, wanted) {
                tracing::warn!(soft, hard, %err, "open-file limit not raised");
            }
        }
        current()
    })
}

/// The ceiling for one process when the hard limit is higher (or unlimited).
const FALLBACK_CEILING: u64 = 1 << 20;

/// The kernel's ceiling for one process (`fs.nr_open`), 1 Mi when unreadable.
#[cfg(target_os = "linux")]
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(FALLBACK_CEILING)
}

/// Without Linux's `fs.nr_open`: 1 Mi.
#[cfg(not(target_os = "linux"))]
fn nr_open() -> u64 {
    FALLBACK_CEILING
}

/// The open-file limit now: (soft, hard), an unlimited value as `u64::MAX` (what
/// `RLIM_INFINITY` is on Linux).
pub fn current() -> (u64, u64) {
    let limit = getrlimit(Resource::Nofile);
    (
        limit.current.unwrap_or(UNLIMITED),
        limit.maximum.unwrap_or(UNLIMITED),
    )
}

/// The `-l` line that reports the limit.
pub fn info_line() -> String {
    let (soft, hard) = current();
    format!("Open files limit    : {soft} (hard {hard})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_to_hard() {
        let (soft, hard) = raise_nofile();
        assert_eq!(soft, hard.min(nr_open()));
        assert!(info_line().contains(&soft.to_string()));
    }
}
