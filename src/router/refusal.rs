//! Why a connection or a route is refused: the one [`Refusal`] type, and a named
//! constructor for each [`RouteFailure`] the router answers on its own account, so that
//! every place that refuses the same thing sends the same bytes.
//!
//! The constructors are `#[track_caller]`: the failure's trace location (its `module` and
//! `line`, never on the wire) is the place that refused, not this file.

use std::net::IpAddr;
use std::panic::Location;

use bytes::Bytes;

use super::errors::{RouteFailure, INVALID_ROUTE};
use crate::metrics::SessionEnd;
use crate::ni::frame::FrameTooBig;
use crate::ni::route::{RouteError, RouteHop};
use crate::ni::rterr::rc;

/// Why a connection or route does not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Answer the client with this failure (an `NI_RTERR` this router writes).
    Failure(RouteFailure),
    /// Pass a downstream router's `NI_RTERR` payload to the client as it is.
    Forward(Bytes),
}

impl From<RouteFailure> for Refusal {
    fn from(failure: RouteFailure) -> Self {
        Refusal::Failure(failure)
    }
}

impl Refusal {
    /// How the session ends when its client hears this refusal.
    pub fn end(&self) -> SessionEnd {
        match self {
            Refusal::Failure(failure) => SessionEnd::Failed(failure.rc),
            Refusal::Forward(answer) => SessionEnd::forwarded(answer),
        }
    }
}

/// How the detail of a refused reverse-invoke registration begins; the reason follows.
const REGISTRATION: &str = "NiRIRegister: ";

/// A failure raised by the caller of the constructor that calls this.
#[track_caller]
fn raised(rc: i32, error: impl Into<String>, detail: impl Into<String>) -> RouteFailure {
    let at = Location::caller();
    let file = at.file();
    let module = file.strip_prefix("src/").unwrap_or(file);
    RouteFailure::new(rc, error, detail, module, at.line())
}

impl RouteFailure {
    /// -100: the client table (`-C`) has no slot left.
    #[track_caller]
    pub fn table_full(max_clients: usize) -> Self {
        Self::overflow(format!(
            "NiRClientHandle: client table full ({max_clients} clients)"
        ))
    }

    /// -100, SAP's answer to a full router, with this `detail` (the route phase's caps).
    #[track_caller]
    pub fn overflow(detail: String) -> Self {
        raised(rc::NIEROUT_OVERFLOW, "max no. of clients reached", detail)
    }

    /// -5: the hop to `next` did not answer in time (SAP's "ROUTED" pending state);
    /// `waited_for` says what (a connection, the next router's answer) and `timeout` how long.
    #[track_caller]
    pub fn hop_timed_out(next: &RouteHop, waited_for: &str, timeout: std::time::Duration) -> Self {
        raised(
            rc::NIETIMEOUT,
            format!("connection to {}:{} timed out", next.host, next.service),
            format!(
                "RTPENDLIST::timeoutPend: {waited_for} within {}s (ROUTED)",
                super::session::fmt_secs(timeout.as_secs_f64())
            ),
        )
    }

    /// -94: `source` may not reach `next` (the table, an own port, exclusive reverse
    /// invoke); `router` is this router's host name, which SAP puts in the text.
    #[track_caller]
    pub fn denied(router: &str, source: IpAddr, next: &RouteHop) -> Self {
        raised(
            rc::NIEROUT_PERM_DENIED,
            format!(
                "{router}: route permission denied ({source} to {}, {})",
                next.host, next.service
            ),
            format!(
                "NiRRouteCheck: route permission denied ({source} to {}, {})",
                next.host, next.service
            ),
        )
    }

    /// -94 of `exclusive = yes`: `ip:port` is not a registered LAN router.
    #[track_caller]
    pub fn exclusive(router: &str, source: IpAddr, next: &RouteHop, ip: IpAddr, port: u16) -> Self {
        let mut failure = Self::denied(router, source, next);
        failure.detail = format!(
            "NiRRouteCheck: exclusive reverse invoke refused the route: {ip}:{port} is not a registered server (exclusive = yes)"
        );
        failure
    }

