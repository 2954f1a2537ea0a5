//! Interop: pysap (an independent implementation of SAP's router protocol, installed into a
//! venv by scripts/pysap-venv.sh) routes through the real binary in both talk modes, meets a
//! denial and an unreachable partner, and decodes the info reply.

mod common;

use std::process::Command;

use common::*;

#[test]
fn pysap_drives_the_router() {
    let venv = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/pysap-venv.sh"
    ))
    .output()
    .expect("run scripts/pysap-venv.sh");
    assert!(
        venv.status.success(),
        "pysap venv could not be made: {}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8_lossy(&venv.stdout).trim().to_string();

    let ni = ni_echo();
    let raw = raw_echo();
    let pw = ni_echo();
    let closed = free_port();
    let l = "127.0.0.1";
    let table = format!(
        "P {l} {l} {ni}\nP {l} {l} {raw}\nP {l} {l} {pw} secret\nP {l} {l} {closed}\nD * * *\n"
    );
    let router = TestRouter::start(&table, &["-P", "infopass"]);
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/pysap_checks.py"
        ))
        .env("ROUTER_PORT", router.port.to_string())
        .env("NI_ECHO", ni.to_string())
        .env("RAW_ECHO", raw.to_string())
        .env("PW_ECHO", pw.to_string())
        .env("CLOSED", closed.to_string())
        .env("INFO_PW", "infopass")
        .output()
        .expect("run pysap checks");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "pysap checks failed:\n{text}");
    assert!(text.contains("PASS info"), "{text}");
}
