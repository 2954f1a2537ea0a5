//! The reverse-invoke DMZ/LAN scenario in network namespaces (scripts/dmz-lan-scenario.sh),
//! plain and with SNC as TLS.
//! Runs when the test runs as root and `ip netns` works. Elsewhere it says on stderr why
//! it did not run and returns, except under CI (`CI` set), where it fails: CI runs as root
//! and must never pass without running it.

use std::process::Command;

mod common;
use common::{skipped, tool_available};

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output();
    match uid {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => {}
        Ok(_) => return Some("not running as root".into()),
        Err(e) => return Some(format!("cannot run id: {e}")),
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "'ip netns' does not work: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("no 'ip' command: {e}")),
    }
}

/// The namespace scenarios run one at a time: their timing checks (a silent link noticed
/// within 15 s) should not share two cores with another scenario.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs scripts/dmz-lan-scenario.sh with `SCENARIO_VARIANT=variant`.
fn run_scenario(variant: &str) {
    if let Some(why) = skip_reason() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the DMZ/LAN scenario needs root and network namespaces under CI: {why}"
        );
        skipped(&format!(
            "the DMZ/LAN scenario needs root and network namespaces ({why})"
        ));
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dmz-lan-scenario.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("SAPROUTER_BIN", env!("CARGO_BIN_EXE_saprouter"))
        .env("NIPING_BIN", env!("CARGO_BIN_EXE_niping"))
        .env("SCENARIO_VARIANT", variant)
        .output()
        .expect("run the scenario script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the DMZ/LAN scenario ({variant}) failed:\n{stdout}"
    );
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}

#[test]
fn dmz_lan_scenario_in_network_namespaces() {
    run_scenario("plain");
}

/// The published variant: both routers with -K, TLS on the links, KT and KP by name, and a
/// rogue LAN router with a valid certificate but another name.
#[test]
fn dmz_lan_scenario_with_snc_in_network_namespaces() {
    run_scenario("snc");
}

/// The high-availability reference topology (examples/ha/, scripts/ha-scenario.sh): haproxy
/// with PROXY v2 in front of two DMZ routers, two LAN routers serving one pseudo address
/// through both, failover and restarts of each, and a rogue LAN router outside the ACE list.
#[test]
fn ha_scenario_in_network_namespaces() {
    if let Some(why) = skip_reason() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the HA scenario needs root and network namespaces under CI: {why}"
        );
        skipped(&format!(
            "the HA scenario needs root and network namespaces ({why})"
        ));
        return;
    }
    // The balancer in front of the DMZ routers is a real haproxy (.ci/run installs it).
    if !tool_available("haproxy") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ha-scenario.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("SAPROUTER_BIN", env!("CARGO_BIN_EXE_saprouter"))
        .env("NIPING_BIN", env!("CARGO_BIN_EXE_niping"))
        .output()
        .expect("run the HA scenario script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the HA scenario failed:\n{stdout}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}