    /// -91: the route's service is no port and no known name.
    #[track_caller]
    pub fn service_unknown(service: &str) -> Self {
        raised(
            rc::NIEROUT_SERV_UNKNOWN,
            format!("service '{service}' unknown"),
            format!("NiISrvToNo: service '{service}' unknown"),
        )
        .with_syscall_text("getservbyname")
    }

    /// -90 for an empty host name: SAP's routers of NI version 40 name the lookup function
    /// where the host belongs (`hostname 'NiHLGetNodeAddr' unknown`), and clients and
    /// scanners expect exactly that text.
    #[track_caller]
    pub fn empty_host() -> Self {
        raised(
            rc::NIEROUT_HOST_UNKNOWN,
            "hostname 'NiHLGetNodeAddr' unknown",
            "NiHLGetNodeAddr: hostname empty",
        )
    }

    /// The failure for a route message that does not validate.
    #[track_caller]
    pub fn invalid_route(err: &RouteError) -> Self {
        let (error, detail) = match err {
            RouteError::NiVersion(v) => (
                "invalid client version".to_string(),
                format!("NiRExRouteCon: version {v} too old"),
            ),
            RouteError::TalkMode(_) => (
                "Talkmode not allowed".to_string(),
                format!("NiRRouteRepl: {err}"),
            ),
            _ => (
                "internal error".to_string(),
                format!("{INVALID_ROUTE}{err})"),
            ),
        };
        raised(err.return_code(), error, detail)
    }

    /// -93: the first message is longer than the first-message limit.
    #[track_caller]
    pub fn too_big(too_big: &FrameTooBig) -> Self {
        raised(
            rc::NIEROUT_INTERN,
            "Network packet too big",
            format!("NiBufIIn: {too_big}"),
        )
    }

    /// -5: no route within `-W` (`secs`, as SAP prints them) after the connect.
    #[track_caller]
    pub fn no_route_in_time(secs: &str) -> Self {
        raised(
            rc::NIETIMEOUT,
            "connection timed out",
            format!("RTPENDLIST::timeoutPend: no route received within {secs}s (CONNECTED)"),
        )
    }

    /// -93: more control messages before the route than a client needs.
    #[track_caller]
    pub fn control_flood() -> Self {
        Self::internal("NiRClientHandle: too many control messages before the route")
    }

    /// -93: the first message is neither a route, nor an admin request, nor a control
    /// message.
    #[track_caller]
    pub fn route_expected() -> Self {
        Self::internal("NiRClientHandle: route expected")
    }

    /// -93: an `NI_RTERR` control message that does not decode.
    #[track_caller]
    pub fn bad_control(why: &str) -> Self {
        Self::internal(format!("NiBufIProcMsg: {why}"))
    }

    /// -104: SAP's own SNC frames; this router speaks SNC as TLS.
    #[track_caller]
    pub fn sap_snc() -> Self {
        raised(
            rc::NIEROUT_SNC_FAILURE,
            "SNC not supported",
            "SAP SNC frames are not supported: this router speaks SNC as TLS 1.3 with X.509 certificates (p:<DN> names); connect with TLS and a client certificate",
        )
    }

    /// -13: a control message with an opcode this router does not know.
    #[track_caller]
    pub fn unknown_opcode(opcode: u8) -> Self {
        raised(
            rc::NIEVERSION,
            "invalid client version",
            format!("NiBufIProcMsg: unknown opcode {opcode} received"),
        )
    }

    /// A refused reverse-invoke registration (the `ACE` list, SNC, `max_servers`, an
    /// address conflict, a malformed handshake): return code `rc`, and the `reason` the LAN
    /// router hears and the logs show.
    #[track_caller]
    pub fn registration_refused(rc: i32, reason: impl Into<String>) -> Self {
        let detail = format!("{REGISTRATION}{}", reason.into());
        raised(rc, "reverse-invoke registration refused", detail)
    }

