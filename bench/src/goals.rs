//! The goals a run checks, written as the report's lists: each line says the figures, the
//! goal, met or not, and (for the earlier single-hop goals) the bound a figure runs into.
//!
//! - [`chain`] and [`consumer_hop`]: the reverse-invoke data path against rathole, and the
//!   single hop with a consumer that reads into user space against haproxy;
//! - [`single_hop`]: the earlier single-hop goals (against the direct connection, with the
//!   fast-draining sink).

use std::fmt::Write;

use super::hop::{self, BulkRow};
use super::table::Table;
use super::{own_core, sessions};

const OURS: &str = "saprouter-rs";
/// The chain whose LAN router asks for link protocol version 2 (`link_protocol = linkmux`).
pub const LINKMUX: &str = "saprouter-rs, linkmux link";
const RATHOLE: &str = "rathole";
/// The chain whose link runs over TLS (both routers with -K).
pub const TLS: &str = "saprouter-rs, TLS link";
/// The floor of a chain of two relays: the same two routers on a plain multi-hop route, a
/// TCP connection per session, bytes spliced from socket to socket, no link.
pub const TWO_HOPS: &str = "two plain hops (floor)";

/// Chain throughput against rathole's.
const CHAIN_VS_RATHOLE: f64 = 1.5;
/// Both routers' CPU per GB against rathole's two processes'.
const CHAIN_CPU_VS_RATHOLE: f64 = 0.5;
/// The TLS link chain against the plain chain.
const TLS_VS_PLAIN: f64 = 0.8;
/// How much more the interactive p50 may rise beside a bulk download than rathole's (ns).
const RISE_MARGIN_NS: f64 = 50_000.0;
/// The router's CPU per GB against haproxy's, with a user-space consumer.
const HOP_CPU_VS_HAPROXY: f64 = 0.5;

/// The rows the chain goals compare.
const CHAIN_ROWS: [BulkRow; 3] = [hop::RAW_UPLOAD, hop::RAW_DOWNLOAD, hop::NI_DOWNLOAD];
/// The rows with a user-space consumer.
const CONSUMER_ROWS: [BulkRow; 2] = [hop::CONSUMER_UPLOAD, hop::CONSUMER_DOWNLOAD];

fn cpu_row(label: &str) -> String {
    format!("… CPU time of the middle process per GB ({label})")
}

/// The reverse-invoke chain goals: throughput and CPU against rathole, the interactive
/// round trip beside a bulk download against rathole's, the TLS link against the plain one.
/// Each chain measured (the default link, yamux; the linkmux link) is checked, its lines
/// prefixed with its column's name; the TLS link is compared with the default chain.
pub fn chain(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    let rathole_measured = CHAIN_ROWS
        .iter()
        .any(|row| t.value(row.0, RATHOLE).is_some());
    if !rathole_measured {
        out.push(
            "reverse-invoke chain against rathole: **not checked** (rathole not measured in \
             this run)"
                .to_string(),
        );
    }
    for ours in [OURS, LINKMUX] {
        let measured = CHAIN_ROWS.iter().any(|row| t.value(row.0, ours).is_some());
        if measured {
            let lines = chain_against_rathole(t, ours);
            out.extend(lines.into_iter().map(|line| format!("{ours}: {line}")));
        }
    }
    out.extend(floor_lines(t));
    for (label, ..) in CHAIN_ROWS {
        if let (Some(tls), Some(plain)) = (t.value(label, TLS), t.value(label, OURS)) {
            out.push(format!(
                "reverse-invoke chain with a TLS link, {label}: {:.2}× the plain chain \
                 (goal ≥ {TLS_VS_PLAIN:.2}×): {}",
                tls / plain,
                verdict(tls >= TLS_VS_PLAIN * plain)
            ));
        }
    }
    out
}

/// What the floor reaches against rathole (no goal of its own): a chain of two relays that
/// leave all copying to the kernel and share no link. Where even the floor misses a chain
/// goal, no link design can meet it on the machine of the run.
fn floor_lines(t: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for (label, ..) in CHAIN_ROWS {
        let rate = (t.value(label, TWO_HOPS), t.value(label, RATHOLE));
        let row = cpu_row(label);
        let cpu = (t.value(&row, TWO_HOPS), t.value(&row, RATHOLE));
        if let ((Some(f), Some(r)), (Some(fc), Some(rc))) = (rate, cpu) {
            out.push(format!(
                "for reference, {TWO_HOPS}, {label}: throughput {:.2}× rathole's \
                 (chain goal ≥ {CHAIN_VS_RATHOLE:.2}×), CPU {:.2}× rathole's \
                 (chain goal ≤ {CHAIN_CPU_VS_RATHOLE:.2}×)",
                f / r,
                fc / rc
            ));
        }
    }
    out
}

