//! Reverse-invoke metrics and readiness: the calls the `ri` code makes when links and
//! streams come and go. Each is a no-op when `--metrics` is off.
//!
//! Wiring (both modes unless said):
//! - [`server_mode`] once at start of a LAN router (`-i` with `server`): from then on
//!   `/readyz` answers 200 only while at least one link is registered with the DMZ router.
//! - [`link_up`] when a link is registered (LAN side: the DMZ router accepted it; DMZ side:
//!   a LAN router's link was accepted), [`link_down`] when it is lost or closed;
//!   [`link_reconnect`] when a lost link is established again.
//! - [`stream_opened`] / [`stream_closed`] per multiplexed stream on a link.
//! - [`heartbeat_rtt`] per answered heartbeat.
//! - DMZ side: [`server_registered`] / [`server_unregistered`] per LAN router identity
//!   (a re-registration that replaces the old one atomically calls neither).
//!
//! Link numbers are whatever the `ri` code uses to tell its links apart; keep them bounded
//! (reuse numbers within `conn_pool_size`), since each is a label value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::families::LinkLabels;
use super::get;

/// Set once a LAN router starts: readiness then needs a registered link.
static SERVER_MODE: AtomicBool = AtomicBool::new(false);

/// Declares this process a reverse-invoke server (LAN router): readiness now requires a
/// registration with the DMZ router.
pub fn server_mode() {
    SERVER_MODE.store(true, Ordering::Relaxed);
}

/// True when this process is a reverse-invoke server (LAN router).
pub fn is_server_mode() -> bool {
    SERVER_MODE.load(Ordering::Relaxed)
}

/// A link is up and registered.
pub fn link_up(link: u64) {
    if let Some(m) = get() {
        m.ri_links_up.inc();
        m.ri_link_streams.get_or_create(&LinkLabels { link }).set(0);
    }
}

/// A link is gone; its per-link series goes with it.
pub fn link_down(link: u64) {
    if let Some(m) = get() {
        m.ri_links_up.dec();
        m.ri_link_streams.remove(&LinkLabels { link });
    }
}

/// A lost link was established again.
pub fn link_reconnect() {
    if let Some(m) = get() {
        m.ri_link_reconnects.inc();
    }
}

/// A stream was opened on `link`.
pub fn stream_opened(link: u64) {
    if let Some(m) = get() {
        m.ri_link_streams.get_or_create(&LinkLabels { link }).inc();
    }
}

/// A stream on `link` ended.
pub fn stream_closed(link: u64) {
    if let Some(m) = get() {
        // `get`, not `get_or_create`: a stream outliving its link must not revive the series.
        if let Some(gauge) = m.ri_link_streams.get(&LinkLabels { link }) {
            gauge.dec();
        }
    }
}

/// A heartbeat was answered after `rtt`.
pub fn heartbeat_rtt(rtt: Duration) {
    if let Some(m) = get() {
        m.ri_heartbeat_rtt.observe(rtt.as_secs_f64());
    }
}

/// DMZ side: a LAN router registered.
pub fn server_registered() {
    if let Some(m) = get() {
        m.ri_registered_servers.inc();
    }
}

/// DMZ side: a LAN router's registration ended.
pub fn server_unregistered() {
    if let Some(m) = get() {
        m.ri_registered_servers.dec();
    }
}

/// Ready as far as reverse invoke goes: always outside server mode; in server mode while at
/// least one link is registered.
pub fn ready() -> bool {
    !is_server_mode() || get().is_some_and(|m| m.ri_links_up.get() > 0)
}
