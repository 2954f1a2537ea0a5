//! SNC as TLS (docs/snc-tls.md): the router's identity, TLS 1.3 with mutual authentication
//! in both directions, and the peer's SNC name (`p:<DN>` of its certificate subject) once a
//! handshake is done. Name checks against `-K`, `KT` and `K*` lines belong to the router;
//! this module only authenticates.
//!
//! The identity in use is swapped whole when `-n` or SIGHUP re-reads the files
//! ([`SncTls::reload`]): each handshake takes the configuration in force when it starts,
//! so sessions already running keep theirs and new ones get the new certificate at once.

mod certinfo;
mod check;
mod dn;
mod identity;
mod pem;
mod pkcs12;
mod verify;

pub use certinfo::{unix_now, utc, CertInfo, EXPIRY_WARNING_DAYS};
pub use dn::snc_name_of;
pub use identity::{
    check_own_name, Identity, IdentityFiles, SncFiles, SncOptions, SncSource, CA_FILE, CERT_FILE,
    KEY_FILE, P12_FILE,
};

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// Why the router's SNC identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No explicit file and no `SECUDIR`.
    #[error("-K: SECUDIR is not set; set it or give --snc-cert, --snc-key and --snc-ca (or --snc-p12 and --snc-ca)")]
    NoSecudir,
    /// `SECUDIR` holds no identity.
    #[error("-K: SECUDIR {} holds neither saprouter.crt with saprouter.key nor saprouter.p12; put the router's certificate and key there, or give --snc-cert/--snc-key or --snc-p12", dir.display())]
    NoIdentity {
        /// `SECUDIR`.
        dir: PathBuf,
    },
    /// Options that do not go together.
    #[error("-K: {0}")]
    Usage(String),
    /// A file cannot be read.
    #[error("-K: cannot read {}: {source}; check the path and that the router's user may read it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: io::Error,
    },
    /// A file holds something unusable; `what` says what and what to do.
    #[error("-K: {}: {what}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The `-K` name is not an X.509 name.
    #[error("-K {name:?}: {why}")]
    BadName {
        /// The `-K` value.
        name: String,
        /// Why.
        why: String,
    },
    /// The certificate is somebody else's.
    #[error("-K {wanted:?}: the certificate {} is issued to {found:?}; give -K that name, or the certificate issued to {wanted:?}", path.display())]
    NameMismatch {
        /// The `-K` value.
        wanted: String,
        /// The certificate's subject.
        found: String,
        /// The certificate file.
        path: PathBuf,
    },
    /// rustls refused the material.
    #[error("-K: TLS set-up failed: {0}")]
    Setup(String),
}

/// One generation of the router's TLS side.
struct Active {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    info: CertInfo,
    cas: Vec<CertInfo>,
}

/// The router's TLS side: its name and the configurations in force. Cheap to clone; clones
/// share the identity, so a reload through one is seen by all.
#[derive(Clone)]
pub struct SncTls {
    name: Arc<str>,
    /// The `-K` name as given, or, for `-K` alone, the name the certificate had at start:
    /// a reload must keep it (the tables of other routers name this one by it).
    wanted: Arc<str>,
    source: Option<Arc<SncSource>>,
    active: Arc<RwLock<Arc<Active>>>,
}

impl std::fmt::Debug for SncTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SncTls").field("name", &self.name).finish()
    }
}

