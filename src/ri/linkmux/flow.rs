//! Per-stream flow control (sans-IO): the sender's credit and the receiver's window of one
//! direction of one stream.
//!
//! The receiver's window is fixed ([`MAX_WINDOW`]) and always split three ways: credit the
//! sender still holds, bytes received and not yet taken by the consumer, and bytes taken
//! whose credit is not yet returned. So a stream never holds more than one window of
//! bytes at the receiver, whatever its consumer does, and a consumer that stops reading
//! stops only its own stream's sender.

use super::frame::MAX_WINDOW;

/// Credit returned in one `WINDOW` frame at least: half a window. Fewer, larger updates
/// (one per 128 KiB moved) instead of one per read; never a deadlock, because a sender out
/// of credit means a whole window is received, and once the consumer took it all, the
/// full window is due.
pub const UPDATE_AT: u32 = MAX_WINDOW / 2;

/// A flow-control rule broken by the peer: the link ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// More body bytes than the credit granted.
    #[error("{got} bytes received with {credit} bytes of credit")]
    Overrun {
        /// Bytes in the frame.
        got: u32,
        /// Credit the peer held.
        credit: u32,
    },
    /// A `WINDOW` that lifts the sender's credit above one window.
    #[error("window update to {0} bytes of credit (at most {MAX_WINDOW})")]
    TooMuchCredit(u64),
}

/// The sending side of one direction: how much it may still send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCredit {
    credit: u32,
}

impl Default for SendCredit {
    fn default() -> Self {
        Self { credit: MAX_WINDOW }
    }
}

impl SendCredit {
    /// Bytes that may be sent now.
    pub fn available(&self) -> u32 {
        self.credit
    }

    /// Records `n` bytes sent; the caller sends at most [`available`](Self::available).
    pub fn spend(&mut self, n: u32) {
        debug_assert!(n <= self.credit, "spent beyond credit");
        self.credit -= n.min(self.credit);
    }

    /// Adds the peer's `WINDOW` increment.
    pub fn grant(&mut self, increment: u32) -> Result<(), FlowError> {
        let total = u64::from(self.credit) + u64::from(increment);
        if total > u64::from(MAX_WINDOW) {
            return Err(FlowError::TooMuchCredit(total));
        }
        self.credit = total as u32;
        Ok(())
    }
}

/// The receiving side of one direction. `granted + buffered + taken == MAX_WINDOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    /// Credit the sender holds.
    granted: u32,
    /// Received, not yet taken by the consumer.
    buffered: u32,
    /// Taken by the consumer, credit not yet returned.
    taken: u32,
}

impl Default for RecvWindow {
    fn default() -> Self {
        Self {
            granted: MAX_WINDOW,
            buffered: 0,
            taken: 0,
        }
    }
}

impl RecvWindow {
    /// Checks and records a `DATA` frame of `n` bytes (before its body is read).
    pub fn receive(&mut self, n: u32) -> Result<(), FlowError> {
        if n > self.granted {
            return Err(FlowError::Overrun {
                got: n,
                credit: self.granted,
            });
        }
        self.granted -= n;
        self.buffered += n;
        Ok(())
    }

    /// Records `n` bytes taken by the consumer (at most what is buffered).
    pub fn take(&mut self, n: u32) {
        let n = n.min(self.buffered);
        self.buffered -= n;
        self.taken += n;
    }

    /// The `WINDOW` increment to send now, if one is due (batched: [`UPDATE_AT`]).
    pub fn update(&mut self) -> Option<u32> {
        if self.taken < UPDATE_AT {
            return None;
        }
        let increment = self.taken;
        self.granted += increment;
        self.taken = 0;
        Some(increment)
    }

    /// Bytes received and not yet taken.
    pub fn buffered(&self) -> u32 {
        self.buffered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_is_spent_and_granted_up_to_one_window() {
        let mut c = SendCredit::default();
        assert_eq!(c.available(), MAX_WINDOW);
        assert_eq!(
            c.grant(1),
            Err(FlowError::TooMuchCredit(u64::from(MAX_WINDOW) + 1))
        );
        c.spend(1000);
        assert_eq!(c.available(), MAX_WINDOW - 1000);
        assert_eq!(c.grant(1000), Ok(()));
        assert_eq!(c.available(), MAX_WINDOW);
        c.spend(MAX_WINDOW);
        assert_eq!(c.available(), 0);
        assert_eq!(c.grant(MAX_WINDOW), Ok(()));
    }

    #[test]
    fn updates_are_batched_and_overruns_refused() {
        let mut w = RecvWindow::default();
        assert_eq!(w.receive(MAX_WINDOW - 10), Ok(()));
        assert_eq!(
            w.receive(11),
            Err(FlowError::Overrun {
                got: 11,
                credit: 10
            })
        );
        w.take(UPDATE_AT - 1);
        assert_eq!(w.update(), None, "below half a window: no update yet");
        w.take(1);
        assert_eq!(w.update(), Some(UPDATE_AT));
        assert_eq!(w.update(), None);
        assert_eq!(w.buffered(), MAX_WINDOW - 10 - UPDATE_AT);
        // Taking more than is buffered counts only what is there.
        w.take(MAX_WINDOW);
        assert_eq!(w.buffered(), 0);
        assert_eq!(w.update(), None, "10 bytes short of half a window");
        // The sender's last 10 bytes of credit: once they are taken, the whole rest of
        // the window is due (a sender out of credit always gets an update).
        assert_eq!(w.receive(10), Ok(()));
        w.take(10);
        assert_eq!(w.update(), Some(MAX_WINDOW - UPDATE_AT));
        assert_eq!(w.receive(MAX_WINDOW), Ok(()), "the whole window is back");
    }
}
