use super::*;

fn p(text: &str) -> Result<RiParams, ParamsError> {
    parse(text, Path::new("cf"), &Services::builtin_only())
}

fn client_of(text: &str) -> ClientParams {
    match p(text) {
        Ok(RiParams::Client(c)) => c,
        other => panic!("expected client params, got {other:?}"),
    }
}

fn server_of(text: &str) -> ServerParams {
    match p(text) {
        Ok(RiParams::Server(s)) => s,
        other => panic!("expected server params, got {other:?}"),
    }
}

fn err(text: &str) -> String {
    match p(text) {
        Err(e) => e.to_string(),
        Ok(ok) => panic!("expected an error, got {ok:?}"),
    }
}

#[test]
fn sap_example_cf1_with_defaults() {
    let c = client_of("# cf1\nclient = true\nclient_service= 5001\n");
    assert_eq!(
        c,
        ClientParams {
            service: 5001,
            hostname: None,
            ace: vec![],
            max_servers: 1,
            conn_pool_size: 3,
            listen_protocol: Protocol::Unspec,
            exclusive: true,
            connect_timeout: Duration::from_millis(2000),
            route: None,
        }
    );
}

#[test]
fn sap_example_cf2_with_defaults() {
    let s = server_of(
        "server = true\nclient_hostname = 10.18.0.1\nclient_service = 5001\nreg_service = 5002\n",
    );
    assert_eq!(
        s,
        ServerParams {
            client_hostname: "10.18.0.1".into(),
            client_hosts: vec!["10.18.0.1".into()],
            client_service: 5001,
            reg_hostname: None,
            reg_service: 5002,
            connect_timeout: None,
            retry_timeout: Duration::from_secs(5),
            conn_on_demand: true,
            reg_protocol: Protocol::Unspec,
            link_version: 1,
        }
    );
    // reg_service defaults to 3299.
    let s = server_of("server=1\nclient_hostname=dmz\nclient_service=sapdp01");
    assert_eq!(s.reg_service, 3299);
    assert_eq!(s.client_service, 3201, "service names resolve");
}

