//! nmap's service detection names the router's port: its signatures match the record a
//! SAProuter sends when no route arrives in time, byte for byte (module `nirout.cpp`,
//! location `SAProuter 40.4 on '<host>'`).

mod common;

use std::process::Command;

use common::*;

#[test]
fn nmap_names_saprouter_40_4() {
    if !tool_available("nmap") {
        return;
    }
    // The default -W of 5 s: the signature expects "within 5s", and nmap's first probe
    // (which sends nothing) waits 6 s.
    let r = TestRouter::start("P * * *\n", &[]);
    let out = Command::new("nmap")
        .args(["-sV", "-Pn", "-n", "--version-intensity", "0", "-p"])
        .arg(r.port.to_string())
        .arg("127.0.0.1")
        .output()
        .expect("run nmap");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nmap failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{}/tcp", r.port)))
        .unwrap_or_else(|| panic!("no port line in nmap's output:\n{text}"));
    assert!(line.contains(" open "), "{line}");
    assert!(line.contains("saprouter"), "service name: {line}");
    assert!(line.contains("SAProuter 40.4"), "version: {line}");
}
