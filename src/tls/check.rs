//! Up-front checks of the router's own certificate chain, private key and CA file, made
//! with x509-parser before rustls sees them. rustls reports problems with its own
//! material as if a peer had sent it (`invalid peer certificate: ...`) and without a file
//! name; here each problem names the file and says what to do.

use std::path::Path;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use super::certinfo::{utc, CertInfo};
use super::TlsError;

fn problem(path: &Path, what: String) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        what,
    }
}

fn parse<'a>(der: &'a [u8], path: &Path, n: usize) -> Result<X509Certificate<'a>, TlsError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| {
            problem(
                path,
                format!("certificate {n} in the file cannot be parsed ({e}); replace it with the PEM certificate the CA issued"),
            )
        })
}

/// Version and validity period, which every certificate a peer will check must pass.
fn usable(cert: &X509Certificate<'_>, path: &Path, now: i64, whose: &str) -> Result<(), TlsError> {
    let info = CertInfo::of(cert);
    if cert.version() != X509Version::V3 {
        return Err(problem(
            path,
            format!(
                "{whose} {} is an X.509 version {} certificate; TLS accepts version 3 only. Re-issue it with extensions (openssl x509 -req ... -extfile with basicConstraints and keyUsage lines, as docs/snc-tls.md shows)",
                info.subject,
                cert.version().0 + 1
            ),
        ));
    }
    if info.not_before > now {
        return Err(problem(
            path,
            format!(
                "{whose} {} is not valid before {}: check the system clock, or wait until then",
                info.subject,
                utc(info.not_before)
            ),
        ));
    }
    if info.not_after < now {
        return Err(problem(
            path,
            format!(
                "{whose} {} expired on {}: renew it (a new certificate for the same name from the CA), then start the router or run saprouter -n",
                info.subject,
                utc(info.not_after)
            ),
        ));
    }
    Ok(())
}

/// The router's own chain (its certificate first): every certificate version 3 and valid
/// now; the first one an end-entity certificate fit for both TLS roles. Returns the
/// summary of the first.
pub fn own_chain(
    chain: &[CertificateDer<'_>],
    path: &Path,
    now: i64,
) -> Result<CertInfo, TlsError> {
    let mut own = None;
    for (i, der) in chain.iter().enumerate() {
        let cert = parse(der, path, i + 1)?;
        let whose = if i == 0 {
            "the router's certificate"
        } else {
            "the intermediate CA certificate"
        };
        usable(&cert, path, now, whose)?;
        if i == 0 {
            end_entity(&cert, path)?;
            own = Some(CertInfo::of(&cert));
        }
    }
    own.ok_or_else(|| problem(path, "holds no certificate".into()))
}

/// A router's certificate is not a CA's, and is good for TLS server and client use.
fn end_entity(cert: &X509Certificate<'_>, path: &Path) -> Result<(), TlsError> {
    let subject = CertInfo::of(cert).subject;
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if bc.value.ca {
            return Err(problem(
                path,
                format!("{subject} is a CA certificate (basicConstraints CA:TRUE): give the router's own certificate, issued by the CA; the CA's certificate goes to the CA file"),
            ));
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if !(eku.value.server_auth && eku.value.client_auth) {
            return Err(problem(
                path,
                format!("{subject} lacks the extended key usage serverAuth or clientAuth: a router is TLS server and client, so re-issue it with extendedKeyUsage=serverAuth,clientAuth (or without extendedKeyUsage)"),
            ));
        }
    }
    Ok(())
}

/// The private key loads with `provider` and belongs to `cert` (same public key).
pub fn key_matches(
    cert: &CertificateDer<'_>,
    key: &PrivateKeyDer<'_>,
    provider: &CryptoProvider,
    key_path: &Path,
    cert_path: &Path,
) -> Result<(), TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            problem(
                key_path,
                format!("the private key cannot be used ({e}); RSA (2048 bits or more), ECDSA P-256/P-384 and Ed25519 keys are supported"),
            )
        })?;
    let Some(public) = signing.public_key() else {
        // The provider cannot tell; rustls compares when it builds the configuration.
        return Ok(());
    };
    let (_, parsed) = X509Certificate::from_der(cert)
        .map_err(|e| problem(cert_path, format!("certificate cannot be parsed ({e})")))?;
    if parsed.public_key().raw != public.as_ref() {
        return Err(problem(
            key_path,
            format!(
                "the private key does not belong to the certificate {} ({}): give the key that was made with that certificate's request",
                cert_path.display(),
                CertInfo::of(&parsed).subject
            ),
        ));
    }
    Ok(())
}

/// The CA file's certificates: each a CA certificate. Returns their summaries. Their
/// validity is not checked here: a trust anchor's dates do not enter TLS verification, and a
/// bundle may well hold an old root next to its successor; the trace warns about expired
/// ones (see the router's expiry checks).
pub fn ca_file(cas: &[CertificateDer<'_>], path: &Path) -> Result<Vec<CertInfo>, TlsError> {
    let mut infos = Vec::with_capacity(cas.len());
    for (i, der) in cas.iter().enumerate() {
        let cert = parse(der, path, i + 1)?;
        let info = CertInfo::of(&cert);
        // Version 1 roots (self-signed, no extensions) are still accepted as trust
        // anchors; a version 3 certificate must say it is a CA.
        if cert.version() == X509Version::V3 {
            let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            if !ca {
                return Err(problem(
                    path,
                    format!("{} is not a CA certificate (no basicConstraints CA:TRUE): the CA file holds the certificates of the CAs that issue the peers' certificates, not a router's own", info.subject),
                ));
            }
        }
        infos.push(info);
    }
    Ok(infos)
}