/// Throughput, CPU and the interactive round trip of the chain in column `column` against
/// rathole's.
fn chain_against_rathole(t: &Table, column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (label, ..) in CHAIN_ROWS {
        if let (Some(ours), Some(r)) = (t.value(label, column), t.value(label, RATHOLE)) {
            out.push(format!(
                "reverse-invoke chain, {label}: {:.2} GB/s, {:.2}× rathole's {:.2} GB/s \
                 (goal ≥ {CHAIN_VS_RATHOLE:.2}×): {}",
                ours / 1e9,
                ours / r,
                r / 1e9,
                verdict(ours >= CHAIN_VS_RATHOLE * r)
            ));
        }
    }
    for (label, ..) in CHAIN_ROWS {
        let row = cpu_row(label);
        if let (Some(ours), Some(r)) = (t.value(&row, column), t.value(&row, RATHOLE)) {
            out.push(format!(
                "CPU of both routers per GB, {label}: {ours:.2} CPU-s, rathole's two processes \
                 {r:.2} CPU-s: {:.2}× (goal ≤ {CHAIN_CPU_VS_RATHOLE:.2}×): {}",
                ours / r,
                verdict(ours <= CHAIN_CPU_VS_RATHOLE * r)
            ));
        }
    }
    let rise = "… rise of the interactive p50";
    if let (Some(ours), Some(r)) = (t.value(rise, column), t.value(rise, RATHOLE)) {
        out.push(format!(
            "interactive 64-byte round trip beside a bulk download on the same link, p50 rise: \
             {:+.1} µs, rathole's {:+.1} µs (goal ≤ rathole's + {:.0} µs): {}",
            ours / 1e3,
            r / 1e3,
            RISE_MARGIN_NS / 1e3,
            verdict(ours <= r + RISE_MARGIN_NS)
        ));
    }
    let p99 = "NI round trip, 64 B, p99, beside a bulk download";
    if let (Some(ours), Some(r)) = (t.value(p99, column), t.value(p99, RATHOLE)) {
        out.push(format!(
            "interactive 64-byte round trip beside a bulk download on the same link, p99: \
             {:.1} µs, rathole's {:.1} µs (goal ≤ rathole's): {}",
            ours / 1e3,
            r / 1e3,
            verdict(ours <= r)
        ));
    }
    out
}

