//! The goals of issue 7, checked against the tables of a run and written as the report's
//! list: each says the figure, the goal, met or not, and the bound a figure runs into.

use std::fmt::Write;

use super::table::Table;
use super::{own_core, sessions};

/// The reverse-invoke goals of issue 7 that this run can check.
pub fn chain(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for row in ["raw upload", "raw download", "NI download"] {
        if let (Some(ours), Some(r)) = (t.value(row, "saprouter-rs"), t.value(row, "rathole")) {
            out.push(format!(
                "reverse-invoke chain, {row}: {:.2}× rathole (goal ≥ 1.00): {}",
                ours / r,
                verdict(ours >= r)
            ));
        }
    }
    for row in ["raw upload", "raw download", "NI download"] {
        let tls = t.value(row, "saprouter-rs, TLS link");
        if let (Some(tls), Some(plain)) = (tls, t.value(row, "saprouter-rs")) {
            out.push(format!(
                "reverse-invoke chain with a TLS link, {row}: {:.2}× the plain chain (goal ≥ 0.50): {}",
                tls / plain,
                verdict(tls >= 0.5 * plain)
            ));
        }
    }
    if let Some(rise) = t.value("… rise of the interactive p50", "saprouter-rs") {
        out.push(format!(
            "interactive stream beside a bulk stream on one link: p50 rises by {:.2} ms (goal < 2 ms): {}",
            rise / 1e6,
            verdict(rise < 2e6)
        ));
    }
    out
}

/// Why a relay cannot reach the direct rate when client, router and sink share the cores:
/// the CPU a gigabyte needs on each path, and the best ratio that leaves.
fn cpu_bound(t: &Table, row: &str) -> String {
    let ends = format!("… CPU time of client and sink per GB ({row}");
    let middle = format!("… CPU time of the middle process per GB ({row}");
    let (Some(e_direct), Some(e_routed), Some(router)) = (
        t.value(&ends, "direct"),
        t.value(&ends, "saprouter-rs"),
        t.value(&middle, "saprouter-rs"),
    ) else {
        return String::new();
    };
    if e_routed + router <= 0.0 {
        return String::new();
    }
    format!(
        " (a GB took {e_direct:.2} CPU-s direct and {:.2} CPU-s through the router, {router:.2} \
         of them the router's: with every core busy the ratio cannot exceed {:.2})",
        e_routed + router,
        e_direct / (e_routed + router)
    )
}

