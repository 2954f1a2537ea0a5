//! What the operator sees of a certificate (`-l`, the `-G` log, the trace, the expiry
//! metric): its SNC name, serial number and validity period, in the forms OpenSSL prints.

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::dn::rfc4514;

/// Days before the identity's end at which the trace starts warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A summary of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `p:<DN>` of the subject.
    pub subject: String,
    /// Serial number in upper-case hex without leading zero bytes, as
    /// `openssl x509 -serial` prints it.
    pub serial: String,
    /// Start of validity, seconds since the epoch.
    pub not_before: i64,
    /// End of validity, seconds since the epoch.
    pub not_after: i64,
}

impl CertInfo {
    /// The summary of a parsed certificate.
    pub fn of(cert: &X509Certificate<'_>) -> Self {
        Self {
            subject: format!("p:{}", rfc4514(cert.subject())),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        }
    }

    /// The summary of a DER certificate, when it parses.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        X509Certificate::from_der(der)
            .ok()
            .map(|(_, cert)| Self::of(&cert))
    }

    /// Whole days from `now` to the end of validity (negative once expired).
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// `serial 1A2B, valid until 2027-12-01 12:00:00 UTC`.
    pub fn describe(&self) -> String {
        format!(
            "serial {}, valid until {}",
            self.serial,
            utc(self.not_after)
        )
    }
}

/// Seconds since the epoch now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A time as `2027-12-01 12:00:00 UTC`.
pub fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{secs} s after 1970"))
}

/// Big-endian serial bytes as OpenSSL prints them: upper-case hex, no leading zero bytes
/// (DER adds one when the top bit is set), `0` for zero.
pub fn serial_hex(raw: &[u8]) -> String {
    let significant: &[u8] = match raw.iter().position(|&b| b != 0) {
        Some(first) => &raw[first..],
        None => return "0".into(),
    };
    significant.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_print_as_openssl_does() {
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9A01");
        assert_eq!(serial_hex(&[0x01]), "01");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(serial_hex(&[]), "0");
        assert_eq!(serial_hex(&[0x10, 0x00]), "1000");
    }

    #[test]
    fn times_and_days() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_126_400), "2026-12-01 12:00:00 UTC");
        let info = CertInfo {
            subject: "p:CN=x".into(),
            serial: "01".into(),
            not_before: 0,
            not_after: 10 * 86_400,
        };
        assert_eq!(info.days_left(0), 10);
        assert_eq!(info.days_left(10 * 86_400 - 1), 0);
        assert_eq!(info.days_left(10 * 86_400 + 1), -1);
        assert_eq!(
            info.describe(),
            "serial 01, valid until 1970-01-11 00:00:00 UTC"
        );
    }
}
