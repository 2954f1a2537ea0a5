//! Rate limits for log lines that a peer can cause (refusals, malformed messages, timeouts): a
//! scan or a flood must not fill the disk or drown the trace (hostile input H56,
//! docs/hardening.md).
//!
//! A [`LogGate`] lets a fixed number of lines through per window; the lines it holds back
//! are counted and the count rides on the next line let through (`suppressed = N`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines per window, and the window.
pub const DEFAULT_LINES: u32 = 20;
/// See [`DEFAULT_LINES`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

struct Window {
    start: Instant,
    emitted: u32,
    suppressed: u64,
}

/// A fixed-window limiter for one kind of log line.
pub struct LogGate {
    lines: u32,
    window: Duration,
    state: Mutex<Window>,
}

impl LogGate {
    /// Lets `lines` lines through per `window`.
    pub fn new(lines: u32, window: Duration) -> Self {
        Self {
            lines,
            window,
            state: Mutex::new(Window {
                start: Instant::now(),
                emitted: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)`: log this line, and say that `n` lines were held back since the last one
    /// that was let through. `None`: drop it (it is counted).
    pub fn allow(&self) -> Option<u64> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(w.start) >= self.window {
            w.start = now;
            w.emitted = 0;
        }
        if w.emitted < self.lines {
            w.emitted += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed = w.suppressed.saturating_add(1);
            None
        }
    }
}

impl Default for LogGate {
    fn default() -> Self {
        Self::new(DEFAULT_LINES, DEFAULT_WINDOW)
    }
}

/// Logs through a [`LogGate`]: `gated!(gate, warn, %peer, "text")` adds `suppressed = N`.
#[macro_export]
#[doc(hidden)]
macro_rules! gated {
    ($gate:expr, $level:ident, $($rest:tt)+) => {
        if let Some(suppressed) = $gate.allow() {
            tracing::$level!(suppressed, $($rest)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_few_through_and_counts_the_rest() {
        let gate = LogGate::new(3, Duration::from_secs(3600));
        assert_eq!(gate.allow(), Some(0));
        assert_eq!(gate.allow(), Some(0));
        assert_eq!(gate.allow(), Some(0));
        for _ in 0..100 {
            assert_eq!(gate.allow(), None);
        }
        let gate = LogGate::new(1, Duration::from_millis(1));
        assert_eq!(gate.allow(), Some(0));
        assert_eq!(gate.allow(), None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(gate.allow(), Some(1), "the held-back line is reported");
    }
}
