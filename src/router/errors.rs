//! The errors a router sends to its clients: SAP's return codes and texts, wrapped in the
//! 21-field `*ERR*` record with this router's location and the local time.
//!
//! The record's module and line fields carry the SAP source file and line that raises an
//! error of that kind in SAP's router (see [`SapSite`]): scanners such as nmap and pysap's
//! fingerprinting key on them. Where this router raised the error goes to the trace.

use crate::ni::admin::ROUTER_VERSION;
use crate::ni::rterr::{rc, rc_text, ErrorRecord, RtErr};
use crate::ni::NI_VERSION;

/// Kernel release reported in error records (scanners key on digits here).
pub const RELEASE: &str = "753";
/// Component field of every record.
pub const COMPONENT: &str = "NI (network interface)";

/// One refusal or failure, before it is dressed as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFailure {
    /// SAP return code.
    pub rc: i32,
    /// Short text (ERROR line).
    pub error: String,
    /// Detail text (DETAIL line).
    pub detail: String,
    /// This router's source module that raised it (for the trace, not the wire).
    pub module: &'static str,
    /// This router's source line that raised it (for the trace, not the wire).
    pub line: u32,
    /// Failing system call, errno and its text, when a system call failed.
    pub system_call: Option<(&'static str, i32, String)>,
}

impl RouteFailure {
    /// A failure with a code, short text and detail; `module`/`line` say where it was raised.
    pub fn new(
        rc: i32,
        error: impl Into<String>,
        detail: impl Into<String>,
        module: &'static str,
        line: u32,
    ) -> Self {
        Self {
            rc,
            error: error.into(),
            detail: detail.into(),
            module,
            line,
            system_call: None,
        }
    }

    /// SAP's site for this error (the MODULE and LINE fields of the record), from its
    /// return code, text and detail.
    pub fn sap_site(&self) -> SapSite {
        SapSite::classify(self.rc, &self.error, &self.detail)
    }

    /// Adds the failing system call and its OS error.
    pub fn with_os_error(mut self, call: &'static str, err: &std::io::Error) -> Self {
        let errno = err.raw_os_error().unwrap_or(0);
        let text = os_error_text(err);
        self.system_call = Some((call, errno, text));
        self
    }
}

/// Where SAP's router raises one kind of error: the source module (as older releases
/// print it, a bare file name, which is what nmap's signatures expect) and a line.
///
/// Lines are those of release 7.53 where a published record shows them (pre-route timeout,
/// packet too big, unknown opcode, invalid routes, client version, host unknown, empty
/// host); the others are chosen to lie in the same file near related code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SapSite {
    /// SAP's source file (`nirout.cpp`, `nibuf.cpp`, ...).
    pub module: &'static str,
    /// Line in that file.
    pub line: u32,
}

impl SapSite {
    const fn new(module: &'static str, line: u32) -> Self {
        Self { module, line }
    }

