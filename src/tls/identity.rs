//! The router's own SNC identity: certificate chain, private key and trusted CA
//! certificates, read from PEM files (`--snc-cert`, `--snc-key`, `--snc-ca`, defaulting to
//! `$SECUDIR/saprouter.crt`, `$SECUDIR/saprouter.key`, `$SECUDIR/ca.crt`).

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::dn::snc_name_of;
use super::TlsError;
use crate::routtab::SncName;

/// Default file names inside `SECUDIR`.
pub const CERT_FILE: &str = "saprouter.crt";
/// See [`CERT_FILE`].
pub const KEY_FILE: &str = "saprouter.key";
/// See [`CERT_FILE`].
pub const CA_FILE: &str = "ca.crt";

/// Where the identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SncFiles {
    /// PEM certificate chain, the router's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM certificates of the CAs that peers' certificates must chain to.
    pub ca: PathBuf,
}

impl SncFiles {
    /// Explicit paths win; the others come from `secudir` (the `SECUDIR` variable).
    pub fn resolve(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
        secudir: Option<PathBuf>,
    ) -> Result<Self, TlsError> {
        let pick = |explicit: Option<PathBuf>, name: &str| match (explicit, &secudir) {
            (Some(path), _) => Ok(path),
            (None, Some(dir)) => Ok(dir.join(name)),
            (None, None) => Err(TlsError::NoSecudir),
        };
        Ok(Self {
            cert: pick(cert, CERT_FILE)?,
            key: pick(key, KEY_FILE)?,
            ca: pick(ca, CA_FILE)?,
        })
    }
}

/// A loaded identity whose certificate subject is the router's SNC name.
pub struct Identity {
    /// `p:<DN>` of the certificate subject (RFC 4514 form).
    pub name: String,
    /// Own certificate first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the first certificate.
    pub key: PrivateKeyDer<'static>,
    /// Trusted CA certificates.
    pub roots: RootCertStore,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// Reads the three files and checks that the certificate's subject is `wanted` (the
    /// `-K` name; `None` takes the name from the certificate).
    pub fn load(files: &SncFiles, wanted: Option<&str>) -> Result<Self, TlsError> {
        let chain = read_certs(&files.cert)?;
        let first = chain.first().ok_or_else(|| TlsError::Pem {
            path: files.cert.clone(),
            what: "no PEM certificate in the file".into(),
        })?;
        let name = snc_name_of(first).map_err(|what| TlsError::Pem {
            path: files.cert.clone(),
            what,
        })?;
        if let Some(wanted) = wanted {
            check_own_name(wanted)?;
            if !SncName::new(wanted).matches(&name) {
                return Err(TlsError::NameMismatch {
                    wanted: wanted.to_string(),
                    found: name,
                    path: files.cert.clone(),
                });
            }
        }
        let key = read(&files.key).and_then(|bytes| {
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
                path: files.key.clone(),
                what: format!("no usable PEM private key ({e})"),
            })
        })?;
        let mut roots = RootCertStore::empty();
        for ca in read_certs(&files.ca)? {
            roots.add(ca).map_err(|e| TlsError::Pem {
                path: files.ca.clone(),
                what: format!("CA certificate not usable: {e}"),
            })?;
        }
        if roots.is_empty() {
            return Err(TlsError::Pem {
                path: files.ca.clone(),
                what: "no PEM certificate in the file".into(),
            });
        }
        Ok(Self {
            name,
            chain,
            key,
            roots,
        })
    }
}

/// `-K` takes X.509 names only: `p:` followed by a distinguished name.
pub fn check_own_name(wanted: &str) -> Result<(), TlsError> {
    let bad = |why: &str| {
        Err(TlsError::BadName {
            name: wanted.to_string(),
            why: why.to_string(),
        })
    };
    let trimmed = wanted.trim();
    match trimmed.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("p:") => {}
        _ => return bad("only X.509 names are supported, written p:<distinguished name>"),
    }
    if !trimmed[2..].contains('=') {
        return bad("the distinguished name after p: needs at least one TYPE=value");
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("bad PEM certificate ({e})"),
        })
}
