//! The router's own SNC identity: certificate chain, private key and trusted CA
//! certificates. The chain and key come from PEM files (`--snc-cert`, `--snc-key`,
//! defaulting to `$SECUDIR/saprouter.crt` and `saprouter.key`) or from one PKCS#12 file
//! (`--snc-p12`, defaulting to `$SECUDIR/saprouter.p12` when the PEM files are not there);
//! the CA certificates always from PEM (`--snc-ca`, default `$SECUDIR/ca.crt`).

use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::certinfo::{unix_now, CertInfo};
use super::dn::snc_name_of;
use super::{check, pem, pkcs12, TlsError};
use crate::routtab::SncName;

/// Default file names inside `SECUDIR`.
pub const CERT_FILE: &str = "saprouter.crt";
/// See [`CERT_FILE`].
pub const KEY_FILE: &str = "saprouter.key";
/// See [`CERT_FILE`].
pub const CA_FILE: &str = "ca.crt";
/// See [`CERT_FILE`].
pub const P12_FILE: &str = "saprouter.p12";

/// An identity in three PEM files.
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

/// Where the certificate chain and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityFiles {
    /// A PEM chain and a PEM key.
    Pem {
        /// The chain.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// One PKCS#12 file.
    Pkcs12 {
        /// The file.
        file: PathBuf,
        /// A file holding its password; none means no password.
        password_file: Option<PathBuf>,
    },
}

/// All the files of an identity; re-read as they are on every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SncSource {
    /// Chain and key.
    pub identity: IdentityFiles,
    /// PEM certificates of the trusted CAs.
    pub ca: PathBuf,
}

impl From<&SncFiles> for SncSource {
    fn from(files: &SncFiles) -> Self {
        Self {
            identity: IdentityFiles::Pem {
                cert: files.cert.clone(),
                key: files.key.clone(),
            },
            ca: files.ca.clone(),
        }
    }
}

/// The `-K` file options as given.
#[derive(Debug, Clone, Default)]
pub struct SncOptions {
    /// `--snc-cert`.
    pub cert: Option<PathBuf>,
    /// `--snc-key`.
    pub key: Option<PathBuf>,
    /// `--snc-ca`.
    pub ca: Option<PathBuf>,
    /// `--snc-p12`.
    pub p12: Option<PathBuf>,
    /// `--snc-p12-pass-file`.
    pub p12_password_file: Option<PathBuf>,
}

impl SncSource {
    /// Explicit files win. Without `--snc-p12`, `--snc-cert` or `--snc-key` the identity is
    /// `$SECUDIR/saprouter.crt` and `saprouter.key` when either is there, else
    /// `$SECUDIR/saprouter.p12` when that is there.
    pub fn resolve(opts: SncOptions, secudir: Option<PathBuf>) -> Result<Self, TlsError> {
        let in_secudir = |name: &str| {
            secudir
                .as_ref()
                .map(|dir| dir.join(name))
                .ok_or(TlsError::NoSecudir)
        };
        if opts.p12.is_some() && (opts.cert.is_some() || opts.key.is_some()) {
            return Err(TlsError::Usage(
                "--snc-p12 holds the certificate and key: give it or --snc-cert/--snc-key, not both".into(),
            ));
        }
        let ca = match opts.ca {
            Some(path) => path,
            None => in_secudir(CA_FILE)?,
        };
        let pem =
            |cert: Option<PathBuf>, key: Option<PathBuf>| -> Result<IdentityFiles, TlsError> {
                Ok(IdentityFiles::Pem {
                    cert: cert.map_or_else(|| in_secudir(CERT_FILE), Ok)?,
                    key: key.map_or_else(|| in_secudir(KEY_FILE), Ok)?,
                })
            };
        let identity = match (opts.p12, opts.cert, opts.key) {
            (Some(file), _, _) => IdentityFiles::Pkcs12 {
                file,
                password_file: opts.p12_password_file.clone(),
            },
            (None, None, None) => {
                let dir = secudir.clone().ok_or(TlsError::NoSecudir)?;
                let (cert, key, p12) =
                    (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(P12_FILE));
                if !cert.exists() && !key.exists() && p12.exists() {
                    IdentityFiles::Pkcs12 {
                        file: p12,
                        password_file: opts.p12_password_file.clone(),
                    }
                } else if !cert.exists() && !key.exists() {
                    return Err(TlsError::NoIdentity { dir });
                } else {
                    IdentityFiles::Pem { cert, key }
                }
            }
            (None, cert, key) => pem(cert, key)?,
        };
        if opts.p12_password_file.is_some() && matches!(identity, IdentityFiles::Pem { .. }) {
            return Err(TlsError::Usage(
                "--snc-p12-pass-file is the password of a PKCS#12 file: give --snc-p12 (or put saprouter.p12 in SECUDIR)".into(),
            ));
        }
        Ok(Self { identity, ca })
    }

    /// The file that holds the router's certificate.
    pub fn cert_file(&self) -> &Path {
        match &self.identity {
            IdentityFiles::Pem { cert, .. } => cert,
            IdentityFiles::Pkcs12 { file, .. } => file,
        }
    }

