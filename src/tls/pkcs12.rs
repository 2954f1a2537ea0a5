//! The router's identity from one PKCS#12 file (`--snc-p12`, `$SECUDIR/saprouter.p12`):
//! what `sapgenpse export_p12` makes of a SAP PSE, and what `openssl pkcs12 -export`
//! writes, both in OpenSSL 3's default form (PBES2: AES-256-CBC with PBKDF2) and in the
//! older PBE-SHA1-3DES form. The file holds one private key, its certificate and usually
//! the CA chain; the router presents the key's certificate and the intermediates.

use std::path::Path;

use p12_keystore::error::Error as P12Error;
use p12_keystore::{CertificateBag, Pkcs12Archive};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::pem::read;
use super::TlsError;

fn problem(path: &Path, what: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// The password in `file`: its content without one trailing line end. No file, no password.
pub fn password(file: Option<&Path>) -> Result<String, TlsError> {
    let Some(path) = file else {
        return Ok(String::new());
    };
    let bytes = read(path)?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| problem(path, "the password is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The certificate chain (the key's certificate first, then the intermediates that the file
/// holds; self-signed roots stay out, peers have them) and the private key.
pub fn read_identity(
    path: &Path,
    password_file: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let bytes = read(path)?;
    let secret = password(password_file)?;
    let archive = Pkcs12Archive::from_pkcs12(&bytes, &secret)
        .map_err(|e| problem(path, why_unreadable(&e, password_file)))?;
    let key = match archive.keys.as_slice() {
        [one] => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(one.key.as_der().to_vec())),
        [] => return Err(problem(path, "holds no private key: export it together with the key (sapgenpse export_p12, or openssl pkcs12 -export -inkey KEY -in CERT)")),
        more => {
            return Err(problem(
                path,
                format!("holds {} private keys: export only the router's (one key, its certificate and the CA chain)", more.len()),
            ))
        }
    };
    let public = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| problem(path, format!("the private key cannot be used ({e}); RSA (2048 bits or more), ECDSA P-256/P-384 and Ed25519 keys are supported")))?
        .public_key()
        .map(|spki| spki.as_ref().to_vec());
    let leaf = leaf_of(&archive, public.as_deref(), archive.keys[0].local_key_id.as_ref().map(|id| id.0.as_slice()))
        .ok_or_else(|| problem(path, "holds no certificate for its private key: export the key together with its certificate"))?;
    Ok((chain_from(&archive.certs, leaf), key))
}

/// What to do when the archive cannot be opened.
fn why_unreadable(err: &P12Error, password_file: Option<&Path>) -> String {
    match err {
        P12Error::MacError(_) | P12Error::UnpadError => match password_file {
            None => "cannot be opened without a password: put the password in a file readable by the router's user only and give it with --snc-p12-pass-file".into(),
            Some(file) => format!(
                "cannot be opened with the password in {}: the password is wrong (the file holds the password alone, one line)",
                file.display()
            ),
        },
        P12Error::DerError(e) => format!(
            "is not a PKCS#12 file ({e}); PEM certificates and keys go to --snc-cert and --snc-key"
        ),
        P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => format!(
            "is protected by a scheme this router does not read ({err}): export it again with openssl pkcs12 -export (AES-256-CBC) or with -legacy (3DES)"
        ),
        other => format!("cannot be read as PKCS#12 ({other}); export it again (sapgenpse export_p12 or openssl pkcs12 -export)"),
    }
}

/// The certificate of the key: the one with its public key, else the one with its local
/// key id.
fn leaf_of<'a>(
    archive: &'a Pkcs12Archive,
    public: Option<&[u8]>,
    key_id: Option<&[u8]>,
) -> Option<&'a CertificateBag> {
    let by_key = public.and_then(|spki| {
        archive.certs.iter().find(|bag| {
            X509Certificate::from_der(bag.cert.as_der())
                .is_ok_and(|(_, c)| c.public_key().raw == spki)
        })
    });
    by_key.or_else(|| {
        let id = key_id?;
        archive
            .certs
            .iter()
            .find(|bag| bag.local_key_id.as_deref() == Some(id))
    })
}

/// `leaf`, then its issuers among `certs` up to (not including) a self-signed root.
fn chain_from(certs: &[CertificateBag], leaf: &CertificateBag) -> Vec<CertificateDer<'static>> {
    let der = |bag: &CertificateBag| CertificateDer::from(bag.cert.as_der().to_vec());
    let mut chain = vec![der(leaf)];
    let mut current = leaf;
    while current.cert.issuer() != current.cert.subject() {
        let Some(issuer) = certs.iter().find(|c| {
            c.cert.subject() == current.cert.issuer() && c.cert.issuer() != c.cert.subject()
        }) else {
            break;
        };
        if chain.iter().any(|c| c.as_ref() == issuer.cert.as_der()) {
            break; // a loop of cross-signed certificates
        }
        chain.push(der(issuer));
        current = issuer;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::password;

    #[test]
    fn the_password_file_loses_one_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        for (content, expected) in [
            ("s3cret pass\n", "s3cret pass"),
            ("crlf\r\n", "crlf"),
            ("none", "none"),
            ("two\n\n", "two\n"),
            ("", ""),
        ] {
            std::fs::write(&file, content).unwrap();
            assert_eq!(password(Some(&file)).unwrap(), expected, "{content:?}");
        }
        assert_eq!(password(None).unwrap(), "");
    }
}