    /// The reason of a refused registration: its detail without SAP's function name.
    pub fn registration_reason(&self) -> &str {
        self.detail
            .strip_prefix(REGISTRATION)
            .unwrap_or(&self.detail)
    }

    /// -93 "internal error" with `detail`.
    #[track_caller]
    fn internal(detail: impl Into<String>) -> Self {
        raised(rc::NIEROUT_INTERN, "internal error", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(host: &str, service: &str) -> RouteHop {
        RouteHop {
            host: host.into(),
            service: service.into(),
            password: String::new(),
        }
    }

    #[test]
    fn raised_where_constructed() {
        let failure = RouteFailure::table_full(3);
        assert_eq!(failure.module, "router/refusal.rs");
        assert_eq!(failure.line, line!() - 2);
    }

    #[test]
    fn hop_timeout_text() {
        let next = hop("sap1", "3200");
        let wait = std::time::Duration::from_millis(5000);
        let failure = RouteFailure::hop_timed_out(&next, "no answer from the next router", wait);
        assert_eq!(failure.rc, rc::NIETIMEOUT);
        assert_eq!(failure.error, "connection to sap1:3200 timed out");
        assert_eq!(
            failure.detail,
            "RTPENDLIST::timeoutPend: no answer from the next router within 5s (ROUTED)"
        );
    }

    #[test]
    fn table_full_text() {
        let failure = RouteFailure::table_full(800);
        assert_eq!(failure.rc, rc::NIEROUT_OVERFLOW);
        assert_eq!(failure.error, "max no. of clients reached");
        assert_eq!(
            failure.detail,
            "NiRClientHandle: client table full (800 clients)"
        );
    }

    #[test]
    fn denied_names_source_and_target() {
        let next = hop("10.0.0.2", "3200");
        let failure = RouteFailure::denied("gw", "10.0.0.1".parse().unwrap(), &next);
        assert_eq!(failure.rc, rc::NIEROUT_PERM_DENIED);
        assert_eq!(
            failure.error,
            "gw: route permission denied (10.0.0.1 to 10.0.0.2, 3200)"
        );
        assert_eq!(
            failure.detail,
            "NiRRouteCheck: route permission denied (10.0.0.1 to 10.0.0.2, 3200)"
        );
        let excl = RouteFailure::exclusive(
            "gw",
            "10.0.0.1".parse().unwrap(),
            &next,
            "10.0.0.2".parse().unwrap(),
            3200,
        );
        assert_eq!(excl.error, failure.error);
        assert!(excl
            .detail
            .ends_with("10.0.0.2:3200 is not a registered server (exclusive = yes)"));
    }

    #[test]
    fn registration_text() {
        let failure = RouteFailure::registration_refused(-100, "max_servers (1) reached");
        assert_eq!(failure.error, "reverse-invoke registration refused");
        assert_eq!(failure.detail, "NiRIRegister: max_servers (1) reached");
        assert_eq!(failure.registration_reason(), "max_servers (1) reached");
    }

    #[test]
    fn session_ends() {
        let failure: Refusal = RouteFailure::route_expected().into();
        assert_eq!(failure.end(), SessionEnd::Failed(rc::NIEROUT_INTERN));
        let forward = Refusal::Forward(Bytes::from_static(b"garbage"));
        assert_eq!(forward.end(), SessionEnd::Failed(rc::NIEROUT_INTERN));
    }

    #[test]
    fn pre_route_texts() {
        assert_eq!(
            RouteFailure::no_route_in_time("2.5").detail,
            "RTPENDLIST::timeoutPend: no route received within 2.5s (CONNECTED)"
        );
        assert_eq!(RouteFailure::unknown_opcode(3).rc, rc::NIEVERSION);
        assert_eq!(RouteFailure::sap_snc().rc, rc::NIEROUT_SNC_FAILURE);
        assert_eq!(RouteFailure::bad_control("x").detail, "NiBufIProcMsg: x");
        assert_eq!(
            RouteFailure::service_unknown("sapdp99").system_call,
            Some(("getservbyname", 0, String::new()))
        );
    }
}
