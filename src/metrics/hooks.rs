//! The calls the router makes into the metrics: one line at each place where something
//! countable happens. Each is a no-op (one atomic load) when `--metrics` is off.
//!
//! A connection's outcome (`saprouter_sessions_total`) is decided where it happens (a route
//! stands, an error is sent, an admin request arrives) but counted once, when the connection
//! ends: [`session`] wraps the connection's task and keeps its verdict in a task-local cell;
//! the first verdict set wins (an admin request refused with -94 stays `admin`).

use std::cell::Cell;
use std::future::Future;
use std::time::Instant;

use super::families::{
    AdminLabels, DenialLabels, Metrics, ResultLabels, SessionLabels, SeverityLabels,
};
use super::get;
use super::status::RouteClosed;
use crate::ni::admin::AdminCommand;
use crate::ni::rterr::{rc, RtErr};

/// How a connection ended, as far as the metrics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Nothing happened that we saw (the client closed, or sent nothing usable in time
    /// and got no answer).
    Closed,
    Routed,
    Admin,
    /// An error answer with this return code (-94 counts as `denied`).
    Failed(i32),
}

impl Verdict {
    fn labels(self) -> SessionLabels {
        let (outcome, rc) = match self {
            Verdict::Closed => ("closed", 0),
            Verdict::Routed => ("routed", 0),
            Verdict::Admin => ("admin", 0),
            Verdict::Failed(code) if code == rc::NIEROUT_PERM_DENIED => ("denied", code),
            Verdict::Failed(code) => ("error", code),
        };
        SessionLabels { outcome, rc }
    }
}

tokio::task_local! {
    static VERDICT: Cell<Verdict>;
}

/// Sets the connection's verdict unless one is set already. Outside [`session`] (a caller
/// that did not wrap its task) the verdict is counted at once instead, so nothing is lost.
fn decide(verdict: Verdict) {
    let in_scope = VERDICT.try_with(|cell| {
        if cell.get() == Verdict::Closed {
            cell.set(verdict);
        }
    });
    if in_scope.is_err() {
        if let Some(m) = get() {
            m.sessions.get_or_create(&verdict.labels()).inc();
        }
    }
}

/// Wraps one connection's task (`tracker.spawn(metrics::session(session::run_with(..)))`), so its
/// outcome is counted once when it ends.
pub fn session<F: Future>(task: F) -> impl Future<Output = F::Output> {
    VERDICT.scope(Cell::new(Verdict::Closed), async move {
        let out = task.await;
        if let Some(m) = get() {
            let verdict = VERDICT.try_with(Cell::get).unwrap_or(Verdict::Closed);
            m.sessions.get_or_create(&verdict.labels()).inc();
        }
        out
    })
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
    decide(Verdict::Routed);
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

/// An `NI_RTERR` with `rc` was sent to the client.
pub fn failure_sent(code: i32) {
    decide(Verdict::Failed(code));
}

/// A downstream router's refusal (an `NI_RTERR` payload) was passed to the client.
pub fn downstream_refused(answer: &[u8]) {
    let code = RtErr::decode(answer)
        .map(|e| e.return_code)
        .unwrap_or(rc::NIEROUT_INTERN);
    decide(Verdict::Failed(code));
}

/// A connection was closed at accept: its address serves a penalty.
pub fn penalty_refused() {
    if let Some(m) = get() {
        m.penalty_refused.inc();
    }
}

/// An admin request arrived (`None`: it did not decode).
pub fn admin_request(command: Option<&AdminCommand>) {
    decide(Verdict::Admin);
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
    fn verdict_labels() {
        assert_eq!(Verdict::Failed(-94).labels().outcome, "denied");
        assert_eq!(Verdict::Failed(-5).labels().outcome, "error");
        assert_eq!(Verdict::Failed(-5).labels().rc, -5);
        assert_eq!(Verdict::Routed.labels().rc, 0);
    }

    #[tokio::test]
    async fn first_verdict_wins() {
        let seen = VERDICT
            .scope(Cell::new(Verdict::Closed), async {
                decide(Verdict::Admin);
                decide(Verdict::Failed(-94));
                VERDICT.with(Cell::get)
            })
            .await;
        assert_eq!(seen, Verdict::Admin);
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