#[test]
fn link_protocol_names_the_multiplexer_offered() {
    let base = "server=1\nclient_hostname=dmz\nclient_service=5001\n";
    assert_eq!(server_of(base).link_version, 1, "yamux unless asked");
    for (value, version) in [
        ("yamux", 1),
        ("1", 1),
        ("linkmux", 2),
        ("LinkMux", 2),
        ("2", 2),
    ] {
        let s = server_of(&format!("{base}link_protocol = {value}\n"));
        assert_eq!(s.link_version, version, "link_protocol = {value}");
    }
    let err = parse(
        &format!("{base}link_protocol = 3\n"),
        Path::new("ri.ini"),
        &Services::builtin_only(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("ri.ini:4: link_protocol: "), "{err}");
    assert!(
        err.contains("link_protocol") && err.contains("not yamux (1) or linkmux (2)"),
        "{err}"
    );
}

#[test]
fn every_client_parameter() {
    let c = client_of(
        "\n  # comment after blanks\nclient=anything\nclient_service=5001\nclient_hostname = 10.0.0.1\n\
         ACE = P 10.0.0.0/8\nACE = D 0.0.0.0/0\nace = p ::1\nmax_servers = 4\nconn_pool_size = 8\n\
         listen_protocol = IPv6\nexclusive = no\nconnect_timeout = 750\n\
         route = /H/10.0.0.1/S/4001/H/10.0.0.2/S/5002/H/10.0.0.3/S/8080\n",
    );
    assert_eq!(c.hostname.as_deref(), Some("10.0.0.1"));
    assert_eq!(c.ace.len(), 3);
    assert_eq!(c.ace[0].to_string(), "P 10.0.0.0/8");
    assert_eq!(c.ace[1].to_string(), "D 0.0.0.0/0");
    assert_eq!(c.ace[2].to_string(), "P ::1/128");
    assert_eq!(c.max_servers, 4);
    assert_eq!(c.conn_pool_size, 8);
    assert_eq!(c.listen_protocol, Protocol::V6);
    assert!(!c.exclusive);
    assert_eq!(c.connect_timeout, Duration::from_millis(750));
    let route = c.route.expect("route");
    assert_eq!(route.len(), 3);
    assert_eq!(route[2].host, "10.0.0.3");
    assert_eq!(route[2].service, "8080");
}

#[test]
fn every_server_parameter() {
    let s = server_of(
        "server = x\nclient_hostname = [::1]\nclient_service = 5001\nreg_hostname = lan.example\n\
         reg_service = 5002\nconnect_timeout = -1\nretry_timeout = 30\nconn_on_demand = NO\n\
         reg_protocol = ipv4\n",
    );
    assert_eq!(s.client_hostname, "::1");
    assert_eq!(s.reg_hostname.as_deref(), Some("lan.example"));
    assert_eq!(s.connect_timeout, None);
    assert_eq!(s.retry_timeout, Duration::from_secs(30));
    assert!(!s.conn_on_demand);
    assert_eq!(s.reg_protocol, Protocol::V4);
    let s = server_of("server=\nclient_hostname=h\nclient_service=1\nconnect_timeout=1500");
    assert_eq!(s.connect_timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn role_errors() {
    assert_eq!(
        err("client_service = 1\n"),
        "cf: neither 'client' (DMZ side) nor 'server' (LAN side) is set"
    );
    assert!(err("client=1\nserver=1\nclient_service=1").contains("both 'client' and 'server'"));
    assert_eq!(err("client = 1\n"), "cf: 'client_service' is required");
    assert_eq!(
        err("server = 1\nclient_service = 1"),
        "cf: 'client_hostname' is required"
    );
    assert_eq!(
        err("server = 1\nclient_hostname = h"),
        "cf: 'client_service' is required"
    );
    assert_eq!(
        err("client = 1\nclient_service = 1\nreg_service = 5"),
        "cf:3: reg_service: is a server parameter; this file sets 'client'"
    );
    assert_eq!(
        err("server = 1\nACE = P 1.2.3.4\nclient_hostname=h\nclient_service=1"),
        "cf:2: ACE: is a client parameter; this file sets 'server'"
    );
}

#[test]
fn line_errors_name_file_line_and_key() {
    let base = "client = 1\nclient_service = 5001\n";
    let cases = [
        ("bogus = 1", "cf:3: bogus: unknown parameter"),
        ("just words", "cf:3: just words: expected 'name = value'"),
        ("= 5", "cf:3: = 5: no parameter name before '='"),
        (
            "client_service = 7",
            "cf:3: client_service: given twice (first on line 2)",
        ),
        (
            "max_servers = 0",
            "cf:3: max_servers: '0' is not a number from 1 to 1024",
        ),
        (
            "max_servers = -3",
            "cf:3: max_servers: '-3' is not a number from 1 to 1024",
        ),
        (
            "conn_pool_size = 65",
            "cf:3: conn_pool_size: '65' is not a number from 1 to 64",
        ),
        (
            "exclusive = maybe",
            "cf:3: exclusive: 'maybe' is not yes or no",
        ),
        (
            "listen_protocol = IPX",
            "cf:3: listen_protocol: 'IPX' is not IPv4, IPv6 or unspec",
        ),
        (
            "connect_timeout = -1",
            "cf:3: connect_timeout: '-1' is not a number from 1 to 3600000",
        ),
        (
            "client_hostname = a b",
            "cf:3: client_hostname: 'a b' is not a host name or address",
        ),
        (
            "ACE = X 1.2.3.4",
            "cf:3: ACE: 'X': action must be P (permit) or D (deny)",
        ),
        (
            "ACE = P 1.2.3.4/33",
            "cf:3: ACE: '/33': prefix must be 0 to 32",
        ),
        (
            "ACE = P host.example",
            "cf:3: ACE: 'host.example' is not an IPv4 or IPv6 address",
        ),
        ("ACE = P", "cf:3: ACE: 'P': expected 'P|D address[/prefix]'"),
        (
            "ACE = P 1.2.3.4 extra",
            "cf:3: ACE: 'P 1.2.3.4 extra': expected 'P|D address[/prefix]'",
        ),
        (
            "route = 10.0.0.1",
            "cf:3: route: invalid route string: route string must start with /H/: \"10.0.0.1\"",
        ),
        (
            "route = /H/a/S/1",
            "cf:3: route: the route must name this router and at least one hop behind it",
        ),
        (
            "route = /H/a/S/1/H/b",
            "cf:3: route: the last hop needs an explicit /S/ (the port to forward to)",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(err(&format!("{base}{line}\n")), want, "{line}");
    }
    assert_eq!(
        err("client = 1\nclient_service = nosuchservice"),
        "cf:2: client_service: 'nosuchservice' is not a port number or known service name"
    );
    assert_eq!(
        err("client = 1\nclient_service = 0"),
        "cf:2: client_service: '0' is not a port number or known service name"
    );
    let server = "server=1\nclient_hostname=h\nclient_service=1\n";
    assert_eq!(
        err(&format!("{server}connect_timeout = 0")),
        "cf:4: connect_timeout: '0' is not a number from 1 to 3600000 (or -1 for none)"
    );
    assert_eq!(
        err(&format!("{server}retry_timeout = 0")),
        "cf:4: retry_timeout: '0' is not a number from 1 to 86400"
    );
    assert_eq!(
        err(&format!("{server}reg_service = 70000")),
        "cf:4: reg_service: '70000' is not a port number or known service name"
    );
}

#[test]
fn at_most_32_aces() {
    let mut text = "client = 1\nclient_service = 1\n".to_string();
    for i in 0..32 {
        text.push_str(&format!("ACE = P 10.0.0.{i}\n"));
    }
    assert_eq!(client_of(&text).ace.len(), 32);
    text.push_str("ACE = D 0.0.0.0/0\n");
    assert_eq!(err(&text), "cf:35: ACE: more than 32 entries");
}

#[test]
fn ace_matching_first_match_decides() {
    let ace = |s: &str| parse_ace(s).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(ace_permits(&[], ip("192.0.2.1")), "empty list: anyone");
    let list = [ace("D 10.1.0.0/16"), ace("P 10.0.0.0/8")];
    assert!(!ace_permits(&list, ip("10.1.2.3")));
    assert!(ace_permits(&list, ip("10.2.2.3")));
    assert!(!ace_permits(&list, ip("11.0.0.1")), "no match: deny");
    assert!(ace_permits(&list, ip("::ffff:10.2.0.1")), "mapped IPv4");
    assert!(ace("P 0.0.0.0/0").matches(ip("203.0.113.9")));
    assert!(!ace("P 0.0.0.0/0").matches(ip("::1")));
    assert!(ace("P 10.0.0.128/25").matches(ip("10.0.0.200")));
    assert!(!ace("P 10.0.0.128/25").matches(ip("10.0.0.127")));
    assert!(ace("P 2001:db8::/33").matches(ip("2001:db8:7fff::1")));
    assert!(!ace("P 2001:db8::/33").matches(ip("2001:db8:8000::1")));
    assert!(ace("P ::/0").matches(ip("2001:db8::1")));
    assert!(ace("P 192.0.2.7").matches(ip("192.0.2.7")));
    assert!(!ace("P 192.0.2.7").matches(ip("192.0.2.8")));
}

#[test]
fn comments_only_at_line_start_and_crlf() {
    let c = client_of(
        "client = 1\r\nclient_service = 1\r\nroute = /H/a/S/1/H/b/W/pa#ss/S/2\r\n   # note\r\n",
    );
    let route = c.route.expect("route");
    assert_eq!(route[1].password, "pa#ss");
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf1");
    std::fs::write(&path, "client = true\nclient_service = 5001\n").unwrap();
    assert!(matches!(
        load(&path, &Services::builtin_only()),
        Ok(RiParams::Client(_))
    ));
    let missing = dir.path().join("nope");
    let e = load(&missing, &Services::builtin_only()).unwrap_err();
    assert!(e.to_string().contains("nope: cannot read"), "{e}");
    std::fs::write(&path, b"client = \xff\n").unwrap();
    let e = load(&path, &Services::builtin_only()).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn protocol_admits() {
    let v4: IpAddr = "10.0.0.1".parse().unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    assert!(Protocol::V4.admits(v4) && !Protocol::V4.admits(v6));
    assert!(Protocol::V6.admits(v6) && !Protocol::V6.admits(v4));
    assert!(Protocol::Unspec.admits(v4) && Protocol::Unspec.admits(v6));
}

#[test]
fn client_hostname_lists_several_dmz_routers() {
    let s = server_of(
        "server = 1\nclient_hostname = 10.0.0.1,dmz-b.example , [::1]\nclient_service = 5001\n",
    );
    assert_eq!(s.client_hosts, ["10.0.0.1", "dmz-b.example", "::1"]);
    assert_eq!(s.client_hostname, "10.0.0.1, dmz-b.example, ::1");
    let s = server_of("server = 1\nclient_hostname = dmz\nclient_service = 5001\n");
    assert_eq!(s.client_hosts, ["dmz"]);
    assert_eq!(s.client_hostname, "dmz");
}

#[test]
fn client_hostname_list_errors_name_file_line_and_item() {
    let base = "server = 1\nclient_service = 5001\n";
    assert_eq!(
        err(&format!("{base}client_hostname = 10.0.0.1, , dmz-b")),
        "cf:3: client_hostname: item 2 of the list is empty"
    );
    assert_eq!(
        err(&format!("{base}client_hostname = 10.0.0.1,")),
        "cf:3: client_hostname: item 2 of the list is empty"
    );
    assert_eq!(
        err(&format!("{base}client_hostname = dmz-a, DMZ-A")),
        "cf:3: client_hostname: 'DMZ-A' is listed twice"
    );
    assert_eq!(
        err(&format!("{base}client_hostname = 10.0.0.1, bad/name")),
        "cf:3: client_hostname: 'bad/name' is not a host name or address"
    );
    // The DMZ side binds one address: a list there is still an error.
    assert!(
        err("client = 1\nclient_service = 5001\nclient_hostname = a, b")
            .contains("client_hostname")
    );
}
