//! The errors a router sends to its clients: SAP's return codes and texts, wrapped in the
//! 21-field `*ERR*` record with this router's location and the local time.

use crate::ni::rterr::{rc, rc_text, ErrorRecord, RtErr};
use crate::ni::NI_VERSION;

/// The version this router reports in its location (`SAProuter 40.4 on 'host'`).
pub const ROUTER_VERSION: &str = "40.4";
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
    /// Source module (MODULE line).
    pub module: &'static str,
    /// Source line (LINE line).
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

    /// Adds the failing system call and its OS error.
    pub fn with_os_error(mut self, call: &'static str, err: &std::io::Error) -> Self {
        let errno = err.raw_os_error().unwrap_or(0);
        let text = os_error_text(err);
        self.system_call = Some((call, errno, text));
        self
    }
}

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
            module: failure.module.into(),
            line: failure.line.to_string(),
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

/// Local time as C's `ctime` prints it, without the newline: `Thu Jan  1 00:00:00 2015`.
pub fn ctime_now() -> String {
    chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// The machine's host name (as `gethostname` returns it), or `localhost`.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most len bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(rec.location, "SAProuter 40.4 on 'gw'");
        assert_eq!(rec.version, "40");
        let hidden = f.hidden_record();
        assert_eq!(hidden.return_code, "-92");
        assert!(hidden.detail.is_empty() && hidden.module.is_empty());
    }

    #[test]
    fn os_error_suffix_removed() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&e), "Connection refused");
    }
}