/// An inbound TLS session.
pub type ServerStream = server::TlsStream<TcpStream>;
/// An outbound TLS session.
pub type ClientStream = client::TlsStream<TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl SncTls {
    /// Loads and checks the identity in PEM files (see [`Identity::load`]).
    pub fn load(files: &SncFiles, wanted: Option<&str>) -> Result<Self, TlsError> {
        Self::open(SncSource::from(files), wanted)
    }

    /// Loads and checks the identity from `source` and builds TLS 1.3-only configurations
    /// that require and verify a certificate from every peer. [`SncTls::reload`] reads
    /// `source` again.
    pub fn open(source: SncSource, wanted: Option<&str>) -> Result<Self, TlsError> {
        let provider = provider();
        let identity = Identity::load(&source, wanted, &provider)?;
        let mut tls = Self::from_identity(identity)?;
        tls.wanted = Arc::from(wanted.unwrap_or(&tls.name));
        tls.source = Some(Arc::new(source));
        Ok(tls)
    }

    /// Builds the configurations for an identity as it is (no checks, no reloads).
    pub fn from_identity(identity: Identity) -> Result<Self, TlsError> {
        let name: Arc<str> = Arc::from(identity.name.as_str());
        let active = build(identity, provider())?;
        Ok(Self {
            wanted: Arc::clone(&name),
            name,
            source: None,
            active: Arc::new(RwLock::new(Arc::new(active))),
        })
    }

    /// Re-reads the files given at start and, when the new identity passes every check of
    /// the start (same SNC name), puts it in force for the handshakes that start from now on.
    /// On any error the identity in force stays. Returns the certificate now in use.
    /// Blocking (file reads): run it off the async workers.
    pub fn reload(&self) -> Result<CertInfo, TlsError> {
        let Some(source) = &self.source else {
            return Ok(self.certificate());
        };
        let provider = provider();
        let identity = Identity::load(source, Some(&self.wanted), &provider)?;
        let active = build(identity, provider)?;
        let info = active.info.clone();
        *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(active);
        Ok(info)
    }

    fn current(&self) -> Arc<Active> {
        Arc::clone(&self.active.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The router's own SNC name (`p:<DN>` of its certificate).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The files the identity is read from (none for one built from an [`Identity`]).
    pub fn source(&self) -> Option<&SncSource> {
        self.source.as_deref()
    }

    /// The router's certificate in use.
    pub fn certificate(&self) -> CertInfo {
        self.current().info.clone()
    }

    /// The trusted CA certificates in use.
    pub fn ca_certificates(&self) -> Vec<CertInfo> {
        self.current().cas.clone()
    }

    /// The client side's configuration (TLS 1.3, this identity's certificate, peers checked
    /// against the CA without host names), for clients such as tests and tools.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(self.current().connector.config())
    }

    /// Runs the server side of a handshake before `deadline`; returns the session and the
    /// client's SNC name, or why it failed.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        deadline: Instant,
    ) -> Result<(ServerStream, String), String> {
        let acceptor = self.current().acceptor.clone();
        let stream = match timeout_at(deadline, acceptor.accept(tcp)).await {
            Err(_) => return Err("handshake not finished within the -W timeout".into()),
            Ok(Err(err)) => return Err(describe(&err)),
            Ok(Ok(stream)) => stream,
        };
        let name = peer_name(stream.get_ref().1.peer_certificates())?;
        Ok((stream, name))
    }

    /// Runs the client side of a handshake with the next hop before `deadline`; returns the
    /// session and the server's SNC name, or why it failed.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        ip: IpAddr,
        deadline: Instant,
    ) -> Result<(ClientStream, String), String> {
        let server_name = ServerName::IpAddress(ip.into());
        let connector = self.current().connector.clone();
        let stream = match timeout_at(deadline, connector.connect(server_name, tcp)).await {
            Err(_) => return Err("handshake not finished within the -W timeout".into()),
            Ok(Err(err)) => return Err(describe(&err)),
            Ok(Ok(stream)) => stream,
        };
        let name = peer_name(stream.get_ref().1.peer_certificates())?;
        Ok((stream, name))
    }
}

/// The server and client configurations of one identity.
fn build(identity: Identity, provider: Arc<CryptoProvider>) -> Result<Active, TlsError> {
    let setup = |e: rustls::Error| TlsError::Setup(e.to_string());
    let roots = Arc::new(identity.roots);
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
    let mut server_config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(setup)?;
    // Every connection authenticates afresh (no resumption that would skip the checks).
    server_config.session_storage = Arc::new(NoServerSessionStorage {});
    server_config.send_tls13_tickets = 0;
    let mut client_config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verify::ChainVerifier::new(roots, provider)))
        .with_client_auth_cert(identity.chain, identity.key)
        .map_err(setup)?;
    client_config.resumption = Resumption::disabled();
    Ok(Active {
        acceptor: TlsAcceptor::from(Arc::new(server_config)),
        connector: TlsConnector::from(Arc::new(client_config)),
        info: identity.info,
        cas: identity.cas,
    })
}

/// The SNC name of a verified chain's end-entity certificate.
fn peer_name(chain: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> Result<String, String> {
    let first = chain
        .and_then(|c| c.first())
        .ok_or_else(|| "peer presented no certificate".to_string())?;
    snc_name_of(first)
}

/// True when an I/O error on a TLS stream comes from TLS itself (an alert, a bad record),
/// not from the socket.
pub fn is_tls_error(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// A handshake error in words an operator can act on, with rustls' own text behind it.
pub fn describe(err: &io::Error) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("connection failed during the handshake ({err})");
    };
    let why = match tls {
        rustls::Error::InvalidCertificate(cert) => verify::certificate_problem(cert),
        rustls::Error::NoCertificatesPresented => "peer presented no certificate".into(),
        rustls::Error::PeerIncompatible(_) => "peer does not speak TLS 1.3".into(),
        rustls::Error::AlertReceived(_) => "peer refused the handshake".into(),
        _ => "handshake failed".into(),
    };
    format!("{why} ({tls})")
}
