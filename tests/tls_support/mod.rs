//! Test support for SNC as TLS: certificates made with rcgen (CAs, router and client
//! identities, expired ones), written as PEM files, and a blocking TLS NI client (rustls
//! over std sockets).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use saprouter::tls::{Identity, SncFiles, SncSource, SncTls};

pub mod p12;
pub mod snc_router;

use crate::common::STEP;

/// A test CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed CA named `CN=<cn>`.
    pub fn new(cn: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name = dn(&[(DnType::CommonName, cn)]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    /// PEM of the CA certificate.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A router/client certificate for `subject` (RDNs in encoding order) valid for TLS
    /// server and client use; `expired` makes one that ended in 2020. Returns (cert, key).
    pub fn issue(&self, subject: &[(DnType, &str)], expired: bool) -> (String, String) {
        self.issue_with(subject, |params| {
            if expired {
                params.not_before = rcgen::date_time_ymd(2019, 1, 1);
                params.not_after = rcgen::date_time_ymd(2020, 1, 1);
            }
        })
    }

    /// As [`Ca::issue`], with `edit` changing the parameters (serial, validity, ...) before
    /// signing. Returns (cert, key).
    pub fn issue_with(
        &self,
        subject: &[(DnType, &str)],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn(subject);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        edit(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// The CA's key, as PEM (for tools that sign with it, such as `openssl x509 -req`).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

fn dn(rdns: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in rdns {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// A directory of PEM files that outlives the routers using it.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().expect("pki dir"),
        }
    }

    /// Writes an identity `CN=<cn>` issued by `ca` and trusting `trust`, as
    /// `<tag>.crt`, `<tag>.key`, `<tag>.ca.crt`.
    pub fn identity(&self, tag: &str, ca: &Ca, cn: &str, trust: &Ca, expired: bool) -> SncFiles {
        let (cert, key) = ca.issue(&[(DnType::CommonName, cn)], expired);
        self.write(tag, &cert, &key, &trust.pem())
    }

    /// Writes the three files of an identity.
    pub fn write(&self, tag: &str, cert: &str, key: &str, ca: &str) -> SncFiles {
        let path = |ext: &str| self.dir.path().join(format!("{tag}.{ext}"));
        std::fs::write(path("crt"), cert).expect("write cert");
        std::fs::write(path("key"), key).expect("write key");
        std::fs::write(path("ca.crt"), ca).expect("write ca");
        SncFiles {
            cert: path("crt"),
            key: path("key"),
            ca: path("ca.crt"),
        }
    }
}

/// Command-line options naming an identity's files.
pub fn snc_args(files: &SncFiles) -> Vec<String> {
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    vec![
        "--snc-cert".into(),
        s(&files.cert),
        "--snc-key".into(),
        s(&files.key),
        "--snc-ca".into(),
        s(&files.ca),
    ]
}

/// A TLS session to a router.
pub type TlsNi = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `port` on 127.0.0.1 with `config` and finishes the client's side of the
/// handshake (in TLS 1.3 the server may still reject the client certificate afterwards).
pub fn tls_connect_with(port: u16, config: Arc<ClientConfig>) -> io::Result<TlsNi> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(STEP))?;
    sock.set_write_timeout(Some(STEP))?;
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Connects with the identity in `files` (verifying the router against its CA file). The
/// files are read as they are, without the router's start-up checks, so that a client can
/// present an expired or otherwise broken certificate.
pub fn tls_connect(port: u16, files: &SncFiles) -> io::Result<TlsNi> {
    tls_connect_with(port, client_config(files))
}

/// The client configuration of the identity in `files` (see [`tls_connect`]).
pub fn client_config(files: &SncFiles) -> Arc<ClientConfig> {
    let provider = rustls::crypto::ring::default_provider();
    let identity = Identity::read(&SncSource::from(files), &provider).expect("client identity");
    SncTls::from_identity(identity)
        .expect("client configuration")
        .client_config()
}

/// A TLS 1.3 client without a certificate of its own that accepts any server.
pub fn anonymous_client() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Writes one NI frame.
pub fn send_frame(s: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    s.write_all(&crate::common::frame(payload))?;
    s.flush()
}

/// Reads one NI frame's payload (an error on EOF, TLS alerts and timeouts).
pub fn recv_frame(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    let n = u32::from_be_bytes(head) as usize;
    if n > 64 << 20 {
        return Err(io::Error::other(format!("frame of {n} bytes")));
    }
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Sends a route over any stream and returns the one reply frame.
pub fn route_over(s: &mut (impl Read + Write), hops: &[(&str, &str, &str)]) -> io::Result<Vec<u8>> {
    send_frame(s, &crate::common::route(hops, 0))?;
    recv_frame(s)
}

/// Runs openssl; returns stdout and stderr together (`pkcs12 -info` writes to stderr) and
/// panics with them when it fails.
pub fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}