    /// The file that holds the private key.
    pub fn key_file(&self) -> &Path {
        match &self.identity {
            IdentityFiles::Pem { key, .. } => key,
            IdentityFiles::Pkcs12 { file, .. } => file,
        }
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
    /// The router's certificate.
    pub info: CertInfo,
    /// The CA certificates, in file order.
    pub cas: Vec<CertInfo>,
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
    /// Reads the files and checks everything a peer or rustls would refuse later, naming the
    /// file: certificates of X.509 version 3 and valid now, the router's an end-entity
    /// certificate for TLS server and client use whose subject is `wanted` (the `-K` name;
    /// `None` takes the name from the certificate), the key its key, the CA file CA
    /// certificates.
    pub fn load(
        source: &SncSource,
        wanted: Option<&str>,
        provider: &CryptoProvider,
    ) -> Result<Self, TlsError> {
        if let Some(wanted) = wanted {
            check_own_name(wanted)?;
        }
        let now = unix_now();
        let (chain, key) = read_chain_and_key(source, provider)?;
        let cert_file = source.cert_file();
        let info = check::own_chain(&chain, cert_file, now)?;
        if let Some(wanted) = wanted {
            if !SncName::new(wanted).matches(&info.subject) {
                return Err(TlsError::NameMismatch {
                    wanted: wanted.to_string(),
                    found: info.subject,
                    path: cert_file.to_path_buf(),
                });
            }
        }
        check::key_matches(&chain[0], &key, provider, source.key_file(), cert_file)?;
        let cas = pem::certificates(&source.ca)?;
        let ca_infos = check::ca_file(&cas, &source.ca)?;
        Self::assemble(source, chain, key, cas, info, ca_infos)
    }

    /// Reads the files without the checks of [`Identity::load`] (for tools and tests that
    /// need, say, a client with an expired certificate).
    pub fn read(source: &SncSource, provider: &CryptoProvider) -> Result<Self, TlsError> {
        let (chain, key) = read_chain_and_key(source, provider)?;
        let cas = pem::certificates(&source.ca)?;
        let info = chain
            .first()
            .and_then(|c| CertInfo::from_der(c))
            .ok_or_else(|| TlsError::File {
                path: source.cert_file().to_path_buf(),
                what: "the certificate cannot be parsed".into(),
            })?;
        let ca_infos = cas.iter().filter_map(|c| CertInfo::from_der(c)).collect();
        Self::assemble(source, chain, key, cas, info, ca_infos)
    }

    fn assemble(
        source: &SncSource,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cas: Vec<CertificateDer<'static>>,
        info: CertInfo,
        ca_infos: Vec<CertInfo>,
    ) -> Result<Self, TlsError> {
        let name = snc_name_of(&chain[0]).map_err(|what| TlsError::File {
            path: source.cert_file().to_path_buf(),
            what,
        })?;
        let mut roots = RootCertStore::empty();
        for ca in cas {
            roots.add(ca).map_err(|e| TlsError::File {
                path: source.ca.clone(),
                what: format!(
                    "CA certificate not usable ({e}); replace it with the CA's PEM certificate"
                ),
            })?;
        }
        Ok(Self {
            name,
            chain,
            key,
            roots,
            info,
            cas: ca_infos,
        })
    }
}

fn read_chain_and_key(
    source: &SncSource,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    match &source.identity {
        IdentityFiles::Pem { cert, key } => Ok((pem::certificates(cert)?, pem::private_key(key)?)),
        IdentityFiles::Pkcs12 {
            file,
            password_file,
        } => pkcs12::read_identity(file, password_file.as_deref(), provider),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(opts: SncOptions, secudir: &Path) -> Result<SncSource, TlsError> {
        SncSource::resolve(opts, Some(secudir.to_path_buf()))
    }

    #[test]
    fn secudir_pem_files_win_over_a_pkcs12_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(matches!(
            resolve(SncOptions::default(), d),
            Err(TlsError::NoIdentity { .. })
        ));
        std::fs::write(d.join(P12_FILE), b"x").unwrap();
        let pass = Some(d.join("pass"));
        let opts = SncOptions {
            p12_password_file: pass.clone(),
            ..SncOptions::default()
        };
        assert_eq!(
            resolve(opts.clone(), d).unwrap(),
            SncSource {
                identity: IdentityFiles::Pkcs12 {
                    file: d.join(P12_FILE),
                    password_file: pass,
                },
                ca: d.join(CA_FILE),
            }
        );
        std::fs::write(d.join(KEY_FILE), b"x").unwrap();
        let pem = IdentityFiles::Pem {
            cert: d.join(CERT_FILE),
            key: d.join(KEY_FILE),
        };
        assert_eq!(resolve(SncOptions::default(), d).unwrap().identity, pem);
        // A password file only goes with a PKCS#12 file.
        assert!(matches!(resolve(opts, d), Err(TlsError::Usage(_))));
    }

    #[test]
    fn explicit_files_win_and_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let p12 = SncOptions {
            p12: Some("/x/r.p12".into()),
            ca: Some("/x/ca.pem".into()),
            ..SncOptions::default()
        };
        assert_eq!(
            SncSource::resolve(p12.clone(), None).unwrap(),
            SncSource {
                identity: IdentityFiles::Pkcs12 {
                    file: "/x/r.p12".into(),
                    password_file: None,
                },
                ca: "/x/ca.pem".into(),
            }
        );
        let both = SncOptions {
            cert: Some("/x/r.crt".into()),
            ..p12
        };
        assert!(matches!(resolve(both, d), Err(TlsError::Usage(_))));
        let cert_only = SncOptions {
            cert: Some("/x/r.crt".into()),
            ..SncOptions::default()
        };
        assert_eq!(
            resolve(cert_only.clone(), d).unwrap().identity,
            IdentityFiles::Pem {
                cert: "/x/r.crt".into(),
                key: d.join(KEY_FILE),
            }
        );
        assert!(matches!(
            SncSource::resolve(cert_only, None),
            Err(TlsError::NoSecudir)
        ));
    }
}