    /// No route within `-W` after the connect (`RTPENDLIST::timeoutPend`, CONNECTED).
    pub const PRE_ROUTE_TIMEOUT: Self = Self::new("nirout.cpp", 8139);
    /// A route's next hop did not connect or answer within `-W` (ROUTED).
    pub const ROUTE_TIMEOUT: Self = Self::new("nirout.cpp", 8151);
    /// First message longer than the first-message limit (`NiBufIIn`).
    pub const PACKET_TOO_BIG: Self = Self::new("nibuf.cpp", 2961);
    /// Unknown or malformed control message before the route (`NiBufIProcMsg`).
    pub const CONTROL: Self = Self::new("nibuf.cpp", 2300);
    /// First message neither route nor admin request (`NiRClientHandle: route expected`).
    pub const ROUTE_EXPECTED: Self = Self::new("nirout.cpp", 3513);
    /// Route without a route string or with too few entries.
    pub const NO_ROUTE: Self = Self::new("nirout.cpp", 3714);
    /// Route string whose declared length or entries do not match what is present.
    pub const ROUTE_LENGTH: Self = Self::new("nirout.cpp", 3721);
    /// Route header fields out of range (info version, rest nodes, truncated header).
    pub const ROUTE_HEADER: Self = Self::new("nirout.cpp", 3680);
    /// Offset not on the next hop's entry.
    pub const ROUTE_OFFSET: Self = Self::new("nirout.cpp", 3757);
    /// NI version in the route too old (-96).
    pub const CLIENT_VERSION: Self = Self::new("nirout.cpp", 3898);
    /// Talk mode not allowed (-101).
    pub const TALK_MODE: Self = Self::new("nirout.cpp", 3905);
    /// Host name lookup failed (`getaddrinfo`).
    pub const HOST_UNKNOWN: Self = Self::new("niuxi.c", 1773);
    /// Empty host name (`hostname 'NiHLGetNodeAddr' unknown`).
    pub const HOST_EMPTY: Self = Self::new("nixxhl.cpp", 138);
    /// Service name lookup failed (`getservbyname`).
    pub const SERVICE_UNKNOWN: Self = Self::new("niuxi.c", 1912);
    /// Connect to the next hop failed (`NiPConnect2`).
    pub const CONNECT: Self = Self::new("nixxi.cpp", 3431);
    /// The route table (or reverse-invoke policy) denies the route (-94).
    pub const PERMISSION: Self = Self::new("nirout.cpp", 2569);
    /// An established route ended by the partner (-95).
    pub const CONN_BROKEN: Self = Self::new("nirout.cpp", 5174);
    /// Route cancelled by the administrator (-97).
    pub const CANCELED: Self = Self::new("nirout.cpp", 6286);
    /// Router shutting down (-98).
    pub const SHUTDOWN: Self = Self::new("nirout.cpp", 6391);
    /// Info request refused (-99).
    pub const INFO_DENIED: Self = Self::new("nirout.cpp", 4625);
    /// Client table full (-100).
    pub const CLIENT_TABLE: Self = Self::new("nirout.cpp", 1563);
    /// Reverse-invoke client not available (-102).
    pub const NO_CLIENT: Self = Self::new("nirout.cpp", 7318);
    /// SNC (here: TLS) failure (-104).
    pub const SNC: Self = Self::new("nirout.cpp", 7785);
    /// Any other internal error.
    pub const INTERNAL: Self = Self::new("nirout.cpp", 3549);

    /// The site SAP's router reports for an error with this return code, short text and
    /// detail (the detail's leading SAP function name tells framing from routing).
    pub fn classify(code: i32, error: &str, detail: &str) -> Self {
        match code {
            rc::NIETIMEOUT if detail.contains("(CONNECTED)") => Self::PRE_ROUTE_TIMEOUT,
            rc::NIETIMEOUT => Self::ROUTE_TIMEOUT,
            rc::NIEVERSION => Self::CONTROL,
            rc::NIEROUT_INTERN if detail.starts_with("NiBufIIn") => Self::PACKET_TOO_BIG,
            rc::NIEROUT_INTERN if detail.starts_with("NiBufIProcMsg") => Self::CONTROL,
            rc::NIEROUT_INTERN if detail.ends_with("route expected") => Self::ROUTE_EXPECTED,
            rc::NIEROUT_INTERN => match detail.strip_prefix(INVALID_ROUTE) {
                Some(why) => Self::invalid_route(why),
                None => Self::INTERNAL,
            },
            rc::NIEROUT_HOST_UNKNOWN if error.contains("'NiHLGetNodeAddr'") => Self::HOST_EMPTY,
            rc::NIEROUT_HOST_UNKNOWN => Self::HOST_UNKNOWN,
            rc::NIEROUT_SERV_UNKNOWN => Self::SERVICE_UNKNOWN,
            rc::NIEROUT_CONN_REFUSED | rc::NIECONN_REFUSED => Self::CONNECT,
            rc::NIEROUT_PERM_DENIED => Self::PERMISSION,
            rc::NIEROUT_CONN_BROKEN | rc::NIECONN_BROKEN => Self::CONN_BROKEN,
            rc::NIEROUT_VERSION => Self::CLIENT_VERSION,
            rc::NIEROUT_CANCELED => Self::CANCELED,
            rc::NIEROUT_SHUTDOWN => Self::SHUTDOWN,
            rc::NIEROUT_INFO_DENIED => Self::INFO_DENIED,
            rc::NIEROUT_OVERFLOW => Self::CLIENT_TABLE,
            rc::NIEROUT_MODE_DENIED => Self::TALK_MODE,
            rc::NIEROUT_NOCLIENT => Self::NO_CLIENT,
            rc::NIEROUT_SNC_FAILURE | rc::NIESNC_FAILURE => Self::SNC,
            _ => Self::INTERNAL,
        }
    }

