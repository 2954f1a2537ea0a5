//! The choice of instance and link for a new stream to a registered pseudo address, and
//! the refusal a user gets when there is none. The registry calls it under its lock.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::{KnownKey, LinkEntry, Registry, State};
use crate::ni::rterr::rc;
use crate::ri::link::RegAddr;
use crate::ri::mux::{StreamGuard, SESSIONS_PER_LINK};
use crate::router::selfaddr::canonical;

/// Why no link can take a new stream (see [`choose_link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLink {
    /// The address was never registered since start.
    Unknown,
    /// Server `number` registered it before; no live link now serves it.
    Gone {
        /// The server that registered it last.
        number: u16,
        /// When it was last registered, or its server's last link ended.
        last_seen: SystemTime,
        /// The server is still registered, for other addresses.
        still_live: bool,
    },
    /// Every live link of server `number` carries [`SESSIONS_PER_LINK`] streams.
    Full {
        /// The server.
        number: u16,
        /// Its live links.
        links: usize,
    },
    /// Every live link of server `number` below the cap was tried and failed.
    Failed {
        /// The server.
        number: u16,
    },
}

/// The instance and link a new stream to `ip:port` goes on, as indices into
/// `state.servers` and its `links`; stamps the instance as served.
///
/// Instance: among the servers that registered the address (several when active-active)
/// and have a usable link, the one with the fewest open sessions; among equals the one
/// served longest ago, so equals take turns. An instance without a live link gets nothing.
/// Link: among the instance's live links not in `tried` and below [`SESSIONS_PER_LINK`]
/// streams, the one with the fewest open streams, then the fewest ever (so a link that came
/// up on demand takes the next streams at once).
///
/// This is the one place an instance and a link are chosen.
pub(super) fn choose_link(
    state: &mut State,
    ip: IpAddr,
    port: u16,
    tried: &[u32],
) -> Result<(usize, usize), NoLink> {
    let ip = canonical(ip);
    let holders = state.holders(ip, port);
    let Some(&first) = holders.first() else {
        return Err(
            match state.known.get(&KnownKey::new(port, &RegAddr::Ip(ip))) {
                Some(k) => NoLink::Gone {
                    number: k.number,
                    last_seen: k.last_seen,
                    still_live: state.servers.iter().any(|s| s.number == k.number),
                },
                None => NoLink::Unknown,
            },
        );
    };
    // (server, link, its sessions, its last pick) of the best so far.
    let mut best: Option<(usize, usize, usize, u64)> = None;
    // The full instance with the most room to grow: (number, live links).
    let mut full: Option<(u16, usize)> = None;
    let mut any_live = false;
    for &si in &holders {
        let server = &state.servers[si];
        let live = server.live_links().count();
        if live == 0 {
            continue;
        }
        any_live = true;
        let untried: Vec<(usize, &LinkEntry)> = server
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.cancel.is_cancelled() && !tried.contains(&l.id))
            .collect();
        let link = untried
            .iter()
            .filter(|(_, l)| l.streams.open() < SESSIONS_PER_LINK)
            .min_by_key(|(_, l)| (l.streams.open(), l.streams.total()));
        match link {
            Some(&(li, _)) => {
                let key = (server.sessions(), server.last_pick);
                if best.map_or(true, |b| key < (b.2, b.3)) {
                    best = Some((si, li, key.0, key.1));
                }
            }
            None if !untried.is_empty() && full.map_or(true, |(_, links)| live < links) => {
                full = Some((server.number, live));
            }
            None => {}
        }
    }
    if let Some((si, li, ..)) = best {
        state.picks += 1;
        state.servers[si].last_pick = state.picks;
        return Ok((si, li));
    }
    let number = state.servers[first].number;
    Err(match full {
        _ if !any_live => NoLink::Gone {
            number,
            last_seen: SystemTime::now(),
            still_live: false,
        },
        Some((number, links)) => NoLink::Full { number, links },
        None => NoLink::Failed { number },
    })
}

/// Why no stream could be opened to a registered pseudo address: the `NI_RTERR` the user
/// gets. It travels inside the `io::Error` of [`RegisteredHops::open`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct OpenRefusal {
    /// Return code.
    pub rc: i32,
    /// Detail text (`NiRIOpen: ...`).
    pub detail: String,
}

impl OpenRefusal {
    /// The refusal `err` carries, if any.
    pub fn of(err: &io::Error) -> Option<&OpenRefusal> {
        err.get_ref()?.downcast_ref()
    }
}

impl Registry {
    /// The link [`choose_link`] picks, with the new stream already counted on it: the
    /// choice and the count happen under the lock, so a burst of opens spreads and never
    /// exceeds the cap.
    pub(super) fn pick(
        &self,
        ip: IpAddr,
        port: u16,
        tried: &[u32],
    ) -> Result<(LinkEntry, StreamGuard), NoLink> {
        let mut state = self.lock();
        let (si, li) = choose_link(&mut state, ip, port, tried)?;
        let link = &state.servers[si].links[li];
        let guard = link.streams.guard();
        Ok((link.clone(), guard))
    }

    /// The user's refusal for `why`; `waited` when an open waited for a further link.
    pub(super) fn refusal(
        &self,
        ip: IpAddr,
        port: u16,
        why: NoLink,
        waited: Option<Duration>,
        last_error: Option<io::Error>,
    ) -> OpenRefusal {
        let target = SocketAddr::new(canonical(ip), port);
        let (rc, detail) = match why {
            NoLink::Unknown => (
                rc::NIEROUT_CONN_REFUSED,
                format!("NiRIOpen: {target} is not a registered reverse-invoke address"),
            ),
            NoLink::Gone {
                number,
                last_seen,
                still_live: false,
            } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target} has no live link (last seen {})",
                    crate::ri::ctime(last_seen)
                ),
            ),
            NoLink::Gone {
                number, last_seen, ..
            } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] no longer registers {target} (last seen {})",
                    crate::ri::ctime(last_seen)
                ),
            ),
            NoLink::Full { number, links } => (
                rc::NIEROUT_OVERFLOW,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target} is full ({links} of {} links, {SESSIONS_PER_LINK} streams each){}",
                    self.pool_size,
                    waited.map_or(String::new(), |w| format!(
                        "; no further link within {:.1}s",
                        w.as_secs_f64()
                    ))
                ),
            ),
            NoLink::Failed { number } => (
                rc::NIEROUT_CONN_REFUSED,
                format!(
                    "NiRIOpen: reverse-invoke server [{number}] for {target}: no link opened a stream ({})",
                    last_error.map_or("link closed".to_string(), |e| e.to_string())
                ),
            ),
        };
        OpenRefusal { rc, detail }
    }
}
