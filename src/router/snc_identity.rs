//! The router's SNC (TLS) identity in operation: which certificate is in use (trace, `-G`
//! log, `-l`), re-reading it with the table (`-n`, SIGHUP) without touching running
//! sessions, and warnings in the trace before the certificate or its CA expires (at start,
//! at each reload and once a day).

use std::time::Duration;

use super::connlog::Event;
use super::state::Shared;
use crate::tls::{unix_now, utc, CertInfo, SncTls, EXPIRY_WARNING_DAYS};

/// How often the running router looks at the expiry dates.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

impl Shared {
    /// At start, with `-K`: records the certificate in use, warns when it expires soon, and
    /// starts the daily expiry check. Call from within the runtime.
    pub fn snc_started(&self) {
        let Some(snc) = self.config().snc.clone() else {
            return;
        };
        self.record_snc_certificate(&snc.certificate());
        warn_if_expiring(&snc, "start");
        tokio::spawn(async move {
            let mut every = tokio::time::interval(EXPIRY_CHECK_EVERY);
            every.tick().await; // the first tick is now: start has just checked
            loop {
                every.tick().await;
                warn_if_expiring(&snc, "daily check");
            }
        });
    }

    /// `-n`, SIGHUP: re-reads the SNC identity and CA files. A new identity that fails any
    /// check of the start is refused with the file named, and the one in force stays.
    /// Without `-K`, nothing to do. The error is the text `-n` reports.
    pub async fn reload_snc(&self) -> Result<(), String> {
        let Some(snc) = self.config().snc.clone() else {
            return Ok(());
        };
        let loader = snc.clone();
        let outcome = tokio::task::spawn_blocking(move || loader.reload())
            .await
            .map_err(|join| format!("-K: the identity loader failed: {join}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match outcome {
            Ok(info) => {
                self.record_snc_certificate(&info);
                warn_if_expiring(&snc, "reload");
                Ok(())
            }
            Err(err) => {
                let old = snc.certificate();
                tracing::error!(%err, serial = %old.serial, not_after = %utc(old.not_after), "SNC identity not reloaded; the certificate in use stays");
                Err(format!(
                    "SNC identity not reloaded, the certificate in use stays: {err}"
                ))
            }
        }
    }

    /// The trace and `-G` lines naming the certificate now in use.
    fn record_snc_certificate(&self, info: &CertInfo) {
        tracing::info!(subject = %info.subject, serial = %info.serial, not_after = %utc(info.not_after), "SNC certificate in use");
        if let Some(log) = self.connlog() {
            log.write(
                Event::SncCertificate,
                "",
                &format!(
                    "{} serial {} not after {}",
                    info.subject,
                    info.serial,
                    utc(info.not_after)
                ),
            );
        }
    }
}

/// Trace warnings for the identity and each CA certificate that expires within
/// [`EXPIRY_WARNING_DAYS`] (an error once one has expired).
fn warn_if_expiring(snc: &SncTls, when: &'static str) {
    let now = unix_now();
    let own = snc.certificate();
    let days_left = own.days_left(now);
    if own.not_after < now {
        tracing::error!(when, subject = %own.subject, serial = %own.serial, not_after = %utc(own.not_after), "SNC certificate has expired: peers refuse this router; install a renewed certificate and run saprouter -n");
    } else if days_left < EXPIRY_WARNING_DAYS {
        tracing::warn!(when, subject = %own.subject, serial = %own.serial, not_after = %utc(own.not_after), days_left, "SNC certificate expires within 30 days: renew it, then run saprouter -n");
    }
    for ca in snc.ca_certificates() {
        let days_left = ca.days_left(now);
        if ca.not_after < now {
            tracing::error!(when, subject = %ca.subject, serial = %ca.serial, not_after = %utc(ca.not_after), "SNC CA certificate has expired: install the CA's renewed certificate and run saprouter -n");
        } else if days_left < EXPIRY_WARNING_DAYS {
            tracing::warn!(when, subject = %ca.subject, serial = %ca.serial, not_after = %utc(ca.not_after), days_left, "SNC CA certificate expires within 30 days: install the CA's renewed certificate, then run saprouter -n");
        }
    }
}

/// The `-l` lines: the router's SNC name, its certificate and the CA certificates (none
/// without `-K`).
pub fn info_lines(shared: &Shared) -> Vec<String> {
    let Some(snc) = &shared.config().snc else {
        return Vec::new();
    };
    let now = unix_now();
    let left = |info: &CertInfo| match info.days_left(now) {
        _ if info.not_after < now => "EXPIRED".to_string(),
        1 => "1 day left".to_string(),
        d => format!("{d} days left"),
    };
    let own = snc.certificate();
    let file = snc
        .source()
        .map(|s| format!(", {}", s.cert_file().display()))
        .unwrap_or_default();
    let mut lines = vec![
        format!("SNC name            : {}", snc.name()),
        format!(
            "SNC certificate     : {} ({}){file}",
            own.describe(),
            left(&own)
        ),
    ];
    for ca in snc.ca_certificates() {
        lines.push(format!(
            "SNC CA              : {}, {} ({})",
            ca.subject,
            ca.describe(),
            left(&ca)
        ));
    }
    lines
}
