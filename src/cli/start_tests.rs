//! A start's flags: each one's place in the configuration, and the message (naming the
//! flag) and exit code of each bad value.

use super::*;
use crate::cli::{Invocation, Request};

fn start(line: &[&str]) -> StartArgs {
    let args: Vec<String> = ["saprouter", "-r"]
        .into_iter()
        .chain(line.iter().copied())
        .map(String::from)
        .collect();
    match Invocation::parse(&args) {
        Ok(Invocation::Run(Request::Start(args))) => args,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn config(line: &[&str]) -> RouterConfig {
    start(line)
        .config()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// The usage error of a start's flags.
fn bad(line: &[&str]) -> String {
    match start(line).config() {
        Err(CliError::Usage(problem)) => problem,
        Err(other) => panic!("{line:?}: not a usage error: {other}"),
        Ok(_) => panic!("{line:?}: accepted"),
    }
}

#[test]
fn defaults_are_saps() {
    let c = config(&[]);
    let d = RouterConfig::default();
    assert_eq!(c.port, 3299);
    assert_eq!(c.timeout, Duration::from_millis(5000));
    assert_eq!(c.routtab, d.routtab);
    assert_eq!(c.bind_host, None);
    assert_eq!(c.max_clients, 800);
    assert_eq!(c.trace_file, d.trace_file);
    assert_eq!(c.trace_level, 1);
    assert_eq!(c.log_file, None);
    assert_eq!(c.info_password, None);
    assert!(!c.hide_errors && !c.no_dns && !c.append);
    assert_eq!(c.max_log_size, None);
    assert_eq!(c.max_pending, None);
    assert_eq!(c.max_pending_per_source, 32);
    assert_eq!(c.max_connecting, 128);
    assert_eq!(c.penalty, None);
    assert_eq!(c.max_queued_packets, 1);
    assert_eq!(c.max_queue_bytes, 20_000_000);
    assert!(c.proxy_from.is_empty());
    assert!(c.snc.is_none());
    assert_eq!(start(&[]).ri_file(), None);
    assert!(start(&[]).snc_request().is_none());
}

#[test]
fn flags_fill_the_config() {
    let c = config(&[
        "-S", "3298", "-W", "250", "-R", "/etc/rt", "-H", "10.1.2.3", "-C", "5", "-V", "2", "-Z",
        "-D", "-E", "-P", "pw", "-G", "conn.log", "-T", "trc", "-J", "4096", "-B", "4", "-Q",
        "1000", "-Y", "1",
    ]);
    assert_eq!(c.port, 3298);
    assert_eq!(c.timeout, Duration::from_millis(250));
    assert_eq!(c.routtab, PathBuf::from("/etc/rt"));
    assert_eq!(c.bind_host.as_deref(), Some("10.1.2.3"));
    assert_eq!(c.max_clients, 5);
    assert_eq!(c.trace_level, 2);
    assert!(c.hide_errors && c.no_dns && c.append);
    assert_eq!(c.info_password, Some(Secret::new("pw")));
    assert_eq!(c.log_file, Some(PathBuf::from("conn.log")));
    assert_eq!(c.trace_file, PathBuf::from("trc"));
    assert_eq!(c.max_log_size, Some(4096));
    assert_eq!(c.max_queued_packets, 4);
    assert_eq!(c.max_queue_bytes, 1000);
}

#[test]
fn limits_penalty_and_proxy_senders() {
    let c = config(&[
        "--max-pending",
        "9",
        "--max-pending-per-source",
        "3",
        "--max-connecting",
        "7",
        "--penalty",
        "10/60",
        "--proxy-from",
        "10.0.0.0/8",
        "--proxy-from",
        "192.0.2.1,::1",
    ]);
    assert_eq!(c.max_pending, Some(9));
    assert_eq!(c.max_pending_per_source, 3);
    assert_eq!(c.max_connecting, 7);
    assert_eq!(
        c.penalty,
        Some(PenaltyPolicy {
            failures: 10,
            window: Duration::from_secs(60),
        })
    );
    for ip in ["10.9.8.7", "192.0.2.1", "::1"] {
        assert!(c.proxy_from.contains(ip.parse().unwrap()), "{ip}");
    }
    assert!(!c.proxy_from.contains("192.0.2.2".parse().unwrap()));
}

#[test]
fn values_are_adjusted_as_sap_does() {
    assert_eq!(config(&["-V", "0"]).trace_level, 1);
    assert_eq!(config(&["-V", "9"]).trace_level, 3);
    assert_eq!(config(&["-B", "0"]).max_queued_packets, 1);
    assert_eq!(config(&["-W", "0"]).timeout, Duration::from_millis(1));
    assert_eq!(
        config(&["-C", " 12 "]).max_clients,
        12,
        "values are trimmed"
    );
}

#[test]
fn ipv6_binds_all_unless_h_is_given() {
    assert_eq!(config(&["-6"]).bind_host.as_deref(), Some("::"));
    assert_eq!(
        config(&["-6", "-H", "127.0.0.1"]).bind_host.as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn bad_values_name_the_flag() {
    let cases: [(&[&str], &str); 17] = [
        (&["-C", "many"], "-C \"many\": not a valid number"),
        (&["-C", "0"], "-C 0: at least one client is needed"),
        (&["-V", "high"], "-V \"high\": not a valid number"),
        (&["-Y", "x"], "-Y \"x\": not a valid number"),
        (
            &["-Y", "2"],
            "-Y 2: starting further router processes is not supported; raise -C instead",
        ),
        (&["-J", "1M"], "-J \"1M\": not a valid number"),
        (&["-B", "-"], "-B \"-\": not a valid number"),
        (&["-Q", "lots"], "-Q \"lots\": not a valid number"),
        (
            &["--max-pending", "0"],
            "--max-pending 0: must be at least 1",
        ),
        (
            &["--max-pending", "x"],
            "--max-pending \"x\": not a valid number",
        ),
        (
            &["--max-pending-per-source", "0"],
            "--max-pending-per-source 0: must be at least 1",
        ),
        (
            &["--max-connecting", "0"],
            "--max-connecting 0: must be at least 1",
        ),
        (
            &["--max-connecting", "1.5"],
            "--max-connecting \"1.5\": not a valid number",
        ),
        (
            &["--penalty", "10"],
            "--penalty '10' is not FAILURES/SECONDS (e.g. 10/60)",
        ),
        (
            &["--penalty", "0/60"],
            "--penalty '0/60': failures must be at least 1 and seconds between 1 and 86400",
        ),
        (
            &["--proxy-from", "10.0.0.0/8,"],
            "--proxy-from '10.0.0.0/8,': an empty entry",
        ),
        (&["--snc-cert", "c.pem"], "--snc-cert needs -K (SNC)"),
    ];
    for (line, want) in cases {
        assert_eq!(bad(line), want, "{line:?}");
    }
    for flag in ["--snc-key", "--snc-ca", "--snc-p12", "--snc-p12-pass-file"] {
        assert_eq!(bad(&[flag, "f"]), format!("{flag} needs -K (SNC)"));
    }
    assert!(bad(&["--proxy-from", "not-a-net"]).starts_with("--proxy-from 'not-a-net': "));
}

#[test]
fn observe_options() {
    let o = start(&[]).observe().unwrap();
    assert_eq!(
        o,
        Observe {
            metrics: None,
            json: false
        }
    );
    let o = start(&["--metrics", "127.0.0.1:9326", "--log-format", "json"])
        .observe()
        .unwrap();
    assert_eq!(o.metrics, Some("127.0.0.1:9326".parse().unwrap()));
    assert!(o.json);
    assert!(!start(&["--log-format", "text"]).observe().unwrap().json);
    assert_eq!(
        start(&["--log-format", "xml"]).observe(),
        Err(CliError::Usage(
            "--log-format \"xml\": expected text or json".into()
        ))
    );
    assert_eq!(
        start(&["--metrics", "9326"]).observe(),
        Err(CliError::Usage(
            "--metrics \"9326\": expected ADDR:PORT, e.g. 127.0.0.1:9326".into()
        ))
    );
}

#[test]
fn metrics_address_forms() {
    assert_eq!(
        metrics_addr(":9326"),
        Ok(SocketAddr::from(([0, 0, 0, 0], 9326)))
    );
    assert_eq!(metrics_addr(" [::1]:9 "), Ok("[::1]:9".parse().unwrap()));
    assert_eq!(
        metrics_addr("10.0.0.1:80"),
        Ok("10.0.0.1:80".parse().unwrap())
    );
    for text in ["", ":", ":70000", "localhost:9326", "10.0.0.1", "[::1]"] {
        let err = metrics_addr(text).unwrap_err();
        assert!(err.starts_with("--metrics "), "{text:?}: {err}");
    }
}

#[test]
fn snc_request_name_and_files() {
    let r = start(&["-K"]).snc_request().unwrap();
    assert_eq!(r.name, None, "-K alone: the certificate's subject");
    let r = start(&[
        "-K",
        " p:CN=router ",
        "--snc-cert",
        "c",
        "--snc-key",
        "k",
        "--snc-ca",
        "a",
    ])
    .snc_request()
    .unwrap();
    assert_eq!(r.name.as_deref(), Some("p:CN=router"));
    assert_eq!(r.options.cert, Some(PathBuf::from("c")));
    assert_eq!(r.options.key, Some(PathBuf::from("k")));
    assert_eq!(r.options.ca, Some(PathBuf::from("a")));
    assert_eq!(r.options.p12, None);
    let r = start(&["-K", "--snc-p12", "id.p12", "--snc-p12-pass-file", "pw"])
        .snc_request()
        .unwrap();
    assert_eq!(r.options.p12, Some(PathBuf::from("id.p12")));
    assert_eq!(r.options.p12_password_file, Some(PathBuf::from("pw")));
    // With -K the file options are the identity's, not a usage error.
    assert!(start(&["-K", "--snc-cert", "c"]).config().is_ok());
}

#[test]
fn build_loads_the_files_in_order() {
    let start_ok = start(&["-S", "3301"]).build().unwrap();
    assert_eq!(start_ok.config.port, 3301);
    assert!(start_ok.ri.is_none() && start_ok.config.snc.is_none());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.params");
    let missing = missing.to_str().unwrap();
    // The -i file is read first: its failure (exit 1) wins over a bad flag (exit 2).
    let err = start(&["-i", missing, "--metrics", "bad"])
        .build()
        .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    assert!(err.to_string().contains("missing.params"), "{err}");
    // Flags before the -K identity: a bad flag is a usage error even when the identity
    // would not open.
    let err = start(&["-K", "--snc-cert", missing, "-C", "0"])
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        CliError::Usage("-C 0: at least one client is needed".into())
    );
    let err = start(&[
        "-K",
        "--snc-cert",
        missing,
        "--snc-key",
        missing,
        "--snc-ca",
        missing,
    ])
    .build()
    .unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
}
