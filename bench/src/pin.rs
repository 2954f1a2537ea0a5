//! Core placement for the measurements in which the relay has a core of its own.
//!
//! On a machine shared by client, relay and sink, a relay's CPU is taken from the two ends,
//! so no relay can reach the direct rate. To show what the relay costs where it runs on its
//! own hardware, one phase of the run places the client and the sink on one CPU and every
//! process between them on another: direct then gets one CPU for both ends, a relayed path
//! the same CPU for the ends plus one for the relay.
//!
//! The placement is a phase of the whole run (set, measured, cleared), so it is kept here
//! rather than passed through every function that starts a process.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// No placement: processes inherit the run's CPUs.
const UNSET: usize = usize::MAX;

/// The CPU the middle processes are started on while a placement is active.
static MIDDLE: AtomicUsize = AtomicUsize::new(UNSET);

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes into the zeroed set we own, of the size we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set we own at an index below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Restricts the calling thread (and the threads and processes it starts later) to `cpus`.
fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: the set is zeroed and owned here; CPU_SET is given indices below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: sched_setaffinity reads the set of the size we pass; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The placement of one phase: the ends on `ends`, middle processes on `middle`.
pub struct Placement {
    /// The CPU of the client and the sink.
    pub ends: usize,
    /// The CPU of the processes between them.
    pub middle: usize,
    previous: Vec<usize>,
}

impl Placement {
    /// Places the calling thread on `ends` and marks processes started from now on as middle
    /// processes for `middle`; undone on drop. `None` with fewer than two CPUs.
    pub fn start() -> std::io::Result<Option<Self>> {
        let previous = allowed_cpus();
        let [ends, middle, ..] = previous[..] else {
            return Ok(None);
        };
        set_affinity(&[ends])?;
        MIDDLE.store(middle, Ordering::SeqCst);
        Ok(Some(Self {
            ends,
            middle,
            previous,
        }))
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        MIDDLE.store(UNSET, Ordering::SeqCst);
        let _ = set_affinity(&self.previous);
    }
}

/// True while a placement is active.
fn active() -> bool {
    MIDDLE.load(Ordering::SeqCst) != UNSET
}

/// Threads a middle process should run: one per CPU it gets.
pub fn middle_threads() -> usize {
    if active() {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Starts `cmd` on the middle CPU when a placement is active (before `exec`, so that every
/// thread the program creates inherits it and sizes its thread pool by it).
pub fn as_middle(cmd: &mut Command) -> &mut Command {
    let cpu = MIDDLE.load(Ordering::SeqCst);
    if cpu != UNSET {
        // SAFETY: the closure runs between fork and exec and only makes one system call
        // (sched_setaffinity), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || set_affinity(&[cpu]));
        }
    }
    cmd
}
