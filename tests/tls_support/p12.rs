//! A PKI for SNC in operation: a CA, router certificates with set serials and end dates,
//! and PKCS#12 files as `openssl pkcs12 -export` writes them, in either protection.

use std::path::PathBuf;

use rcgen::{DnType, SerialNumber};
use saprouter::tls::SncFiles;

use super::{openssl, Ca};

/// How `openssl pkcs12 -export` protects the file.
#[derive(Clone, Copy, Debug)]
pub enum Form {
    /// OpenSSL 3's default: PBES2 with AES-256-CBC and PBKDF2, HMAC-SHA256 MAC.
    Aes,
    /// The older form: PBE-SHA1-3DES for keys and certificates, SHA-1 MAC.
    TripleDes,
}

pub struct P12Pki {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
}

impl P12Pki {
    pub fn new() -> P12Pki {
        let pki = P12Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new("Test CA"),
        };
        std::fs::write(pki.path("ca.crt"), pki.ca.pem()).unwrap();
        std::fs::write(pki.path("pass"), "s3cret pass\n").unwrap();
        pki
    }

    /// A client identity `CN=CLIENT` from the same CA.
    pub fn client(&self) -> SncFiles {
        let (cert, key) = self.ca.issue(&[(DnType::CommonName, "CLIENT")], false);
        self.write("client", &cert, &key)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// PEM files of a router certificate `CN=<cn>` with `serial`, valid until `end`.
    pub fn issue(&self, tag: &str, cn: &str, serial: u64, end: (i32, u8, u8, i64)) -> SncFiles {
        let (cert, key) = self.ca.issue_with(&[(DnType::CommonName, cn)], |p| {
            p.serial_number = Some(SerialNumber::from(serial));
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(end.0, end.1, end.2);
        });
        self.write(tag, &cert, &key)
    }

    pub fn write(&self, tag: &str, cert: &str, key: &str) -> SncFiles {
        let files = SncFiles {
            cert: self.path(&format!("{tag}.crt")),
            key: self.path(&format!("{tag}.key")),
            ca: self.path("ca.crt"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    /// `openssl pkcs12 -export` of `files` (key, certificate, CA) into `<tag>.p12`, with the
    /// password in `pass` (or none); checks with `openssl pkcs12 -info` that the file is in
    /// `form`.
    pub fn export(&self, files: &SncFiles, tag: &str, form: Form, password: bool) -> PathBuf {
        let out = self.path(&format!("{tag}.p12"));
        let pass = format!("file:{}", self.path("pass").display());
        let pass = if password { pass.as_str() } else { "pass:" };
        let mut args: Vec<&str> = vec!["pkcs12", "-export", "-passout", pass];
        if let Form::TripleDes = form {
            args.extend([
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ]);
        }
        let (key, cert, ca) = (
            files.key.to_string_lossy(),
            files.cert.to_string_lossy(),
            files.ca.to_string_lossy(),
        );
        let out_s = out.to_string_lossy();
        args.extend([
            "-inkey",
            &key,
            "-in",
            &cert,
            "-certfile",
            &ca,
            "-out",
            &out_s,
        ]);
        openssl(&args);
        let pass_in = if password {
            format!("file:{}", self.path("pass").display())
        } else {
            "pass:".into()
        };
        let info = openssl(&[
            "pkcs12", "-info", "-noout", "-in", &out_s, "-passin", &pass_in,
        ]);
        let expected = match form {
            Form::Aes => "AES-256-CBC",
            Form::TripleDes => "pbeWithSHA1And3-KeyTripleDES-CBC",
        };
        assert!(info.contains(expected), "{form:?}: {info}");
        out
    }
}
