//! Checking the next router's certificate when this router connects out: chain to the CA,
//! validity period and signatures, exactly as a browser would, but without a host-name
//! check. SNC peers have names (`p:<DN>`), not DNS names; the router compares the name with
//! its `KT` line once the handshake is done. Also the sentences the trace gives for a
//! peer certificate that either direction refused.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::certinfo::{unix_now, utc};

/// Verifies a server's chain against the configured CA, ignoring its DNS names.
#[derive(Debug)]
pub struct ChainVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ChainVerifier {
    /// A verifier trusting `roots`, with the provider's signature algorithms.
    pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Self {
        Self { roots, provider }
    }
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a peer's certificate was refused, in a sentence (the caller appends rustls' text).
pub fn certificate_problem(err: &CertificateError) -> String {
    let ago = |t: &UnixTime| {
        let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
        let days = (unix_now() - secs).div_euclid(86_400);
        match days {
            0 => String::new(),
            1 => ", 1 day ago".to_string(),
            n => format!(", {n} days ago"),
        }
    };
    let at = |t: &UnixTime| utc(i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    match err {
        CertificateError::UnknownIssuer => "peer certificate not issued by a trusted CA".into(),
        CertificateError::Expired => "peer certificate expired".into(),
        CertificateError::ExpiredContext { not_after, .. } => format!(
            "peer certificate expired on {}{}",
            at(not_after),
            ago(not_after)
        ),
        CertificateError::NotValidYet => "peer certificate not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "peer certificate not valid yet (not before {})",
            at(not_before)
        ),
        CertificateError::BadSignature => "peer certificate has a bad signature".into(),
        CertificateError::Revoked => "peer certificate revoked".into(),
        CertificateError::BadEncoding => "peer certificate cannot be parsed".into(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "peer certificate is signed with an algorithm this router does not accept".into()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "peer certificate is not for this use (its extended key usage lacks serverAuth or clientAuth)".into()
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::UnsupportedCertVersion) => {
                "peer certificate is not X.509 version 3 (a version 1 certificate, issued without extensions); the peer needs a certificate re-issued with extensions".into()
            }
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "peer presented a CA certificate as its own".into()
            }
            Some(webpki::Error::EndEntityUsedAsCa) => {
                "peer certificate chain uses an end-entity certificate as a CA".into()
            }
            Some(webpki::Error::UnsupportedCriticalExtension) => {
                "peer certificate has a critical extension this router does not know".into()
            }
            Some(webpki::Error::PathLenConstraintViolated | webpki::Error::NameConstraintViolation) => {
                "peer certificate chain breaks a constraint of its CA".into()
            }
            _ => "peer certificate rejected".into(),
        },
        _ => "peer certificate rejected".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::OtherError;

    #[test]
    fn certificate_errors_read_as_sentences() {
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_600_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_577_836_800)),
        };
        let text = certificate_problem(&expired);
        assert!(
            text.starts_with("peer certificate expired on 2020-01-01 00:00:00 UTC, "),
            "{text}"
        );
        assert!(text.ends_with("days ago"), "{text}");
        let v1 =
            CertificateError::Other(OtherError(Arc::new(webpki::Error::UnsupportedCertVersion)));
        assert!(certificate_problem(&v1).contains("not X.509 version 3"));
        let ca = CertificateError::Other(OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        assert!(certificate_problem(&ca).contains("CA certificate as its own"));
        assert_eq!(
            certificate_problem(&CertificateError::UnknownIssuer),
            "peer certificate not issued by a trusted CA"
        );
    }
}
