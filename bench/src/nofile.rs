//! The benchmark's open-file limit: raised to the hard limit at start, because the
//! idle-session measurement holds thousands of sockets in this process and in the router.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The open-file limit now: (soft, hard); `None` when it cannot be read or is unlimited.
pub fn current() -> Option<(u64, u64)> {
    let limit = getrlimit(Resource::Nofile);
    Some((limit.current?, limit.maximum?))
}

/// Raises the soft limit to the hard limit (a failure leaves the limit as it was: the run
/// then measures fewer idle sessions and says so).
pub fn raise() {
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}
