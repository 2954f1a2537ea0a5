//! linkmux: the link multiplexer of link protocol version 2, this project's own, made so
//! that a frame body can move with `splice(2)` (socket → pipe → link socket, and link
//! socket → pipe → target socket) instead of being copied through user space, while every
//! routed session keeps its own flow control.
//!
//! # Frame layout
//!
//! A link carries frames back to back. Each frame is a 9-byte header, big-endian:
//!
//! ```text
//! offset  size  field
//! 0       4     stream id (u32, never 0)
//! 4       1     kind: 0 DATA, 1 WINDOW, 2 OPEN, 3 FIN, 4 RESET
//! 5       4     len (u32): DATA body length 1..=65536; WINDOW credit increment
//!               1..=262144; OPEN and FIN 0; RESET reason (0 aborted, 1 refused)
//! 9       len   body (DATA only)
//! ```
//!
//! - Stream ids: the DMZ router opens odd ids, the LAN router even ids, each side's ids
//!   strictly increasing. The first frame of a stream from its opener is `OPEN`.
//! - Flow control: each direction of a stream starts with a credit of 262144 bytes (the
//!   window, fixed by the version). `DATA` spends credit; the receiver returns it with
//!   `WINDOW` once its consumer has taken the bytes, batched: only when half a window or
//!   more is due. A sender never holds more than one window of credit.
//! - `FIN` follows the last `DATA` of its direction; `RESET` abandons both directions.
//!
//! Frames that break these rules end the link. The checks on a header are all made
//! before any body byte is read ([`frame`]).

pub mod driver;
pub mod flow;
pub mod frame;
pub mod fuzzing;
pub mod machine;
pub mod stream;
pub mod zero_copy;

pub use driver::{Link, Opener};
pub use machine::Role;
pub use stream::LinkStream;