/// The single-hop goals of issue 7 that this run can check: `t` with the shared cores,
/// `own` (when measured) with the relay on a core of its own.
pub fn single_hop(t: &Table, own: Option<&Table>) -> Vec<String> {
    let mut out = Vec::new();
    let ours = "saprouter-rs";
    for row in ["raw upload", "raw download", "NI upload", "NI download"] {
        if let Some(line) = throughput(t, own, row) {
            out.push(line);
        }
    }
    let p50 = "NI round trip, 64 B, p50";
    if let (Some(r), Some(d), Some(h)) = (
        t.value(p50, ours),
        t.value(p50, "direct"),
        t.value(p50, "haproxy"),
    ) {
        out.push(format!(
            "added p50 latency: {:.1} µs, haproxy adds {:.1} µs: {}",
            (r - d) / 1e3,
            (h - d) / 1e3,
            verdict(r <= h)
        ));
    }
    if let Some(own) = own {
        if let (Some(r), Some(d), Some(h)) = (
            own.value(p50, ours),
            own.value(p50, "direct"),
            own.value(p50, "haproxy"),
        ) {
            out.push(format!(
                "added p50 latency, the relay on a core of its own: {:.1} µs, haproxy adds \
                 {:.1} µs: {}",
                (r - d) / 1e3,
                (h - d) / 1e3,
                verdict(r <= h)
            ));
        }
    }
    if let Some(r) = t.value("set-ups per second", ours) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        match t.value("CPU time of the middle process", ours) {
            Some(ns) if ns > 0.0 => {
                let capacity = cores * 1e9 / ns;
                out.push(format!(
                    "route set-ups (goal ≥ 10 000/s on 2 cores): {r:.0}/s observed with client \
                     and sink on the same {cores} cores; the router spent {:.1} µs of CPU per \
                     set-up, i.e. {capacity:.0}/s if it had the {cores} cores to itself: {}",
                    ns / 1e3,
                    verdict(capacity >= 10_000.0)
                ));
            }
            _ => out.push(format!(
                "route set-ups: {r:.0}/s (goal ≥ 10 000/s): {}",
                verdict(r >= 10_000.0)
            )),
        }
    }
    if t.rows.iter().any(|r| r.label.starts_with("RSS per idle"))
        && !t.rows.iter().any(|r| r.label.contains("50000 sessions"))
    {
        out.push(format!(
            "50 000 concurrent sessions: **not measurable here**: the open-file hard limit \
             allows {} routed sessions per process (two descriptors each); the router raises \
             its soft limit to the hard limit at start and `-l` shows it",
            sessions::max_sessions()
        ));
    }
    for row in &t.rows {
        if row.label.starts_with("RSS per idle") {
            if let Some(v) = t.value(&row.label, ours) {
                out.push(format!(
                    "{}: {v:.1} KiB (goal ≤ 16 KiB): {}",
                    row.label,
                    verdict(v <= 16.0)
                ));
            }
        }
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// One throughput goal: ≥ 0.9 × direct where the relay has a core of its own (or on the
/// shared cores), and never below haproxy in either placement.
fn throughput(t: &Table, own: Option<&Table>, row: &str) -> Option<String> {
    let ours = "saprouter-rs";
    let ratio = |t: &Table| Some(t.value(row, ours)? / t.value(row, "direct")?);
    let vs_haproxy = |t: &Table| Some(t.value(row, ours)? / t.value(row, "haproxy")?);
    let shared = ratio(t)?;
    let own_ratio = own.and_then(ratio);
    let haproxy: Vec<f64> = [Some(t), own]
        .into_iter()
        .flatten()
        .filter_map(vs_haproxy)
        .collect();
    let mut line = format!(
        "{row}: shared cores {shared:.2}× direct{}",
        cpu_bound(t, row)
    );
    if let Some(r) = own_ratio {
        let _ = write!(line, "; the relay on a core of its own {r:.2}× direct");
        if let Some(why) = own.and_then(|o| own_core::bound(o, row)) {
            let _ = write!(line, " ({why})");
        }
    }
    let _ = write!(line, " (goal ≥ 0.90); ");
    if haproxy.is_empty() {
        line.push_str("haproxy not measured");
    } else {
        let list: Vec<String> = haproxy.iter().map(|h| format!("{h:.2}×")).collect();
        let _ = write!(line, "{} haproxy", list.join(" and "));
    }
    let best = own_ratio.map_or(shared, |r| r.max(shared));
    let _ = write!(
        line,
        " (goal ≥ 1.00): {}",
        verdict(best >= 0.9 && haproxy.iter().all(|h| *h >= 1.0))
    );
    if let Some(capacity) = relay_capacity(t, row) {
        let _ = write!(line, "; {capacity}");
    }
    Some(line)
}

/// What the router's own CPU per GB would carry on a core with nothing else on it, against
/// the direct rate of the run: the figure that says whether the relay or the sharing of
/// cores holds a row below the direct rate.
fn relay_capacity(t: &Table, row: &str) -> Option<String> {
    let cpu = t.value(
        &format!("… CPU time of the middle process per GB ({row}"),
        "saprouter-rs",
    )?;
    let direct = t.value(row, "direct")?;
    (cpu > 0.0 && direct > 0.0).then(|| {
        let per_core = 1e9 / cpu;
        format!(
            "the router's own {cpu:.2} CPU-s per GB would carry {:.1} GB/s on a core of its \
             own, {:.2}× this run's direct rate",
            per_core / 1e9,
            per_core / direct
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Cell, Kind};

    fn table(direct: f64, ours: f64, haproxy: f64) -> Table {
        let mut t = Table::new(&["direct", "saprouter-rs", "haproxy"]);
        let cells = |v: [f64; 3]| v.into_iter().map(Cell::Value).collect();
        t.push(
            "raw upload, 1 stream",
            Kind::Throughput,
            cells([direct, ours, haproxy]),
        );
        t.push(
            "… CPU time of the middle process per GB (raw upload, 1 stream)",
            Kind::CpuPerGb,
            vec![Cell::Note("—".into()), Cell::Value(0.2), Cell::Value(0.5)],
        );
        t.push(
            "… CPU time of client and sink per GB (raw upload, 1 stream)",
            Kind::CpuPerGb,
            cells([0.3, 0.4, 0.4]),
        );
        t
    }

    #[test]
    fn throughput_goal_needs_ninety_percent_somewhere_and_haproxy_everywhere() {
        let shared = table(5e9, 3e9, 2e9);
        let line = throughput(&shared, None, "raw upload").unwrap();
        assert!(line.contains("shared cores 0.60× direct"), "{line}");
        assert!(line.contains("cannot exceed 0.50"), "{line}");
        assert!(line.contains("**not met**"), "{line}");
        assert!(
            line.contains("would carry 5.0 GB/s on a core of its own, 1.00×"),
            "{line}"
        );

        let own = table(4e9, 3.8e9, 2e9);
        let line = throughput(&shared, Some(&own), "raw upload").unwrap();
        assert!(line.contains("a core of its own 0.95× direct"), "{line}");
        assert!(line.ends_with(" haproxy (goal ≥ 1.00): met; the router's own 0.20 CPU-s per GB would carry 5.0 GB/s on a core of its own, 1.00× this run's direct rate"), "{line}");

        let beaten = table(4e9, 3.8e9, 3.9e9);
        let line = throughput(&shared, Some(&beaten), "raw upload").unwrap();
        assert!(line.contains("**not met**"), "below haproxy: {line}");
    }

    #[test]
    fn chain_goals_compare_with_rathole_and_the_plain_chain() {
        let mut t = Table::new(&[
            "direct",
            "saprouter-rs",
            "saprouter-rs, TLS link",
            "rathole",
        ]);
        t.push(
            "raw upload, 1 stream",
            Kind::Throughput,
            [5e9, 1e9, 0.4e9, 0.9e9]
                .into_iter()
                .map(Cell::Value)
                .collect(),
        );
        let lines = chain(&t);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].ends_with("1.11× rathole (goal ≥ 1.00): met"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with("0.40× the plain chain (goal ≥ 0.50): **not met**"),
            "{lines:?}"
        );
    }
}
