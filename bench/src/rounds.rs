//! What the focused examples (`bench/examples/`) share: each is its own sink when started
//! with `--sink` (as `saprouter-bench` is), takes the router and its options from the same
//! places, repeats its rows `ROUNDS` times and ends with the means of every row.

use std::path::PathBuf;

use crate::procs::{start_sink, Proc, SinkPorts, TempDir};

/// Runs as the sink and returns its result when the program was started as one
/// (`<program> --sink <aliases>`, what [`crate::procs::start_sink`] starts).
pub fn sink_if_asked(args: &[String]) -> Option<std::io::Result<()>> {
    if args.get(1).map(String::as_str) != Some("--sink") {
        return None;
    }
    let aliases = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    Some(crate::sink::main(aliases))
}

/// What a focused example measures with: the router (first argument, or the usage and
/// exit 2), the bytes per bulk row (second argument in MiB, or `default_mib`), a second
/// router binary or wrapper (third, optional), and a running sink in a fresh directory.
pub struct Setup {
    pub router: PathBuf,
    pub total: u64,
    pub other: Option<PathBuf>,
    pub sink: Proc,
    pub ports: SinkPorts,
    pub dir: TempDir,
}

impl Setup {
    /// Reads the arguments and starts the sink.
    pub fn start(args: &[String], usage: &str, default_mib: u64) -> std::io::Result<Setup> {
        let Some(router) = args.get(1).map(PathBuf::from) else {
            eprintln!("usage: {usage}");
            std::process::exit(2);
        };
        let mib: u64 = args
            .get(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default_mib);
        let (sink, ports) = start_sink(1)?;
        Ok(Setup {
            router,
            total: mib << 20,
            other: args.get(3).map(PathBuf::from),
            sink,
            ports,
            dir: TempDir::new()?,
        })
    }
}

/// How often every row is measured: `ROUNDS` from the environment, 3 without it.
pub fn count() -> u32 {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

/// Whether the column `name` is measured: all of them, or only the one `ONLY` names (for a
/// profiler attached to its processes).
pub fn wanted(name: &str) -> bool {
    std::env::var("ONLY").map_or(true, |only| only == name)
}

/// Sums of each (column, row)'s figures over the rounds, in the order first seen.
#[derive(Default)]
pub struct Means {
    rows: Vec<(String, String, Vec<f64>, u32)>,
}

impl Means {
    /// Adds one round's figures of `column`'s `row`.
    pub fn add(&mut self, column: &str, row: &str, figures: &[f64]) {
        match self.rows.iter_mut().find(|m| m.0 == column && m.1 == row) {
            Some(m) => {
                for (sum, f) in m.2.iter_mut().zip(figures) {
                    *sum += f;
                }
                m.3 += 1;
            }
            None => self
                .rows
                .push((column.to_string(), row.to_string(), figures.to_vec(), 1)),
        }
    }

    /// Every (column, row) with the mean of each figure.
    pub fn means(&self) -> impl Iterator<Item = (&str, &str, Vec<f64>)> {
        self.rows.iter().map(|(column, row, sums, n)| {
            let n = f64::from(*n);
            (
                column.as_str(),
                row.as_str(),
                sums.iter().map(|s| s / n).collect(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_are_per_column_and_row_in_first_seen_order() {
        let mut m = Means::default();
        m.add("ours", "upload", &[1.0, 0.5]);
        m.add("peer", "upload", &[2.0, 1.0]);
        m.add("ours", "upload", &[3.0, 1.5]);
        let got: Vec<_> = m.means().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("ours", "upload", vec![2.0, 1.0]));
        assert_eq!(got[1], ("peer", "upload", vec![2.0, 1.0]));
    }

    #[test]
    fn only_a_sink_request_runs_the_sink() {
        let args = vec!["example".to_string(), "/path/router".to_string()];
        assert!(sink_if_asked(&args).is_none());
    }
}
