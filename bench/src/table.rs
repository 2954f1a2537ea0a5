//! The results table: one row per measurement, one column per path, each cell an absolute
//! figure with its ratio to the direct connection beside it.

use std::fmt::Write;

/// What a row measures, which decides units and how ratios read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bytes per second (higher is better); ratio = value / direct.
    Throughput,
    /// Nanoseconds (lower is better); shown with the time added to direct.
    Latency,
    /// Per second (higher is better); ratio = value / direct.
    Rate,
    /// KiB per session (lower is better); no direct figure.
    Memory,
    /// CPU nanoseconds per operation (lower is better); no direct figure.
    CpuTime,
    /// CPU seconds per GB relayed (lower is better); no direct figure.
    CpuPerGb,
    /// Nanoseconds added by a condition (lower is better); no ratio.
    Rise,
}

/// One cell.
#[derive(Clone, Debug)]
pub enum Cell {
    /// A measured value in the row's unit.
    Value(f64),
    /// A short explanation instead of a value.
    Note(String),
}

/// One row.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub kind: Kind,
    pub cells: Vec<Cell>,
}

/// A table with its column names; column 0 is the reference (direct) unless
/// `reference` says otherwise.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

impl Table {
    /// A table with these column names.
    pub fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn push(&mut self, label: impl Into<String>, kind: Kind, cells: Vec<Cell>) {
        self.rows.push(Row {
            label: label.into(),
            kind,
            cells,
        });
    }

    /// The value of a row (by label prefix) and column name.
    pub fn value(&self, label: &str, column: &str) -> Option<f64> {
        let col = self.columns.iter().position(|c| c == column)?;
        let row = self.rows.iter().find(|r| r.label.starts_with(label))?;
        match row.cells.get(col)? {
            Cell::Value(v) => Some(*v),
            Cell::Note(_) => None,
        }
    }

    /// Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| measurement | {} |", self.columns.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(self.columns.len()));
        for row in &self.rows {
            let reference = match row.cells.first() {
                Some(Cell::Value(v))
                    if !matches!(
                        row.kind,
                        Kind::Memory | Kind::CpuTime | Kind::CpuPerGb | Kind::Rise
                    ) =>
                {
                    Some(*v)
                }
                _ => None,
            };
            let cells: Vec<String> = row
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| render(row.kind, c, if i == 0 { None } else { reference }))
                .collect();
            let _ = writeln!(out, "| {} | {} |", row.label, cells.join(" | "));
        }
        out
    }
}

fn render(kind: Kind, cell: &Cell, reference: Option<f64>) -> String {
    let v = match cell {
        Cell::Note(text) => return text.clone(),
        Cell::Value(v) => *v,
    };
    let abs = match kind {
        Kind::Throughput => format!("{:.2} GB/s", v / 1e9),
        Kind::Latency => format!("{:.1} µs", v / 1e3),
        Kind::Rate => format!("{v:.0}/s"),
        Kind::Memory => format!("{v:.1} KiB"),
        Kind::CpuTime => format!("{:.1} µs", v / 1e3),
        Kind::CpuPerGb => format!("{v:.2} s/GB"),
        Kind::Rise => format!("{:+.1} µs", v / 1e3),
    };
    match (kind, reference) {
        (Kind::Latency, Some(r)) => format!("{abs} (+{:.1} µs)", (v - r) / 1e3),
        (_, Some(r)) if r > 0.0 => format!("{abs} ({:.2}×)", v / r),
        _ => abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ratios() {
        let mut t = Table::new(&["direct", "router"]);
        t.push(
            "raw",
            Kind::Throughput,
            vec![Cell::Value(2e9), Cell::Value(1.8e9)],
        );
        t.push(
            "p50",
            Kind::Latency,
            vec![Cell::Value(10_000.0), Cell::Note("n/a".into())],
        );
        let md = t.markdown();
        assert!(md.contains("1.80 GB/s (0.90×)"), "{md}");
        assert!(md.contains("n/a"), "{md}");
        assert_eq!(t.value("raw", "router"), Some(1.8e9));
    }
}
