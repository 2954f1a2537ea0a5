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

use std::process::{Child, Command};

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use std::sync::atomic::{AtomicUsize, Ordering};

/// No placement: processes inherit the run's CPUs.
const UNSET: usize = usize::MAX;

/// The CPU the middle processes are started on while a placement is active.
static MIDDLE: AtomicUsize = AtomicUsize::new(UNSET);

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Restricts the calling thread (and the threads and processes it starts later) to `cpus`.
fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus.iter().filter(|&&c| c < CpuSet::MAX_CPU) {
        set.set(cpu);
    }
    sched_setaffinity(None, &set)?;
    Ok(())
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

/// Starts `cmd`, on the middle CPU when a placement is active. A child inherits the CPUs of
/// the thread that starts it (and every thread the program creates inherits them in turn,
/// so it sizes its thread pool by them): the calling thread moves to the middle CPU for the
/// spawn and back afterwards.
pub fn spawn_middle(cmd: &mut Command) -> std::io::Result<Child> {
    let cpu = MIDDLE.load(Ordering::SeqCst);
    if cpu == UNSET {
        return cmd.spawn();
    }
    let own = sched_getaffinity(None)?;
    set_affinity(&[cpu])?;
    let child = cmd.spawn();
    sched_setaffinity(None, &own)?;
    child
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// The CPUs a child process may run on, as the kernel lists them.
    fn child_cpus(cmd: &mut Command) -> String {
        let out = spawn_middle(cmd.stdout(Stdio::piped()))
            .and_then(|c| c.wait_with_output())
            .expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.trim().to_string()
    }

    #[test]
    fn middle_processes_start_on_the_middle_cpu() {
        let before = allowed_cpus();
        assert!(!before.is_empty());
        let list = || {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "grep Cpus_allowed_list /proc/self/status | cut -f2"]);
            cmd
        };
        let Some(placement) = Placement::start().expect("placement") else {
            // One CPU: nothing to place; children inherit it.
            assert_eq!(child_cpus(&mut list()), before[0].to_string());
            return;
        };
        assert_eq!(allowed_cpus(), vec![placement.ends]);
        assert_eq!(child_cpus(&mut list()), placement.middle.to_string());
        assert_eq!(
            allowed_cpus(),
            vec![placement.ends],
            "the caller stays on the ends"
        );
        assert_eq!(middle_threads(), 1);
        drop(placement);
        assert_eq!(allowed_cpus(), before);
    }
}
