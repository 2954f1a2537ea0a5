//! The calls the router makes into the metrics: one line at each place where something
//! countable happens. Each is a no-op (one atomic load) when `--metrics` is off.
//!
//! A connection's outcome (`saprouter_sessions_total`) is what its session function returns,
//! a [`SessionEnd`]: [`session`] wraps the connection's task and counts that value once, when
//! the connection ends.

use std::future::Future;
use std::time::Instant;

use super::families::{
    AdminLabels, DenialLabels, Metrics, ResultLabels, SessionLabels, SeverityLabels,
};
use super::get;
use super::status::RouteClosed;
use crate::ni::admin::AdminCommand;
use crate::ni::rterr::{rc, RtErr};

/// How a connection ended, as far as the metrics care. The session decides it where it
/// happens (a route stands, an error is sent, an admin request arrives) and returns it; the
/// first thing that happened is what it returns (an admin request refused with -94 stays
/// `Admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Nothing happened that we saw (the client closed, or sent nothing usable in time
    /// and got no answer).
    Closed,
    /// The route stood (`NI_PONG` sent).
    Routed,
    /// An admin request arrived.
    Admin,
    /// An error answer with this return code (-94 counts as `denied`).
    Failed(i32),
}

impl SessionEnd {
    /// The end of a session that passed a downstream router's refusal (an `NI_RTERR`
    /// payload) to its client: failed with the refusal's return code.
    pub fn forwarded(answer: &[u8]) -> Self {
        let code = RtErr::decode(answer)
            .map(|e| e.return_code)
            .unwrap_or(rc::NIEROUT_INTERN);
        SessionEnd::Failed(code)
    }

    fn labels(self) -> SessionLabels {
        let (outcome, rc) = match self {
            SessionEnd::Closed => ("closed", 0),
            SessionEnd::Routed => ("routed", 0),
            SessionEnd::Admin => ("admin", 0),
            SessionEnd::Failed(code) if code == rc::NIEROUT_PERM_DENIED => ("denied", code),
            SessionEnd::Failed(code) => ("error", code),
        };
        SessionLabels { outcome, rc }
    }
}

/// Counts one connection's end now (a connection refused at accept has no session to wrap).
pub fn session_ended(end: SessionEnd) {
    if let Some(m) = get() {
        count(m, end);
    }
}

fn count(m: &Metrics, end: SessionEnd) {
    m.sessions.get_or_create(&end.labels()).inc();
}

/// Wraps one connection's task (`tracker.spawn(metrics::session(session::run_with(..)))`), so
/// the end it returns is counted once, when it ends.
pub async fn session<F: Future<Output = SessionEnd>>(task: F) {
    session_ended(task.await)
}

/// The start of a route request, for the set-up latency.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimer(Instant);

/// Call when a route request arrives; hand the result to [`route_established`].
pub fn route_timer() -> RouteTimer {
    RouteTimer(Instant::now())
}

/// The route stands (`NI_PONG` sent).
pub fn route_established(timer: RouteTimer) {
    if let Some(m) = get() {
        m.observe_setup(timer.0.elapsed());
    }
}

/// A route ended: adds its byte counts (once per route, nothing per read or write).
pub fn route_closed(route: impl Into<RouteClosed>) {
    if let Some(m) = get() {
        let outcome = route.into();
        m.bytes_to_server.inc_by(outcome.to_server);
        m.bytes_to_client.inc_by(outcome.to_client);
    }
}

/// The table refused a route at `line` (`None`: no line matched).
pub fn route_denied(line: Option<usize>) {
    denial(line.map_or_else(|| "none".to_string(), |n| n.to_string()));
}

/// A route to the router's own listener was refused.
pub fn route_denied_own_port() {
    denial("own_port".to_string());
}

fn denial(line: String) {
    if let Some(m) = get() {
        m.denials.get_or_create(&DenialLabels { line }).inc();
    }
}

