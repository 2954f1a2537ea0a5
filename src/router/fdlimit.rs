//! Process limits the router depends on: the open-file limit, raised at start so the number
//! of concurrent sessions is bounded by `-C` and the system, not by a small default soft
//! limit (each routed session holds two descriptors).

use std::sync::OnceLock;

/// The open-file limit after start-up: (soft, hard).
static NOFILE: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, once per process. Returns (soft, hard)
/// as in force afterwards.
pub fn raise_nofile() -> (u64, u64) {
    *NOFILE.get_or_init(|| {
        let Some((soft, hard)) = current() else {
            return (0, 0);
        };
        // An unlimited hard limit still stops at the kernel's per-process ceiling.
        let target = hard.min(nr_open());
        if soft < target {
            let wanted = libc::rlimit {
                rlim_cur: target,
                rlim_max: hard,
            };
            // SAFETY: setrlimit reads a fully initialised rlimit struct we own.
            let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) };
            if rc != 0 {
                tracing::warn!(soft, hard, err = %std::io::Error::last_os_error(), "open-file limit not raised");
            }
        }
        current().unwrap_or((soft, hard))
    })
}

/// The kernel's ceiling for one process (`fs.nr_open`), 1 Mi when unreadable.
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The open-file limit now: (soft, hard); `None` when it cannot be read.
pub fn current() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

/// The `-l` line that reports the limit.
pub fn info_line() -> String {
    match current() {
        Some((soft, hard)) => format!("Open files limit    : {soft} (hard {hard})"),
        None => "Open files limit    : unknown".to_string(),
    }
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
