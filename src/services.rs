//! Service names to port numbers: numbers, the system services database (`/etc/services`),
//! and SAP's conventional names when the database lacks them (`sapdpNN` = 3200+NN,
//! `sapgwNN` = 3300+NN, `sapdpNNs` = 4700+NN, `sapgwNNs` = 4800+NN).

use std::collections::HashMap;
use std::path::Path;

/// A services database: TCP service names (and aliases) to ports.
#[derive(Debug, Clone, Default)]
pub struct Services {
    tcp: HashMap<String, u16>,
}

impl Services {
    /// An empty database: only numbers and the built-in SAP names resolve.
    pub fn builtin_only() -> Self {
        Self::default()
    }

    /// Parses services-file text (`name port/proto [aliases...] [# comment]`); TCP entries only;
    /// malformed lines are skipped (the file belongs to the OS, not to us).
    pub fn parse(text: &str) -> Self {
        let mut tcp = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            if !proto.eq_ignore_ascii_case("tcp") {
                continue;
            }
            let Some(port) = parse_port(port) else {
                continue;
            };
            // Like getservbyname(3): the first line naming a service wins.
            for alias in std::iter::once(name).chain(words) {
                tcp.entry(alias.to_string()).or_insert(port);
            }
        }
        Self { tcp }
    }

    /// Loads `/etc/services` (or `path`); a missing or unreadable file gives
    /// [`Services::builtin_only`].
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(&String::from_utf8_lossy(&bytes)),
            Err(_) => Self::builtin_only(),
        }
    }

    /// The system database at `/etc/services`.
    pub fn system() -> Self {
        Self::load(Path::new("/etc/services"))
    }

    /// Resolves a service: a decimal port 1..=65535 (digits only, no sign, no spaces), a
    /// name from the database, or a built-in SAP name. `None` when unknown or out of range.
    pub fn resolve(&self, service: &str) -> Option<u16> {
        if service.is_empty() {
            return None;
        }
        if service.bytes().all(|b| b.is_ascii_digit()) {
            return parse_port(service);
        }
        if let Some(&port) = self.tcp.get(service) {
            return Some(port);
        }
        builtin_sap_service(service)
    }
}

/// SAP's built-in names: `sapdpNN`, `sapgwNN`, `sapdpNNs`, `sapgwNNs` with NN two digits.
pub fn builtin_sap_service(name: &str) -> Option<u16> {
    let (base_plain, base_secure, rest) = if let Some(rest) = name.strip_prefix("sapdp") {
        (3200, 4700, rest)
    } else if let Some(rest) = name.strip_prefix("sapgw") {
        (3300, 4800, rest)
    } else {
        return None;
    };
    let (digits, base) = match rest.strip_suffix('s') {
        Some(digits) => (digits, base_secure),
        None => (rest, base_plain),
    };
    match digits.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(base + u16::from(a - b'0') * 10 + u16::from(b - b'0'))
        }
        _ => None,
    }
}

/// A decimal port 1..=65535 written with ASCII digits only (leading zeros allowed).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    match digits.parse::<u32>() {
        Ok(port @ 1..=65535) => u16::try_from(port).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