/// A connection was closed at accept: its address serves a penalty.
pub fn penalty_refused() {
    if let Some(m) = get() {
        m.penalty_refused.inc();
    }
}

/// An admin request arrived (`None`: it did not decode).
pub fn admin_request(command: Option<&AdminCommand>) {
    if let Some(m) = get() {
        let labels = AdminLabels {
            command: command.map_or("malformed", command_name),
            opcode: command.map_or(0, AdminCommand::code),
        };
        m.admin.get_or_create(&labels).inc();
    }
}

fn command_name(command: &AdminCommand) -> &'static str {
    match command {
        AdminCommand::Info { .. } => "info",
        AdminCommand::NewRoutTab => "reload",
        AdminCommand::ToggleTrace => "toggle_trace",
        AdminCommand::Stop => "stop",
        AdminCommand::Cancel(_) => "cancel",
        AdminCommand::DumpBuffers => "dump_buffers",
        AdminCommand::FlushBuffers => "flush_buffers",
        AdminCommand::SoftShutdown => "soft_shutdown",
        AdminCommand::SetTracePeer(_) => "set_trace_peer",
        AdminCommand::ClearTracePeer(_) => "clear_trace_peer",
        AdminCommand::TraceConnection(_) => "trace_connection",
        AdminCommand::TraceConnection2(_) => "trace_connection2",
        AdminCommand::HideErrors => "hide_errors",
    }
}

/// A table reload (`-n`, SIGHUP) finished.
pub fn reload_finished(success: bool) {
    if let Some(m) = get() {
        record_reload(m, success);
    }
}

/// The table checker's findings for the table now in force (start-up, reload).
pub fn routtab_findings(errors: usize, warnings: usize, notes: usize) {
    if let Some(m) = get() {
        for (severity, n) in [("error", errors), ("warning", warnings), ("note", notes)] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            m.routtab_findings
                .get_or_create(&SeverityLabels { severity })
                .set(n);
        }
    }
}

fn record_reload(m: &Metrics, success: bool) {
    let result = if success { "success" } else { "failure" };
    m.reloads.get_or_create(&ResultLabels { result }).inc();
    m.reload_last_success.set(i64::from(success));
    m.reload_last_time.set(super::families::unix_now());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_end_labels() {
        assert_eq!(SessionEnd::Failed(-94).labels().outcome, "denied");
        assert_eq!(SessionEnd::Failed(-5).labels().outcome, "error");
        assert_eq!(SessionEnd::Failed(-5).labels().rc, -5);
        assert_eq!(SessionEnd::Routed.labels().rc, 0);
        assert_eq!(SessionEnd::Closed.labels().outcome, "closed");
        assert_eq!(SessionEnd::Admin.labels().outcome, "admin");
    }

    #[test]
    fn forwarded_refusal_keeps_its_code() {
        let answer = RtErr::error(40, -94, &Default::default()).encode();
        assert_eq!(SessionEnd::forwarded(&answer), SessionEnd::Failed(-94));
        assert_eq!(
            SessionEnd::forwarded(b"not an NI_RTERR"),
            SessionEnd::Failed(rc::NIEROUT_INTERN)
        );
    }

    #[test]
    fn each_end_counted_once() {
        let m = Metrics::new();
        count(&m, SessionEnd::Admin);
        count(&m, SessionEnd::Failed(-100));
        count(&m, SessionEnd::Failed(-100));
        let text = m.encode();
        assert!(text.contains("saprouter_sessions_total{outcome=\"admin\",rc=\"0\"} 1"));
        assert!(text.contains("saprouter_sessions_total{outcome=\"error\",rc=\"-100\"} 2"));
    }

    #[test]
    fn reload_result() {
        let m = Metrics::new();
        record_reload(&m, false);
        assert_eq!(m.reload_last_success.get(), 0);
        assert!(m.reload_last_time.get() > 0.0);
        record_reload(&m, true);
        let text = m.encode();
        assert!(text.contains("saprouter_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("saprouter_reloads_total{result=\"success\"} 1"));
    }
}
