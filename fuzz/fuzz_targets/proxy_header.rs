//! PROXY protocol headers from load balancers (`proxyproto::scan`, `parse`, `read`): no
//! panic; a complete header lies within the input and the bounds (107 bytes for version
//! 1, 4096 for version 2); an incomplete verdict holds for every shorter prefix (the
//! router takes those bytes off the connection, so a wrong one would eat the client's
//! first bytes); a parsed header re-scans to the same length when bytes follow it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::proxyproto::{self, Command, Scan, MAX_HEADER, V1_MAX, V2_SIGNATURE};

fuzz_target!(|data: &[u8]| {
    match proxyproto::scan(data) {
        Ok(Scan::Complete(n)) => {
            assert!(n <= data.len() && n <= MAX_HEADER);
            if data[0] != V2_SIGNATURE[0] {
                assert!(n <= V1_MAX);
            }
            let parsed = proxyproto::parse(&data[..n]);
            assert_eq!(proxyproto::read(data), parsed.clone().map(|h| Some((h, n))));
            if let Ok(header) = parsed {
                assert!(header.version == 1 || header.version == 2);
                if let Command::Proxy { source, destination } = header.command {
                    assert_eq!(source.is_ipv4(), destination.is_ipv4());
                }
                // Whatever follows the header does not move its end.
                let mut longer = data[..n].to_vec();
                longer.extend_from_slice(b"\x00\x00\x00\x10NI_ROUTE\0");
                assert_eq!(proxyproto::scan(&longer), Ok(Scan::Complete(n)));
            }
        }
        Ok(Scan::Incomplete) => {
            assert!(data.len() < MAX_HEADER);
            assert_eq!(proxyproto::read(data), Ok(None));
            for cut in 0..data.len() {
                assert_eq!(proxyproto::scan(&data[..cut]), Ok(Scan::Incomplete));
            }
        }
        Err(_) => assert!(proxyproto::read(data).is_err()),
    }
});
