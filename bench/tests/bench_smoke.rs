//! `saprouter-bench --quick` runs end to end and writes a table. No thresholds: speed is
//! never a timed test.

use std::path::PathBuf;
use std::process::Command;

/// The router binary beside the benchmark's (one target directory for the workspace;
/// `cargo test` at the top builds both).
fn router_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_saprouter-bench"));
    let router = bench.with_file_name("saprouter");
    assert!(
        router.exists(),
        "{} is missing: run the tests from the top of the workspace (cargo test), which builds it",
        router.display()
    );
    router
}

#[test]
fn quick_bench_writes_a_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("performance.md");
    let status = Command::new(env!("CARGO_BIN_EXE_saprouter-bench"))
        .args(["--quick", "--out"])
        .arg(&out)
        .arg("--router")
        .arg(router_binary())
        .output()
        .expect("run saprouter-bench");
    assert!(
        status.status.success(),
        "saprouter-bench failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("report written");
    assert!(
        text.contains("| measurement | direct | saprouter-rs |"),
        "{text}"
    );
    for row in [
        "raw upload",
        "NI download",
        "p50",
        "set-ups per second",
        "RSS per idle",
    ] {
        assert!(text.contains(row), "row {row} missing:\n{text}");
    }
    assert!(text.contains("## Machine"), "{text}");
    assert!(
        text.contains("## Reverse-invoke chain") && text.contains("beside a bulk download"),
        "{text}"
    );
    // The router's own column has numbers, not failures.
    let failures = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("failed"))
        .count();
    assert_eq!(failures, 0, "{text}");
    // Rewriting keeps the hand-written part below the marker.
    let kept = format!("{text}\nhand-written note\n");
    std::fs::write(&out, kept).expect("rewrite");
    let again = Command::new(env!("CARGO_BIN_EXE_saprouter-bench"))
        .args(["--quick", "--out"])
        .arg(&out)
        .output()
        .expect("run saprouter-bench again");
    assert!(again.status.success());
    let text = std::fs::read_to_string(&out).expect("report rewritten");
    assert!(text.contains("hand-written note"), "{text}");
}
