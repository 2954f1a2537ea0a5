//! The command line's functions: which flags ask for what, and the message and exit code of
//! each bad value.

use super::*;

fn parse(line: &[&str]) -> Result<Invocation, CliError> {
    let args: Vec<String> = std::iter::once("saprouter")
        .chain(line.iter().copied())
        .map(String::from)
        .collect();
    Invocation::parse(&args)
}

fn request(line: &[&str]) -> Request {
    match parse(line) {
        Ok(Invocation::Run(request)) => request,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn usage_error(line: &[&str]) -> String {
    match parse(line) {
        Err(CliError::Usage(problem)) => problem,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn admin(line: &[&str]) -> (AdminTarget, AdminCommand) {
    match request(line) {
        Request::Admin(target, cmd) => (target, cmd),
        other => panic!("{line:?}: {other:?}"),
    }
}

#[test]
fn no_arguments_is_the_bare_usage() {
    let err = parse(&[]).unwrap_err();
    assert_eq!(err, CliError::Usage(String::new()));
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn help_version_and_table_tools() {
    assert!(matches!(parse(&["--help"]), Ok(Invocation::Help)));
    assert!(matches!(parse(&["-r", "--help"]), Ok(Invocation::Help)));
    assert!(matches!(parse(&["-h"]), Ok(Invocation::Help)));
    assert!(matches!(parse(&["--version"]), Ok(Invocation::Version)));
    assert!(matches!(
        parse(&["--check", "-R", "t"]),
        Ok(Invocation::Check)
    ));
    assert!(matches!(
        parse(&["--explain", "a", "b"]),
        Ok(Invocation::Explain)
    ));
    // Help before the table tools, as `--check --help` asks for help.
    assert!(matches!(
        parse(&["--check", "--help"]),
        Ok(Invocation::Help)
    ));
    assert_eq!(
        version_text(),
        format!(
            "saprouter-rs {}, SAProuter 40.4 compatible",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(USAGE.starts_with("usage: saprouter -r"));
}

#[test]
fn refused_sap_features_fail_with_exit_1() {
    let err = parse(&["-h", "secret"]).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .starts_with("-h: encrypted saprouttab passwords are not used"),
        "{err}"
    );
    for line in [["-r", "-a", "lib.so"], ["-r", "-A", "init"]] {
        assert_eq!(
            parse(&line).unwrap_err(),
            CliError::Fail("-a/-A: third-party libraries are not loaded by this router".into())
        );
    }
}

#[test]
fn clap_errors_are_one_usage_line() {
    let problem = usage_error(&["--no-such-flag"]);
    assert!(problem.contains("unexpected argument"), "{problem}");
    assert!(!problem.starts_with("error:"), "{problem}");
    assert!(!problem.contains('\n'), "{problem}");
    let problem = usage_error(&["-r", "-R"]);
    assert!(problem.contains("-R"), "{problem}");
}

#[test]
fn bad_port_and_timeout_name_the_flag() {
    assert_eq!(
        usage_error(&["-s", "-S", "abc"]),
        "-S \"abc\": not a valid number"
    );
    assert_eq!(
        usage_error(&["-r", "-S", "70000"]),
        "-S \"70000\": not a valid number"
    );
    assert_eq!(
        usage_error(&["-s", "-W", "soon"]),
        "-W \"soon\": not a valid number"
    );
}

#[test]
fn admin_target_defaults_and_flags() {
    let (target, cmd) = admin(&["-s"]);
    assert_eq!(cmd, AdminCommand::Stop);
    assert_eq!(
        target,
        AdminTarget {
            host: "localhost".into(),
            port: 3299,
            wait: Duration::from_millis(5000),
        }
    );
    let (target, _) = admin(&["-n", "-H", "10.0.0.1", "-S", " 3298 ", "-W", "200"]);
    assert_eq!(target.host, "10.0.0.1");
    assert_eq!(target.port, 3298);
    assert_eq!(
        target.wait,
        Duration::from_secs(1),
        "-W is at least a second"
    );
}

#[test]
fn admin_commands_in_sap_precedence() {
    let cases: [(&[&str], AdminCommand); 12] = [
        (&["-s"], AdminCommand::Stop),
        (&["-p"], AdminCommand::SoftShutdown),
        (&["-n"], AdminCommand::NewRoutTab),
        (&["-c", "7"], AdminCommand::Cancel(vec![7])),
        (&["-t"], AdminCommand::ToggleTrace),
        (&["-t", "on 7"], AdminCommand::TraceConnection(vec![7])),
        (&["-t", "off 7"], AdminCommand::TraceConnection2(vec![7])),
        (&["-d"], AdminCommand::DumpBuffers),
        (&["-f"], AdminCommand::FlushBuffers),
        (&["-z"], AdminCommand::HideErrors),
        (&["-s", "-n", "-d"], AdminCommand::Stop),
        (&["-r", "-n"], AdminCommand::NewRoutTab),
    ];
    for (line, want) in cases {
        assert_eq!(admin(line).1, want, "{line:?}");
    }
    assert_eq!(usage_error(&["-c", "x"]), "-c \"x\": not a client id");
}

#[test]
fn trace_command_forms() {
    assert_eq!(trace_command(""), Ok(AdminCommand::ToggleTrace));
    assert_eq!(
        trace_command("ON 12"),
        Ok(AdminCommand::TraceConnection(vec![12]))
    );
    assert_eq!(
        trace_command("on 10.0.0.*"),
        Ok(AdminCommand::SetTracePeer("10.0.0.*".into()))
    );
    assert_eq!(
        trace_command("off 10.0.0.*"),
        Ok(AdminCommand::ClearTracePeer("10.0.0.*".into()))
    );
    let expected = "-t \"maybe 7\": expected \"on <id|address>\" or \"off <id|address>\"";
    assert_eq!(trace_command("maybe 7").unwrap_err(), expected);
    assert!(trace_command("on")
        .unwrap_err()
        .starts_with("-t \"on\": expected"));
    assert!(trace_command("on 1 2").is_err());
    assert_eq!(
        usage_error(&["-t", "maybe 7"]),
        expected,
        "a usage error on the command line"
    );
}

#[test]
fn info_short_and_long() {
    match request(&["-l"]) {
        Request::Info {
            target,
            password,
            long,
        } => {
            assert_eq!(target.port, 3299);
            assert_eq!(password, None);
            assert!(!long);
        }
        other => panic!("{other:?}"),
    }
    match request(&["-L", "-P", "pw", "-S", "3300"]) {
        Request::Info {
            target,
            password,
            long,
        } => {
            assert_eq!(target.port, 3300);
            assert_eq!(password.as_deref(), Some("pw"));
            assert!(long);
        }
        other => panic!("{other:?}"),
    }
    // The info password stays out of debug output.
    let shown = format!("{:?}", request(&["-l", "-P", "hunter2"]));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn start_needs_r_or_i() {
    assert_eq!(
        usage_error(&["-R", "saprouttab"]),
        "no function given (-r to start the router)"
    );
    assert!(matches!(request(&["-r"]), Request::Start(_)));
    assert!(matches!(request(&["-i", "ri.params"]), Request::Start(_)));
    // A start's flag values are checked by the start, not here.
    assert!(matches!(request(&["-r", "-C", "x"]), Request::Start(_)));
    let shown = format!("{:?}", request(&["-r", "-P", "hunter2"]));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn cli_error_codes() {
    assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
    assert_eq!(CliError::fail("cannot").exit_code(), 1);
    assert_eq!(CliError::fail("cannot").to_string(), "cannot");
}