    /// The site of an invalid route, from the reason after [`INVALID_ROUTE`] (the text of
    /// `ni::route::RouteError`).
    fn invalid_route(why: &str) -> Self {
        if why.starts_with("no route") {
            Self::NO_ROUTE
        } else if why.starts_with("invalid offset") {
            Self::ROUTE_OFFSET
        } else if why.starts_with("route length")
            || why.starts_with("unterminated")
            || why.contains("entries declared")
        {
            Self::ROUTE_LENGTH
        } else {
            Self::ROUTE_HEADER
        }
    }
}

/// How the detail of an invalid route begins; the reason follows in parentheses.
pub const INVALID_ROUTE: &str = "NiRRouteRepl: invalid route received (";

/// The OS's text for an error, without Rust's " (os error N)" suffix.
fn os_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Builds `*ERR*` records for one router.
#[derive(Debug, Clone)]
pub struct ErrorFactory {
    /// This router's host name, for the location field.
    pub host: String,
}

impl ErrorFactory {
    /// A factory for the local host's name.
    pub fn local() -> Self {
        Self {
            host: local_hostname(),
        }
    }

    /// The full record SAP's router sends.
    pub fn record(&self, failure: &RouteFailure) -> ErrorRecord {
        let site = failure.sap_site();
        let (call, errno, errno_text) = match &failure.system_call {
            Some((call, errno, text)) => {
                let errno = if *errno == 0 {
                    String::new()
                } else {
                    errno.to_string()
                };
                (call.to_string(), errno, text.clone())
            }
            None => (String::new(), String::new(), String::new()),
        };
        ErrorRecord {
            counter: "1".into(),
            error: failure.error.clone(),
            return_code: failure.rc.to_string(),
            component: COMPONENT.into(),
            release: RELEASE.into(),
            version: NI_VERSION.to_string(),
            module: site.module.into(),
            line: site.line.to_string(),
            detail: failure.detail.clone(),
            time: ctime_now(),
            system_call: call,
            errno,
            errno_text,
            error_count: "1".into(),
            location: format!("SAProuter {ROUTER_VERSION} on '{}'", self.host),
        }
    }

    /// The generic record of `-Z`: rc -92 "route could not be established", no details.
    pub fn hidden_record(&self) -> ErrorRecord {
        ErrorRecord {
            counter: "1".into(),
            error: "route could not be established".into(),
            return_code: rc::NIEROUT_CONN_REFUSED.to_string(),
            component: COMPONENT.into(),
            release: RELEASE.into(),
            time: ctime_now(),
            location: "SAProuter".into(),
            ..ErrorRecord::default()
        }
    }

    /// The NI_RTERR payload for `failure`, hidden when `hide` is set.
    pub fn message(&self, failure: &RouteFailure, hide: bool) -> Vec<u8> {
        // The wire carries SAP's module and line; this router's own place goes here.
        tracing::debug!(
            rc = failure.rc,
            error = %failure.error,
            source = %format_args!("{}:{}", failure.module, failure.line),
            "error record sent"
        );
        if hide {
            RtErr::error(NI_VERSION, rc::NIEROUT_CONN_REFUSED, &self.hidden_record()).encode()
        } else {
            RtErr::error(NI_VERSION, failure.rc, &self.record(failure)).encode()
        }
    }
}

/// SAP's standard text for `code`, or a generic one.
pub fn standard_text(code: i32) -> &'static str {
    rc_text(code).unwrap_or("NI-internal error")
}

pub use crate::timefmt::ctime_now;

