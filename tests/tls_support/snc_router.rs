//! Routers with SNC identities for the tests of SNC as TLS: a CA with a router identity
//! `CN=SAPROUTER1`, and a router started with `-K` and its files.

use super::{snc_args, Ca, Pki};
use crate::common::TestRouter;

pub const L: &str = "127.0.0.1";
/// A second loopback address: the KT tests' next router, so that a KT line naming it does
/// not also cover clients connecting from 127.0.0.1.
pub const L2: &str = "127.0.0.2";

pub struct Setup {
    pub pki: Pki,
    pub ca: Ca,
    pub router: saprouter::tls::SncFiles,
}

/// A CA and a router identity `CN=SAPROUTER1` trusting it.
pub fn setup() -> Setup {
    let pki = Pki::new();
    let ca = Ca::new("Test CA");
    let router = pki.identity("r1", &ca, "SAPROUTER1", &ca, false);
    Setup { pki, ca, router }
}

pub fn start_snc(table: &str, name: &str, files: &saprouter::tls::SncFiles) -> TestRouter {
    let mut args = vec!["-K".to_string(), name.to_string()];
    args.extend(snc_args(files));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    TestRouter::start(table, &refs)
}