/// The single hop with a consumer that reads into user space: the router's CPU per GB
/// against haproxy's, and its throughput, in `t` (shared cores) and `own` (the relay on a
/// core of its own) when measured.
pub fn consumer_hop(t: &Table, own: Option<&Table>) -> Vec<String> {
    let mut out = Vec::new();
    let placements = [
        ("shared cores", Some(t)),
        ("the relay on a core of its own", own),
    ];
    for (label, ..) in CONSUMER_ROWS {
        for (placement, table) in placements {
            let Some(t) = table else { continue };
            let row = cpu_row(label);
            let figures = (
                t.value(label, OURS),
                t.value(label, "haproxy"),
                t.value(&row, OURS),
                t.value(&row, "haproxy"),
            );
            if let (Some(rate), Some(h_rate), Some(cpu), Some(h_cpu)) = figures {
                out.push(format!(
                    "single hop, {label}, {placement}: router {cpu:.2} CPU-s per GB, haproxy \
                     {h_cpu:.2}: {:.2}× (goal ≤ {HOP_CPU_VS_HAPROXY:.2}×); {:.2} GB/s, {:.2}× \
                     haproxy's (goal ≥ 1.00×): {}",
                    cpu / h_cpu,
                    rate / 1e9,
                    rate / h_rate,
                    verdict(cpu <= HOP_CPU_VS_HAPROXY * h_cpu && rate >= h_rate)
                ));
            }
        }
    }
    if out.is_empty() {
        out.push(
            "single hop with a user-space consumer against haproxy: **not checked** (haproxy \
             or the rows not measured in this run)"
                .to_string(),
        );
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

/// The earlier single-hop goals (against the direct connection, with the fast-draining
/// sink) that this run can check: `t` with the shared cores,
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
        let mut t = Table::new(&["direct", OURS, TLS, RATHOLE]);
        let values = |v: [f64; 4]| v.into_iter().map(Cell::Value).collect();
        t.push(
            hop::RAW_UPLOAD.0,
            Kind::Throughput,
            values([5e9, 1.5e9, 1.3e9, 1e9]),
        );
        t.push(
            cpu_row(hop::RAW_UPLOAD.0),
            Kind::CpuPerGb,
            vec![
                Cell::Note("—".into()),
                Cell::Value(0.9),
                Cell::Value(1.5),
                Cell::Value(2.0),
            ],
        );
        t.push(
            hop::RAW_DOWNLOAD.0,
            Kind::Throughput,
            values([5e9, 1.4e9, 0.4e9, 1e9]),
        );
        t.push(
            "… rise of the interactive p50 while the bulk download runs",
            Kind::Rise,
            values([0.0, 60e3, 900e3, 20e3]),
        );
        t.push(
            "NI round trip, 64 B, p99, beside a bulk download on the same link",
            Kind::Latency,
            values([50e3, 4e6, 5e6, 5e6]),
        );
        let lines = chain(&t);
        let find = |needle: &str| {
            lines
                .iter()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} missing: {lines:?}"))
                .clone()
        };
        assert!(
            find("chain, raw upload").ends_with("1.50× rathole's 1.00 GB/s (goal ≥ 1.50×): met")
        );
        assert!(find("chain, raw download").ends_with("**not met**"));
        assert!(
            find("CPU of both routers per GB, raw upload").contains("0.45× (goal ≤ 0.50×): met")
        );
        assert!(find("p50 rise").contains("+60.0 µs, rathole's +20.0 µs"));
        assert!(find("p50 rise").ends_with(": met"));
        assert!(find(", p99:").ends_with("rathole's 5000.0 µs (goal ≤ rathole's): met"));
        assert!(find("TLS link, raw upload").contains("0.87× the plain chain (goal ≥ 0.80×): met"));
        assert!(find("TLS link, raw download").ends_with("**not met**"));
    }

    #[test]
    fn the_floor_is_told_against_rathole_with_the_chain_goals_beside_it() {
        let mut t = Table::new(&["direct", TWO_HOPS, RATHOLE]);
        t.push(
            hop::RAW_UPLOAD.0,
            Kind::Throughput,
            vec![Cell::Value(5e9), Cell::Value(1.3e9), Cell::Value(1e9)],
        );
        t.push(
            cpu_row(hop::RAW_UPLOAD.0),
            Kind::CpuPerGb,
            vec![Cell::Note("—".into()), Cell::Value(0.6), Cell::Value(1.2)],
        );
        // A row without the floor's CPU gives no line.
        t.push(
            hop::RAW_DOWNLOAD.0,
            Kind::Throughput,
            vec![Cell::Value(5e9), Cell::Value(1.3e9), Cell::Value(1e9)],
        );
        let lines: Vec<String> = chain(&t)
            .into_iter()
            .filter(|l| l.starts_with("for reference"))
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].ends_with(
                "raw upload, 1 stream: throughput 1.30× rathole's (chain goal ≥ 1.50×), \
                 CPU 0.50× rathole's (chain goal ≤ 0.50×)"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn chain_goals_say_when_rathole_is_missing() {
        let mut t = Table::new(&["direct", OURS, RATHOLE]);
        t.push(
            hop::RAW_UPLOAD.0,
            Kind::Throughput,
            vec![
                Cell::Value(5e9),
                Cell::Value(1e9),
                Cell::Note("not installed".into()),
            ],
        );
        let lines = chain(&t);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("**not checked**"), "{lines:?}");
    }

    #[test]
    fn consumer_hop_needs_half_of_haproxys_cpu_and_its_rate() {
        let mut t = Table::new(&["direct", OURS, "haproxy"]);
        for (label, rate, cpu) in [
            (hop::CONSUMER_UPLOAD.0, [3e9, 2e9, 1.9e9], 0.4),
            (hop::CONSUMER_DOWNLOAD.0, [3e9, 2e9, 2.1e9], 0.3),
        ] {
            t.push(
                label,
                Kind::Throughput,
                rate.into_iter().map(Cell::Value).collect(),
            );
            t.push(
                cpu_row(label),
                Kind::CpuPerGb,
                vec![Cell::Note("—".into()), Cell::Value(cpu), Cell::Value(1.0)],
            );
        }
        let lines = consumer_hop(&t, None);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("0.40× (goal ≤ 0.50×)"), "{lines:?}");
        assert!(
            lines[0].ends_with("1.05× haproxy's (goal ≥ 1.00×): met"),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with("**not met**"),
            "slower than haproxy: {lines:?}"
        );
    }
}
