//! The command lines: `--help`/`-h` print the usage and succeed, `--version` prints the
//! version, and SAP's no-argument usage (on stderr, exit 2) stays as it is.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("run binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SAPROUTER: &str = env!("CARGO_BIN_EXE_saprouter");
const NIPING: &str = env!("CARGO_BIN_EXE_niping");
const BENCH: &str = env!("CARGO_BIN_EXE_saprouter-bench");

#[test]
fn saprouter_help_and_version() {
    for flag in ["--help", "-h"] {
        let o = run(SAPROUTER, &[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("usage: saprouter -r"),
            "{flag}: {}",
            stdout(&o)
        );
        assert!(!stderr(&o).contains("unexpected"), "{flag}: {}", stderr(&o));
    }
    let o = run(SAPROUTER, &["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!(
            "saprouter-rs {}, SAProuter 40.4 compatible",
            env!("CARGO_PKG_VERSION")
        )
    );
    // SAP's usage without arguments: on stderr, exit 2.
    let o = run(SAPROUTER, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).starts_with("usage: saprouter -r"),
        "{}",
        stderr(&o)
    );
    // -h with a value keeps SAP's meaning (password encryption), which this router refuses.
    let o = run(SAPROUTER, &["-h", "secret"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("-h: encrypted saprouttab passwords"),
        "{}",
        stderr(&o)
    );
    // A real usage error still names the problem.
    let o = run(SAPROUTER, &["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpected argument"), "{}", stderr(&o));
}

#[test]
fn niping_help_and_version() {
    for flag in ["--help", "-h"] {
        let o = run(NIPING, &[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("usage: niping -s"),
            "{flag}: {}",
            stdout(&o)
        );
        assert!(stderr(&o).is_empty(), "{flag}: {}", stderr(&o));
    }
    let o = run(NIPING, &["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&o)
    );
    let o = run(NIPING, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("usage: niping -s"), "{}", stderr(&o));
}

#[test]
fn bench_help_and_version() {
    let o = run(BENCH, &["--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("--quick"), "{}", stdout(&o));
    let o = run(BENCH, &["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&o)
    );
    let o = run(BENCH, &["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}
