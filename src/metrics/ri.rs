//! Reverse-invoke metrics and readiness.
//!
//! The state (links up, streams per link, registered LAN routers) is not counted by hooks
//! but read when `/metrics` or `/readyz` is asked: the `ri` code installs a [`Source`] that
//! reports it from its own bookkeeping, so the gauges cannot drift from the truth. Only
//! events are pushed: [`link_reconnect`] and [`heartbeat_rtt`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::families::{LinkLabels, Metrics};
use super::get;

/// The reverse-invoke state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// DMZ side: LAN routers registered now (`None` on a LAN router).
    pub registered_servers: Option<usize>,
    /// Links up now.
    pub links: Vec<LinkState>,
}

/// One link that is up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// LAN side: the DMZ router the link goes to (`address:port`); empty on the DMZ side.
    pub dmz: String,
    /// The link's number (the DMZ router's id for it).
    pub link: u64,
    /// Its open streams.
    pub streams: usize,
}

/// Reports the current state; called at scrape time, so it must be quick and never block
/// on I/O.
pub type Source = Arc<dyn Fn() -> Snapshot + Send + Sync>;

struct Installed {
    /// A LAN router: readiness needs a registered link.
    server_mode: bool,
    source: Source,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

fn installed() -> Option<(bool, Source)> {
    let guard = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .as_ref()
        .map(|i| (i.server_mode, Arc::clone(&i.source)))
}

/// Installs the reverse-invoke state source (the last call wins). `server_mode` is true on
/// a LAN router: its `/readyz` then answers 200 only while a link is registered.
pub fn set_source(server_mode: bool, source: Source) {
    *INSTALLED.lock().unwrap_or_else(|p| p.into_inner()) = Some(Installed {
        server_mode,
        source,
    });
}

/// A lost link was registered again (LAN side).
pub fn link_reconnect() {
    if let Some(m) = get() {
        m.ri_link_reconnects.inc();
    }
}

/// A heartbeat was answered after `rtt`.
pub fn heartbeat_rtt(rtt: Duration) {
    if let Some(m) = get() {
        m.ri_heartbeat_rtt.observe(rtt.as_secs_f64());
    }
}

/// True when this process is a reverse-invoke server (LAN router).
pub fn is_server_mode() -> bool {
    installed().is_some_and(|(server, _)| server)
}

/// Ready as far as reverse invoke goes: always outside server mode; in server mode while at
/// least one link is registered with a DMZ router (with several DMZ routers, any one).
pub fn ready() -> bool {
    match installed() {
        Some((true, source)) => !source().links.is_empty(),
        _ => true,
    }
}

/// Sets the reverse-invoke gauges from the installed source (at scrape time).
pub(super) fn refresh(m: &Metrics) {
    let Some((server_mode, source)) = installed() else {
        return;
    };
    let now = source();
    m.ri_server_mode.set(i64::from(server_mode));
    m.ri_registered_servers
        .set(now.registered_servers.map_or(0, to_i64));
    m.ri_links_up.set(to_i64(now.links.len()));
    m.ri_link_streams.clear();
    for LinkState { dmz, link, streams } in now.links {
        m.ri_link_streams
            .get_or_create(&LinkLabels { dmz, link })
            .set(to_i64(streams));
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