telnet\t\t23/tcp
domain\t\t53/udp
ssh 22/tcp sshd secure-shell # comment with 99/tcp
sapmsBIN 3600/tcp
sapdp00 3299/tcp # a site that moved its dispatcher
dup 100/tcp
dup 200/tcp
broken/tcp
bad 70000/tcp
bad2 0/tcp
bad3 12x/tcp
noproto 1234
";

    #[test]
    fn parses_tcp_entries_and_aliases() {
        let db = Services::parse(SAMPLE);
        assert_eq!(db.resolve("tcpmux"), Some(1));
        assert_eq!(db.resolve("telnet"), Some(23));
        assert_eq!(db.resolve("ssh"), Some(22));
        assert_eq!(db.resolve("sshd"), Some(22));
        assert_eq!(db.resolve("secure-shell"), Some(22));
        assert_eq!(db.resolve("sapmsBIN"), Some(3600));
    }

    #[test]
    fn skips_udp_and_malformed_lines() {
        let db = Services::parse(SAMPLE);
        assert_eq!(db.resolve("domain"), None);
        assert_eq!(db.resolve("bad"), None);
        assert_eq!(db.resolve("bad2"), None);
        assert_eq!(db.resolve("bad3"), None);
        assert_eq!(db.resolve("noproto"), None);
        assert_eq!(db.resolve("comment"), None);
        assert_eq!(db.resolve("with"), None);
    }

    #[test]
    fn first_entry_wins_and_database_beats_builtin() {
        let db = Services::parse(SAMPLE);
        assert_eq!(db.resolve("dup"), Some(100));
        assert_eq!(db.resolve("sapdp00"), Some(3299));
        assert_eq!(db.resolve("sapdp01"), Some(3201));
    }

    #[test]
    fn names_are_case_sensitive() {
        let db = Services::parse(SAMPLE);
        assert_eq!(db.resolve("TELNET"), None);
        assert_eq!(db.resolve("sapmsbin"), None);
    }

    #[test]
    fn numbers() {
        let db = Services::builtin_only();
        assert_eq!(db.resolve("1"), Some(1));
        assert_eq!(db.resolve("3200"), Some(3200));
        assert_eq!(db.resolve("03200"), Some(3200));
        assert_eq!(db.resolve("65535"), Some(65535));
        assert_eq!(db.resolve("0000000000000000000000003299"), Some(3299));
    }

    #[test]
    fn h30_junk_is_rejected() {
        let db = Services::builtin_only();
        for junk in [
            "",
            "0",
            "00",
            "65536",
            "99999999999999999999",
            "-1",
            "+3200",
            " 3200",
            "3200 ",
            "3200abc",
            "0x0c80",
            "sapdp100",
            "sapdp99999",
            "sapdp1",
            "sapdp",
            "sapdp0a",
            "sapdp00x",
            "SAPDP00",
            "someservice",
            "sapms00",
            "\u{0663}\u{0662}",
        ] {
            assert_eq!(db.resolve(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn builtin_sap_names() {
        assert_eq!(builtin_sap_service("sapdp00"), Some(3200));
        assert_eq!(builtin_sap_service("sapdp01"), Some(3201));
        assert_eq!(builtin_sap_service("sapdp99"), Some(3299));
        assert_eq!(builtin_sap_service("sapgw00"), Some(3300));
        assert_eq!(builtin_sap_service("sapgw42"), Some(3342));
        assert_eq!(builtin_sap_service("sapdp00s"), Some(4700));
        assert_eq!(builtin_sap_service("sapdp99s"), Some(4799));
        assert_eq!(builtin_sap_service("sapgw07s"), Some(4807));
        assert_eq!(builtin_sap_service("sapdp100"), None);
        assert_eq!(builtin_sap_service("sapgw1s"), None);
        assert_eq!(builtin_sap_service("sapdp00ss"), None);
        assert_eq!(builtin_sap_service("xsapdp00"), None);
        let db = Services::builtin_only();
        assert_eq!(db.resolve("sapgw00s"), Some(4800));
    }

    #[test]
    fn load_missing_file_gives_builtin_only() {
        let db = Services::load(Path::new("/nonexistent/services/file"));
        assert_eq!(db.resolve("telnet"), None);
        assert_eq!(db.resolve("sapdp98"), Some(3298));
    }

    #[test]
    fn load_reads_a_file() {
        let dir = std::env::temp_dir().join(format!("svc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("services");
        std::fs::write(&path, b"niping 3298/tcp\n\xff\xfe junk\n").unwrap();
        let db = Services::load(&path);
        assert_eq!(db.resolve("niping"), Some(3298));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
