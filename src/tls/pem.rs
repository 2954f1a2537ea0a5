//! Reading the PEM files of the identity, and saying what a file that holds something else
//! holds instead (a key where a certificate belongs, an encrypted key, binary DER, a
//! certificate request) and what to do about it.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

fn problem(path: &Path, what: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Reads a whole file, naming it when that fails.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The labels of the PEM sections in `bytes` (`CERTIFICATE`, `PRIVATE KEY`, ...).
pub fn labels(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
                .map(str::to_string)
        })
        .collect()
}

fn is_key_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
}

/// Binary files start with a DER SEQUENCE.
fn is_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30)
}

/// Every certificate in a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let found = labels(&bytes);
    if !found.iter().any(|l| l == "CERTIFICATE") {
        return Err(problem(path, not_a_certificate(&bytes, &found)));
    }
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(path, format!("bad PEM certificate ({e}); replace the file with the PEM certificate the CA issued")))
}

fn not_a_certificate(bytes: &[u8], found: &[String]) -> String {
    if let Some(key) = found.iter().find(|l| is_key_label(l)) {
        return format!("holds a private key (PEM {key}), not a certificate: give the certificate file here and the key with --snc-key");
    }
    if found.iter().any(|l| l.contains("CERTIFICATE REQUEST")) {
        return "holds a certificate request, not a certificate: have the CA sign it and give the certificate it returns".into();
    }
    if found.iter().any(|l| l == "PKCS7") {
        return "holds a PKCS#7 bundle: convert it with openssl pkcs7 -print_certs -in FILE -out FILE.pem".into();
    }
    if is_der(bytes) {
        return "is binary (DER), not PEM: convert a certificate with openssl x509 -inform der -in FILE -out FILE.pem; a PKCS#12 file goes to --snc-p12".into();
    }
    if let Some(other) = found.first() {
        return format!("holds PEM {other}, not a certificate (-----BEGIN CERTIFICATE-----)");
    }
    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1, unencrypted).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    let found = labels(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    if found.iter().any(|l| l == "ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(problem(path, "holds an encrypted private key, which the router cannot read: write it unencrypted (openssl pkey -in FILE -out saprouter.key) readable by the router's user only, or use a PKCS#12 file with --snc-p12 and --snc-p12-pass-file"));
    }
    if !found.iter().any(|l| is_key_label(l)) {
        let what = if found.iter().any(|l| l == "CERTIFICATE") {
            "holds a certificate, not a private key: give the key file with --snc-key".to_string()
        } else if is_der(&bytes) {
            "is binary (DER), not PEM: convert the key with openssl pkey -inform der -in FILE -out FILE.pem; a PKCS#12 file goes to --snc-p12".to_string()
        } else if let Some(other) = found.first() {
            format!("holds PEM {other}, not a private key (-----BEGIN PRIVATE KEY-----)")
        } else {
            "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_string()
        };
        return Err(problem(path, what));
    }
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| problem(path, format!("the private key cannot be read ({e}); write it again with openssl pkey -in FILE -out FILE")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_found() {
        let text = b"junk\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n -----BEGIN EC PRIVATE KEY-----\r\n";
        assert_eq!(labels(text), ["CERTIFICATE", "EC PRIVATE KEY"]);
        assert!(labels(b"\x30\x82\x01").is_empty());
    }

    #[test]
    fn wrong_contents_are_named() {
        let key = ["PRIVATE KEY".to_string()];
        assert!(not_a_certificate(b"", &key).contains("private key"));
        let req = ["CERTIFICATE REQUEST".to_string()];
        assert!(not_a_certificate(b"", &req).contains("certificate request"));
        assert!(not_a_certificate(b"\x30\x82", &[]).contains("DER"));
        assert!(not_a_certificate(b"hello", &[]).contains("no PEM certificate"));
    }
}
