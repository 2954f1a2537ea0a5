//! The DMZ router's `-l` block: registered servers, their links and streams, shared
//! pseudo addresses and the addresses remembered without a live link.

use super::{same_addr, Known, KnownKey, Registry, Server, State};
use crate::ri::mux::SESSIONS_PER_LINK;

impl Registry {
    /// `-l` lines in the spirit of SAP's RI client block.
    pub fn info_lines(&self) -> Vec<String> {
        let state = self.lock();
        let mut out = vec![format!(
            "srv no {} (max {}), connPool {}, streams per link {SESSIONS_PER_LINK}, capacity per server {}",
            state.servers.len(),
            self.max_servers,
            self.pool_size,
            self.capacity()
        )];
        for s in state.servers.iter() {
            let addrs: Vec<String> = s.addrs.iter().map(ToString::to_string).collect();
            let open: usize = s.links.iter().map(|l| l.streams.open()).sum();
            out.push(format!(
                "- server [{}] instance {:016x}, reg port {}, reg addrs {} [{}], streams {open} of {}{}",
                s.number,
                s.instance,
                s.reg_service,
                addrs.len(),
                addrs.join(", "),
                s.links.len() * SESSIONS_PER_LINK,
                if s.vetted { ", vetted" } else { "" }
            ));
            out.push(format!(
                "  conns {} (CONN ID  SLOT  PEER  STREAMS  TOTAL  MUX)",
                s.links.len()
            ));
            for l in &s.links {
                out.push(format!(
                    "  {:>4}  {:>4}  {}  {}  {}  {}",
                    l.id,
                    l.index,
                    l.peer,
                    l.streams.open(),
                    l.streams.total(),
                    l.kind
                ));
            }
        }
        out.extend(shared_lines(&state));
        // Addresses whose server is away: routes to them are refused, not dialled.
        let mut away: Vec<(&KnownKey, &Known)> = state
            .known
            .iter()
            .filter(|(key, _)| {
                !state.servers.iter().any(|s| {
                    s.reg_service == key.port && s.addrs.iter().any(|a| same_addr(a, &key.addr))
                })
            })
            .collect();
        away.sort_by_key(|(_, k)| std::cmp::Reverse(k.last_seen));
        const SHOWN: usize = 16;
        for (key, k) in away.iter().take(SHOWN) {
            out.push(format!(
                "- away: {}:{} (server [{}], last seen {})",
                key.addr,
                key.port,
                k.number,
                crate::ri::ctime(k.last_seen)
            ));
        }
        if away.len() > SHOWN {
            out.push(format!("- away: {} more", away.len() - SHOWN));
        }
        out
    }
}

/// `-l` lines for pseudo addresses registered by several servers (active-active): each
/// server with its open sessions, in the order [`choose_link`] would serve them.
fn shared_lines(state: &State) -> Vec<String> {
    let mut seen: Vec<KnownKey> = Vec::new();
    let mut out = Vec::new();
    for s in &state.servers {
        for addr in &s.addrs {
            let key = KnownKey::new(s.reg_service, addr);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let mut holders: Vec<&Server> = state
                .servers
                .iter()
                .filter(|h| h.reg_service == key.port && h.addrs.iter().any(|a| same_addr(a, addr)))
                .collect();
            if holders.len() < 2 {
                continue;
            }
            holders.sort_by_key(|h| (h.live_links().next().is_none(), h.sessions(), h.last_pick));
            let each: Vec<String> = holders
                .iter()
                .map(|h| format!("server [{}] sessions {}", h.number, h.sessions()))
                .collect();
            out.push(format!(
                "- shared {}:{} by {} servers: {}",
                key.addr,
                key.port,
                holders.len(),
                each.join(", ")
            ));
        }
    }
    out
}
