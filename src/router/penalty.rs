//! Per-source penalties (hostile inputs H33, H41, H57, docs/hardening.md; the model is
//! OpenSSH's
//! `PerSourcePenalties`): an address whose connections keep being refused (routes the
//! table denies, malformed or missing route messages, wrong info passwords, failed TLS
//! handshakes, refused registrations) has its new connections closed at accept, without a
//! reply, for a while.
//!
//! Off unless `--penalty FAILURES/SECONDS` is given: SAP's saprouter has no such rule, and
//! behind a NAT or a container's port proxy many users share one address, so one of them
//! could lock the others out. With it, `FAILURES` refusals within `SECONDS` block the
//! address for `SECONDS`; each further penalty of the same address doubles that, up to 16
//! times, and an address that stays clean for the longest penalty starts over.
//!
//! The table is bounded: expired entries are dropped when it fills, and addresses beyond
//! the bound are not tracked (the connection caps in `limits` still hold for them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Addresses tracked at most.
pub const MAX_SOURCES: usize = 65_536;
/// The longest penalty is this many times the base one.
const MAX_MULTIPLIER: u32 = 16;

/// `--penalty FAILURES/SECONDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PenaltyPolicy {
    /// Refusals within `window` that start a penalty.
    pub failures: u32,
    /// The counting window and the first penalty's length.
    pub window: Duration,
}

impl PenaltyPolicy {
    /// Parses `FAILURES/SECONDS` (both at least 1).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (failures, seconds) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not FAILURES/SECONDS (e.g. 10/60)"))?;
        let failures: u32 = failures
            .trim()
            .parse()
            .map_err(|_| format!("'{failures}' is not a number of failures"))?;
        let seconds: u64 = seconds
            .trim()
            .parse()
            .map_err(|_| format!("'{seconds}' is not a number of seconds"))?;
        if failures == 0 || seconds == 0 || seconds > 86_400 {
            return Err(format!(
                "'{text}': failures must be at least 1 and seconds between 1 and 86400"
            ));
        }
        Ok(Self {
            failures,
            window: Duration::from_secs(seconds),
        })
    }

    fn longest(&self) -> Duration {
        self.window * MAX_MULTIPLIER
    }
}

/// What is known of one address.
#[derive(Debug)]
struct Source {
    /// Refusals since `counting_since`.
    failures: u32,
    counting_since: Instant,
    /// Blocked until then (may be in the past).
    blocked_until: Option<Instant>,
    /// Penalties served so far (doubles the next one).
    penalties: u32,
    /// The last refusal: an address clean for the longest penalty (after its last penalty
    /// ended) starts over, and may be dropped from a full table.
    last_seen: Instant,
}

/// The outcome of [`Penalties::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Counted; no penalty yet (or penalties are off, or the table is full).
    Counted,
    /// This refusal started a penalty of this length.
    Blocked(Duration),
}

/// The per-source penalty table.
#[derive(Debug)]
pub struct Penalties {
    policy: Option<PenaltyPolicy>,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

impl Penalties {
    /// A table for `policy`; `None` turns penalties off.
    pub fn new(policy: Option<PenaltyPolicy>) -> Self {
        Self {
            policy,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The policy, when on.
    pub fn policy(&self) -> Option<PenaltyPolicy> {
        self.policy
    }

    /// True while `ip` serves a penalty.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.blocked_at(ip, Instant::now())
    }

    fn blocked_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.policy.is_none() {
            return false;
        }
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources
            .get(&ip)
            .and_then(|s| s.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts one refusal of `ip`.
    pub fn record(&self, ip: IpAddr) -> Recorded {
        self.record_at(ip, Instant::now())
    }

    fn record_at(&self, ip: IpAddr, now: Instant) -> Recorded {
        let Some(policy) = self.policy else {
            return Recorded::Counted;
        };
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if !sources.contains_key(&ip) && sources.len() >= MAX_SOURCES {
            let longest = policy.longest();
            sources.retain(|_, s| {
                s.blocked_until.is_some_and(|u| now < u)
                    || now.saturating_duration_since(s.last_seen) < longest
            });
            if sources.len() >= MAX_SOURCES {
                return Recorded::Counted;
            }
        }
        let source = sources.entry(ip).or_insert(Source {
            failures: 0,
            counting_since: now,
            blocked_until: None,
            penalties: 0,
            last_seen: now,
        });
        // Clean since its last refusal or the end of its last penalty, whichever is later.
        let clean_since = source
            .blocked_until
            .map_or(source.last_seen, |until| until.max(source.last_seen));
        if now.saturating_duration_since(clean_since) >= policy.longest() {
            source.penalties = 0;
        }
        source.last_seen = now;
        if now.saturating_duration_since(source.counting_since) >= policy.window {
            source.failures = 0;
            source.counting_since = now;
        }
        source.failures += 1;
        if source.failures < policy.failures {
            return Recorded::Counted;
        }
        let multiplier = 1u32
            .checked_shl(source.penalties)
            .unwrap_or(MAX_MULTIPLIER)
            .min(MAX_MULTIPLIER);
        let length = policy.window * multiplier;
        source.penalties = source.penalties.saturating_add(1);
        source.failures = 0;
        source.counting_since = now;
        source.blocked_until = Some(now + length);
        Recorded::Blocked(length)
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.sources.lock().map_or(0, |s| s.len())
    }
}

#[cfg(test)]
#[path = "penalty_tests.rs"]
mod tests;
