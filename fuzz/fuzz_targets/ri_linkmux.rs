//! The linkmux multiplexer (link protocol version 2, `src/ri/linkmux/`): the input drives
//! one link's `Core` as local actions (open, queue, close_write, taken, release, drain
//! `next_frame`) and as the peer's frame headers, fed to `receive` once they decode; a
//! header the core refuses ends the link. Layout and invariants (no panic, headers
//! round-trip, at most one window buffered or held per stream, what `next_frame` yields
//! decodes again and keeps to the credit) are in `saprouter::ri::linkmux::fuzzing`, which
//! `tests/fuzz_seeds.rs` runs on the seeds too. At most `MAX_OPS` ops per input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    saprouter::ri::linkmux::fuzzing::run(data);
});
