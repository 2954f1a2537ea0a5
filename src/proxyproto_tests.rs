//! Byte layouts of both versions, and the bounds.

use super::*;
use proptest::prelude::*;

fn sa(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A version 2 header: `ver_cmd` (0x21 PROXY, 0x20 LOCAL), `fam` (0x11 TCP4 ...), body.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn tcp4_body() -> Vec<u8> {
    // 192.0.2.10:40000 -> 198.51.100.1:3299
    let mut b = vec![192, 0, 2, 10, 198, 51, 100, 1];
    b.extend_from_slice(&40000u16.to_be_bytes());
    b.extend_from_slice(&3299u16.to_be_bytes());
    b
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let line = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 3299\r\n";
    assert_eq!(scan(line), Ok(Scan::Complete(line.len())));
    assert_eq!(
        parse(line),
        Ok(Header {
            version: 1,
            command: Command::Proxy {
                source: sa("192.0.2.10:40000"),
                destination: sa("198.51.100.1:3299"),
            },
        })
    );
    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 5 3299\r\n";
    assert_eq!(
        read(line).unwrap().unwrap().0.command,
        Command::Proxy {
            source: sa("[2001:db8::7]:5"),
            destination: sa("[2001:db8::1]:3299"),
        }
    );
    let line = b"PROXY UNKNOWN\r\n";
    assert_eq!(read(line).unwrap().unwrap().0.command, Command::Local);
    // UNKNOWN may carry anything up to the CRLF.
    let line = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_eq!(read(line).unwrap().unwrap().0.command, Command::Local);
}

#[test]
fn v1_end_is_the_first_crlf_and_the_bytes_behind_it_stay() {
    let mut bytes = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 3299\r\n".to_vec();
    let end = bytes.len();
    bytes.extend_from_slice(b"\x00\x00\x00\x10NI_ROUTE");
    assert_eq!(scan(&bytes), Ok(Scan::Complete(end)));
    assert_eq!(read(&bytes).unwrap().unwrap().1, end);
    for cut in 0..end {
        assert_eq!(scan(&bytes[..cut]), Ok(Scan::Incomplete), "prefix {cut}");
    }
}

#[test]
fn v1_bounds_and_garbage() {
    // 107 bytes with the CRLF is the longest line.
    let mut longest = b"PROXY UNKNOWN ".to_vec();
    longest.resize(V1_MAX - 2, b'x');
    longest.extend_from_slice(b"\r\n");
    assert_eq!(scan(&longest), Ok(Scan::Complete(V1_MAX)));
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX - 1, b'x');
    long.extend_from_slice(b"\r\n");
    assert_eq!(scan(&long), Err(HeaderError::V1TooLong));
    assert_eq!(scan(&long[..V1_MAX]), Err(HeaderError::V1TooLong));
    assert_eq!(scan(&long[..V1_MAX - 1]), Ok(Scan::Incomplete));
    assert!(matches!(
        scan(b"PROXY TCP4\rx"),
        Err(HeaderError::Invalid { version: 1, .. })
    ));
    for bad in [
        &b"PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n"[..],
        b"PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n",
        b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n",
        b"PROXY TCP4 1.2.3.4  1.2.3.5 1 2\r\n",
        b"PROXY \xff\r\n",
    ] {
        let n = match scan(bad) {
            Ok(Scan::Complete(n)) => n,
            other => panic!("{bad:?}: {other:?}"),
        };
        assert!(
            matches!(
                parse(&bad[..n]),
                Err(HeaderError::Invalid { version: 1, .. })
            ),
            "{bad:?}"
        );
    }
    for not in [
        &b"\x00\x00\x00\x10"[..],
        b"GET / HTTP/1.0\r\n",
        b"PROXY\r\n",
        b"proxy ",
    ] {
        assert_eq!(scan(not), Err(HeaderError::NotAHeader), "{not:?}");
    }
}

