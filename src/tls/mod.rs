//! SNC as TLS (design.md "SNC as TLS", docs/snc-tls.md): the router's identity, TLS 1.3
//! with mutual authentication in both directions, and the peer's SNC name (`p:<DN>` of its
//! certificate subject) once a handshake is done. Name checks against `-K`, `KT` and `K*`
//! lines belong to the router; this module only authenticates.

mod dn;
mod identity;
mod verify;

pub use dn::snc_name_of;
pub use identity::{check_own_name, Identity, SncFiles, CA_FILE, CERT_FILE, KEY_FILE};

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{CertificateError, ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// Why the router's SNC identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No explicit file and no `SECUDIR`.
    #[error("-K: SECUDIR is not set; set it or give --snc-cert, --snc-key and --snc-ca")]
    NoSecudir,
    /// A file cannot be read.
    #[error("-K: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: io::Error,
    },
    /// A file holds no usable PEM object.
    #[error("-K: {}: {what}", path.display())]
    Pem {
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
    #[error("-K {wanted:?}: the certificate {} is issued to {found:?}", path.display())]
    NameMismatch {
        /// The `-K` value.
        wanted: String,
        /// The certificate's subject.
        found: String,
        /// The certificate file.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate.
    #[error("-K: the private key does not belong to the certificate")]
    KeyMismatch,
    /// rustls refused the material.
    #[error("-K: TLS set-up failed: {0}")]
    Setup(String),
}

/// The router's TLS side: its name and ready configurations. Cheap to clone.
#[derive(Clone)]
pub struct SncTls {
    name: String,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
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

impl SncTls {
    /// Loads the identity (see [`Identity::load`]) and builds TLS 1.3-only configurations
    /// that require and verify a certificate from every peer.
    pub fn load(files: &SncFiles, wanted: Option<&str>) -> Result<Self, TlsError> {
        Self::from_identity(Identity::load(files, wanted)?).map_err(|e| match e {
            TlsError::KeyMismatch => TlsError::Pem {
                path: files.key.clone(),
                what: format!(
                    "the private key does not belong to the certificate {}",
                    files.cert.display()
                ),
            },
            other => other,
        })
    }

    /// Builds the configurations for a loaded identity.
    pub fn from_identity(identity: Identity) -> Result<Self, TlsError> {
        let setup = |e: rustls::Error| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
            other => TlsError::Setup(other.to_string()),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
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
        Ok(Self {
            name: identity.name,
            acceptor: TlsAcceptor::from(Arc::new(server_config)),
            connector: TlsConnector::from(Arc::new(client_config)),
        })
    }

    /// The router's own SNC name (`p:<DN>` of its certificate).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client side's configuration (TLS 1.3, this identity's certificate, peers checked
    /// against the CA without host names), for clients such as tests and tools.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(self.connector.config())
    }

    /// Runs the server side of a handshake before `deadline`; returns the session and the
    /// client's SNC name, or why it failed.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        deadline: Instant,
    ) -> Result<(ServerStream, String), String> {
        let stream = match timeout_at(deadline, self.acceptor.accept(tcp)).await {
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
        let stream = match timeout_at(deadline, self.connector.connect(server_name, tcp)).await {
            Err(_) => return Err("handshake not finished within the -W timeout".into()),
            Ok(Err(err)) => return Err(describe(&err)),
            Ok(Ok(stream)) => stream,
        };
        let name = peer_name(stream.get_ref().1.peer_certificates())?;
        Ok((stream, name))
    }
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
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "peer certificate not issued by a trusted CA",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "peer certificate expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "peer certificate not valid yet"
            }
            CertificateError::BadSignature => "peer certificate has a bad signature",
            CertificateError::Revoked => "peer certificate revoked",
            _ => "peer certificate rejected",
        },
        rustls::Error::NoCertificatesPresented => "peer presented no certificate",
        rustls::Error::PeerIncompatible(_) => "peer does not speak TLS 1.3",
        rustls::Error::AlertReceived(_) => "peer refused the handshake",
        _ => "handshake failed",
    };
    format!("{why} ({tls})")
}