/// The machine's host name (the kernel's node name, which `gethostname` returns), or
/// `localhost` when it is empty.
pub fn local_hostname() -> String {
    let name = rustix::system::uname();
    let name = name.nodename().to_string_lossy();
    if name.is_empty() {
        return "localhost".into();
    }
    name.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_the_kernels() {
        let name = local_hostname();
        assert!(!name.is_empty());
        if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert_eq!(name, kernel.trim());
        }
    }

    #[test]
    fn ctime_shape() {
        let t = ctime_now();
        // "Www Mmm dd hh:mm:ss yyyy" is always 24 characters.
        assert_eq!(t.len(), 24, "{t:?}");
        assert_eq!(&t[3..4], " ");
    }

    #[test]
    fn record_fields() {
        let f = ErrorFactory { host: "gw".into() };
        let rec = f.record(&RouteFailure::new(-94, "denied", "why", "m.rs", 7));
        assert_eq!(rec.return_code, "-94");
        // SAP's module and line on the wire, never this router's source location.
        assert_eq!(
            (rec.module.as_str(), rec.line.as_str()),
            ("nirout.cpp", "2569")
        );
        assert_eq!(rec.location, "SAProuter 40.4 on 'gw'");
        assert_eq!(rec.version, "40");
        let hidden = f.hidden_record();
        assert_eq!(hidden.return_code, "-92");
        assert!(hidden.detail.is_empty() && hidden.module.is_empty());
    }

    /// One case per kind: return code, short text, detail → SAP module and line.
    #[test]
    fn sap_site_per_kind() {
        let cases: &[(i32, &str, &str, &str, u32)] = &[
            (
                -5,
                "connection timed out",
                "RTPENDLIST::timeoutPend: no route received within 5s (CONNECTED)",
                "nirout.cpp",
                8139,
            ),
            (
                -5,
                "connection to h:1 timed out",
                "RTPENDLIST::timeoutPend: could not establish connection within 5s (ROUTED)",
                "nirout.cpp",
                8151,
            ),
            (
                -93,
                "Network packet too big",
                "NiBufIIn: message length 218762506 exceeds max (10024)",
                "nibuf.cpp",
                2961,
            ),
            (
                -13,
                "invalid client version",
                "NiBufIProcMsg: unknown opcode 3 received",
                "nibuf.cpp",
                2300,
            ),
            (
                -93,
                "internal error",
                "NiBufIProcMsg: not an NI_RTERR message",
                "nibuf.cpp",
                2300,
            ),
            (
                -93,
                "internal error",
                "NiRClientHandle: route expected",
                "nirout.cpp",
                3513,
            ),
            (
                -93,
                "internal error",
                "NiRRouteRepl: invalid answer",
                "nirout.cpp",
                3549,
            ),
            (
                -90,
                "hostname 'non.existent.dom' unknown",
                "NiHL6GetNodeAddr: x",
                "niuxi.c",
                1773,
            ),
            (
                -90,
                "hostname 'NiHLGetNodeAddr' unknown",
                "NiHLGetNodeAddr: hostname empty",
                "nixxhl.cpp",
                138,
            ),
            (
                -91,
                "service 'x' unknown",
                "NiISrvToNo: service 'x' unknown",
                "niuxi.c",
                1912,
            ),
            (
                -92,
                "partner 'h:1' not reached",
                "NiPConnect2: 127.0.0.1:1",
                "nixxi.cpp",
                3431,
            ),
            (
                -94,
                "h: route permission denied (a to b, 1)",
                "",
                "nirout.cpp",
                2569,
            ),
            (-95, "connection terminated", "", "nirout.cpp", 5174),
            (-96, "invalid client version", "", "nirout.cpp", 3898),
            (-97, "", "", "nirout.cpp", 6286),
            (-98, "", "", "nirout.cpp", 6391),
            (-99, "", "", "nirout.cpp", 4625),
            (-100, "max no. of clients reached", "", "nirout.cpp", 1563),
            (-101, "Talkmode not allowed", "", "nirout.cpp", 3905),
            (-102, "", "", "nirout.cpp", 7318),
            (-104, "SNC required", "", "nirout.cpp", 7785),
        ];
        for &(code, error, detail, module, line) in cases {
            let site = SapSite::classify(code, error, detail);
            assert_eq!(
                (site.module, site.line),
                (module, line),
                "{code} {error:?} {detail:?}"
            );
        }
    }

    /// Failures travel in `Result`s: they must stay within clippy's large-error bound.
    #[test]
    fn failure_stays_small() {
        assert!(std::mem::size_of::<RouteFailure>() < 128);
    }

    /// Invalid routes: the reason (the route decoder's error text) picks the line.
    #[test]
    fn invalid_route_sites() {
        let cases = [
            ("no route (entries 0, length 0)", 3714),
            ("route length 1 but 0 bytes present", 3721),
            ("unterminated field in entry 1", 3721),
            ("3 entries declared, 2 present", 3721),
            ("invalid offset 0", 3757),
            ("invalid rest nodes 0 for 2 entries", 3680),
            ("route header truncated (20 bytes)", 3680),
        ];
        for (why, line) in cases {
            let detail = format!("{INVALID_ROUTE}{why})");
            let site = SapSite::classify(-93, "internal error", &detail);
            assert_eq!((site.module, site.line), ("nirout.cpp", line), "{why}");
        }
    }

    #[test]
    fn os_error_suffix_removed() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&e), "Connection refused");
    }
}