#[test]
fn v2_ipv4_ipv6_local_unspec_unix() {
    let h = v2(0x21, 0x11, &tcp4_body());
    assert_eq!(h.len(), 28);
    assert_eq!(
        read(&h),
        Ok(Some((
            Header {
                version: 2,
                command: Command::Proxy {
                    source: sa("192.0.2.10:40000"),
                    destination: sa("198.51.100.1:3299"),
                },
            },
            28
        )))
    );
    let mut body = "2001:db8::7"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    body.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    body.extend_from_slice(&[0, 5, 0x0c, 0xe3]);
    assert_eq!(
        read(&v2(0x21, 0x21, &body)).unwrap().unwrap().0.command,
        Command::Proxy {
            source: sa("[2001:db8::7]:5"),
            destination: sa("[2001:db8::1]:3299"),
        }
    );
    // LOCAL ignores its addresses, whatever the family says.
    assert_eq!(
        read(&v2(0x20, 0x00, &[])).unwrap().unwrap().0.command,
        Command::Local
    );
    assert_eq!(
        read(&v2(0x20, 0x11, &tcp4_body()))
            .unwrap()
            .unwrap()
            .0
            .command,
        Command::Local
    );
    assert_eq!(
        read(&v2(0x21, 0x00, &[])).unwrap().unwrap().0.command,
        Command::NoAddress
    );
    assert_eq!(
        read(&v2(0x21, 0x31, &[0u8; 216]))
            .unwrap()
            .unwrap()
            .0
            .command,
        Command::NoAddress
    );
}

#[test]
fn v2_tlvs_are_skipped_and_the_bytes_behind_stay() {
    let mut body = tcp4_body();
    // PP2_TYPE_UNIQUE_ID (0x05) with 8 bytes, PP2_TYPE_NOOP (0x04) with 3.
    body.extend_from_slice(&[0x05, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x04, 0, 3, 0, 0, 0]);
    let mut h = v2(0x21, 0x11, &body);
    let end = h.len();
    h.extend_from_slice(&[0x16, 0x03, 0x01]);
    let (header, n) = read(&h).unwrap().unwrap();
    assert_eq!(n, end);
    assert!(matches!(header.command, Command::Proxy { .. }));
    for cut in 0..end {
        assert_eq!(scan(&h[..cut]), Ok(Scan::Incomplete), "prefix {cut}");
    }
}

#[test]
fn v2_bounds_and_invalid_fields() {
    // The length field alone decides: 16 + 4080 is taken, one more is not.
    let mut fixed = v2(0x21, 0x11, &[]);
    fixed[14..16].copy_from_slice(&((MAX_HEADER - V2_FIXED) as u16).to_be_bytes());
    assert_eq!(scan(&fixed), Ok(Scan::Incomplete));
    fixed[14..16].copy_from_slice(&((MAX_HEADER - V2_FIXED + 1) as u16).to_be_bytes());
    assert_eq!(scan(&fixed), Err(HeaderError::V2TooLong(MAX_HEADER + 1)));
    fixed[14..16].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(scan(&fixed), Err(HeaderError::V2TooLong(16 + 65535)));
    for (what, bytes) in [
        ("version 1 in a v2 header", v2(0x11, 0x11, &tcp4_body())),
        ("command 2", v2(0x22, 0x11, &tcp4_body())),
        ("family 4", v2(0x21, 0x41, &tcp4_body())),
        ("protocol 3", v2(0x21, 0x13, &tcp4_body())),
        ("datagram", v2(0x21, 0x12, &tcp4_body())),
        ("short addresses", v2(0x21, 0x11, &[1, 2, 3])),
        ("short IPv6", v2(0x21, 0x21, &tcp4_body())),
    ] {
        assert!(
            matches!(read(&bytes), Err(HeaderError::Invalid { version: 2, .. })),
            "{what}: {:?}",
            read(&bytes)
        );
    }
    assert_eq!(scan(b"\r\n\r\n\0\r\nQUIT\r"), Err(HeaderError::NotAHeader));
    assert_eq!(scan(b"\r\n\r\n\0"), Ok(Scan::Incomplete));
}

proptest! {
    /// Any bytes: no panic; a complete header lies within the bytes and the bounds; an
    /// incomplete verdict holds for every shorter prefix too (a reader may consume them).
    #[test]
    fn scan_is_bounded_and_monotonic(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), v in 0u8..3) {
        match v {
            0 => bytes.splice(0..0, V2_SIGNATURE.iter().copied()).for_each(drop),
            1 => bytes.splice(0..0, b"PROXY ".iter().copied()).for_each(drop),
            _ => {}
        }
        match scan(&bytes) {
            Ok(Scan::Complete(n)) => {
                prop_assert!(n <= bytes.len() && n <= MAX_HEADER);
                let _ = parse(&bytes[..n]);
            }
            Ok(Scan::Incomplete) => {
                prop_assert!(bytes.len() < MAX_HEADER);
                for cut in 0..bytes.len() {
                    prop_assert_eq!(scan(&bytes[..cut]), Ok(Scan::Incomplete));
                }
            }
            Err(_) => {}
        }
    }
}
