//! Unit tests of the route request codec, incl. docs/protocol.md §7.1-7.3 and hostile
//! inputs H10-H24 (docs/hardening.md).

use super::*;
use crate::ni::hex;
use proptest::prelude::*;

/// Payload of a frame: the 4-byte prefix checked and stripped.
fn payload(frame: &[u8]) -> Vec<u8> {
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    frame[4..].to_vec()
}

fn v7_1() -> Vec<u8> {
    payload(&hex("00 00 00 47 4e 49 5f 52 4f 55 54 45 00 02 28 02
         00 00 00 01 00 00 00 2f 00 00 00 1c 73 61 70 72
         6f 75 74 65 72 2e 65 78 61 6d 70 6c 65 2e 63 6f
         6d 00 33 32 39 39 00 00 31 39 32 2e 31 36 38 2e
         38 38 2e 37 00 33 33 30 30 00 00"))
}

fn v7_2() -> Vec<u8> {
    payload(&hex("00 00 00 3b 4e 49 5f 52 4f 55 54 45 00 02 28 02
         01 00 00 01 00 00 00 23 00 00 00 0e 38 2e 38 2e
         38 2e 38 00 33 32 39 39 00 00 31 30 2e 30 2e 30
         2e 31 00 33 32 30 30 00 53 33 63 72 33 74 00"))
}

fn v7_3() -> Vec<u8> {
    payload(&hex("00 00 00 36 4e 49 5f 52 4f 55 54 45 00 02 27 02
         00 00 00 01 00 00 00 1e 00 00 00 0f 31 30 2e 30
         2e 30 2e 35 00 33 32 39 39 00 00 31 30 2e 30 2e
         30 2e 39 00 33 32 30 30 00 00"))
}

fn hop(host: &str, service: &str, password: &str) -> RouteHop {
    RouteHop::new(host, service).with_password(password)
}

#[test]
fn decodes_live_capture_7_1() {
    let bytes = v7_1();
    let r = RouteRequest::decode(&bytes).unwrap();
    assert_eq!(r.ni_version, 40);
    assert_eq!(r.talk_mode, talk_mode::NI_MSG_IO);
    assert_eq!(r.rest, 1);
    assert_eq!(r.offset, 28);
    assert_eq!(
        r.hops,
        vec![
            hop("saprouter.example.com", "3299", ""),
            hop("192.168.88.7", "3300", "")
        ]
    );
    assert_eq!(r.next_index(), 1);
    assert_eq!(r.next_hop().host, "192.168.88.7");
    assert_eq!(r.own_hop().host, "saprouter.example.com");
    assert_eq!((r.routers_before(), r.routers_after()), (0, 0));
    assert_eq!(r.advanced(), None);
    assert_eq!(r.encode(), bytes);
    assert_eq!(RouteRequest::new(r.hops.clone(), 0, 40), r);
}

#[test]
fn decodes_pysap_raw_with_password_7_2() {
    let bytes = v7_2();
    let r = RouteRequest::decode(&bytes).unwrap();
    assert_eq!(
        (r.ni_version, r.talk_mode, r.rest, r.offset),
        (40, 1, 1, 14)
    );
    assert_eq!(
        r.hops,
        vec![
            hop("8.8.8.8", "3299", ""),
            hop("10.0.0.1", "3200", "S3cr3t")
        ]
    );
    assert_eq!(r.encode(), bytes);
    let built = RouteRequest::new(r.hops.clone(), talk_mode::NI_RAW_IO, 40);
    assert_eq!(built.encode(), bytes);
}

#[test]
fn decodes_metasploit_7_3() {
    let bytes = v7_3();
    let r = RouteRequest::decode(&bytes).unwrap();
    assert_eq!(
        (r.ni_version, r.talk_mode, r.rest, r.offset),
        (39, 0, 1, 15)
    );
    assert_eq!(
        r.hops,
        vec![hop("10.0.0.5", "3299", ""), hop("10.0.0.9", "3200", "")]
    );
    assert_eq!(r.encode(), bytes);
}

#[test]
fn multi_hop_advances_past_each_router() {
    let hops = vec![
        hop("r1", "3299", "pw"),
        hop("r2.example", "", ""),
        hop("target", "3200", ""),
    ];
    let r = RouteRequest::new(hops, talk_mode::NI_MSG_IO, 40);
    assert_eq!((r.rest, r.offset), (2, 11));
    let decoded = RouteRequest::decode(&r.encode()).unwrap();
    assert_eq!(decoded, r);
    assert_eq!(decoded.next_hop().host, "r2.example");
    assert_eq!(decoded.own_hop().host, "r1");
    assert_eq!((decoded.routers_before(), decoded.routers_after()), (0, 1));

    let next = decoded.advanced().unwrap();
    assert_eq!((next.rest, next.offset), (1, 11 + 13));
    let decoded2 = RouteRequest::decode(&next.encode()).unwrap();
    assert_eq!(decoded2, next);
    assert_eq!(decoded2.next_hop().host, "target");
    assert_eq!(decoded2.own_hop().host, "r2.example");
    assert_eq!(
        (decoded2.routers_before(), decoded2.routers_after()),
        (1, 0)
    );
    assert_eq!(decoded2.advanced(), None);
}

#[test]
fn advanced_is_total_on_inconsistent_values() {
    let mut r = RouteRequest::new(vec![hop("a", "", ""), hop("b", "", "")], 0, 40);
    r.rest = 9;
    assert_eq!(r.advanced(), None);
    r.rest = 2;
    r.offset = u32::MAX;
    assert_eq!(r.advanced(), None);
    let lone = RouteRequest::new(vec![], 0, 40);
    assert_eq!((lone.rest, lone.offset), (0, 0));
    assert_eq!(
        RouteRequest::decode(&lone.encode()),
        Err(RouteError::Empty {
            entries: 0,
            length: 0
        })
    );
}

/// `v7_1` with header byte `at` replaced.
fn patched(at: usize, value: u8) -> Vec<u8> {
    let mut b = v7_1();
    b[at] = value;
    b
}

fn with_u32(at: usize, value: u32) -> Vec<u8> {
    let mut b = v7_1();
    b[at..at + 4].copy_from_slice(&value.to_be_bytes());
    b
}

#[test]
fn rejects_bad_eyecatchers_and_truncation() {
    use RouteError::*;
    let dec = RouteRequest::decode;
    assert_eq!(dec(b""), Err(NotARoute));
    assert_eq!(dec(b"NI_ROUTE"), Err(NotARoute));
    assert_eq!(dec(b"ni_route\0\x02\x28\x02\0\0\0\x01"), Err(NotARoute));
    assert_eq!(dec(b"NI_ROUTEX\0\x02"), Err(NotARoute));
    assert_eq!(dec(b"EYECATCHER0000000000000000000"), Err(NotARoute));
    assert_eq!(dec(b"NI_ROUTE\0"), Err(Truncated(9)));
    assert_eq!(dec(b"NI_ROUTE\0\x02\x00\x05"), Err(Truncated(12)));
    assert_eq!(dec(&v7_1()[..23]), Err(Truncated(23)));
}

#[test]
fn rejects_bad_header_fields() {
    use RouteError::*;
    let dec = |b: Vec<u8>| RouteRequest::decode(&b);
    assert_eq!(dec(patched(0x09, 3)), Err(InfoVersion(3)));
    assert_eq!(dec(patched(0x0A, 0)), Err(NiVersion(0)));
    assert_eq!(NiVersion(0).return_code(), -96);
    assert_eq!(dec(patched(0x0A, 255)).map(|r| r.ni_version), Ok(255));
    assert_eq!(dec(patched(0x0C, 2)).map(|r| r.talk_mode), Ok(2));
    assert_eq!(dec(patched(0x0C, 3)), Err(TalkMode(3)));
    assert_eq!(TalkMode(3).return_code(), -101);
    assert_eq!(dec(patched(0x0C, 255)), Err(TalkMode(255)));
    // Non-zero unused bytes are ignored (H23).
    assert!(dec(patched(0x0D, 0xff)).is_ok());
    assert_eq!(
        dec(patched(0x0B, 1)),
        Err(Empty {
            entries: 1,
            length: 47
        })
    );
    assert_eq!(
        dec(patched(0x0B, 0)),
        Err(Empty {
            entries: 0,
            length: 47
        })
    );
    assert_eq!(
        Empty {
            entries: 0,
            length: 0
        }
        .return_code(),
        -93
    );
    // NI version 0 wins over the structural checks (real router: -96).
    let mut b = patched(0x0A, 0);
    b.truncate(30);
    assert_eq!(dec(b), Err(NiVersion(0)));
}

#[test]
fn header_only_probes_from_fingerprints() {
    use RouteError::*;
    // pysap "No route": entries 0, rest 0, len 0, off 0.
    let mut b = v7_1()[..24].to_vec();
    b[0x0B] = 0;
    b[0x0F] = 0;
    b[0x10..0x18].fill(0);
    assert_eq!(
        RouteRequest::decode(&b),
        Err(Empty {
            entries: 0,
            length: 0
        })
    );
    // "Length > data": entries 2, rest 1, len 1, off 3, no string.
    let mut b = v7_1()[..24].to_vec();
    b[0x10..0x14].copy_from_slice(&1u32.to_be_bytes());
    b[0x14..0x18].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(
        RouteRequest::decode(&b),
        Err(Length {
            declared: 1,
            present: 0
        })
    );
    // "Length != data": len 1, off 0, 3 bytes of string.
    let mut b = v7_1()[..24].to_vec();
    b[0x10..0x14].copy_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(b"\0\0\0");
    assert_eq!(
        RouteRequest::decode(&b),
        Err(Length {
            declared: 1,
            present: 3
        })
    );
    // Two empty entries: structurally fine (the host check belongs to the router).
    let mut b = v7_1()[..24].to_vec();
    b[0x10..0x14].copy_from_slice(&6u32.to_be_bytes());
    b[0x14..0x18].copy_from_slice(&3u32.to_be_bytes());
    b.extend_from_slice(&[0; 6]);
    let r = RouteRequest::decode(&b).unwrap();
    assert_eq!(r.hops, vec![RouteHop::default(), RouteHop::default()]);
    b[0x17] = 0;
    assert_eq!(RouteRequest::decode(&b), Err(Offset(0)));
    b[0x17] = 6;
    assert_eq!(RouteRequest::decode(&b), Err(Offset(6)));
}

#[test]
fn rejects_bad_lengths_and_offsets() {
    use RouteError::*;
    let dec = |b: Vec<u8>| RouteRequest::decode(&b);
    assert_eq!(
        dec(with_u32(0x10, 0)),
        Err(Empty {
            entries: 2,
            length: 0
        })
    );
    assert_eq!(
        dec(with_u32(0x10, 46)),
        Err(Length {
            declared: 46,
            present: 47
        })
    );
    assert_eq!(
        dec(with_u32(0x10, 48)),
        Err(Length {
            declared: 48,
            present: 47
        })
    );
    assert_eq!(
        dec(with_u32(0x10, u32::MAX)),
        Err(Length {
            declared: u32::MAX,
            present: 47
        })
    );
    let mut trailing = v7_1();
    trailing.push(b'x');
    assert_eq!(
        dec(trailing),
        Err(Length {
            declared: 47,
            present: 48
        })
    );
    for off in [0u32, 1, 27, 29, 47, 48, u32::MAX] {
        assert_eq!(dec(with_u32(0x14, off)), Err(Offset(off)), "offset {off}");
    }
    assert_eq!(Offset(0).return_code(), -93);
}

#[test]
fn rejects_bad_entries_and_rest() {
    use RouteError::*;
    let dec = |b: Vec<u8>| RouteRequest::decode(&b);
    assert_eq!(
        dec(patched(0x0B, 3)),
        Err(Entries {
            declared: 3,
            present: 2
        })
    );
    assert_eq!(
        dec(patched(0x0B, 255)),
        Err(Entries {
            declared: 255,
            present: 2
        })
    );
    assert_eq!(
        dec(patched(0x0F, 0)),
        Err(Rest {
            rest: 0,
            entries: 2
        })
    );
    assert_eq!(
        dec(patched(0x0F, 2)),
        Err(Rest {
            rest: 2,
            entries: 2
        })
    );
    assert_eq!(
        dec(patched(0x0F, 255)),
        Err(Rest {
            rest: 255,
            entries: 2
        })
    );
    // 2 declared, 3 present.
    let mut r = RouteRequest::new(
        vec![hop("a", "1", ""), hop("b", "2", ""), hop("c", "3", "")],
        0,
        40,
    );
    r.rest = 1;
    let mut b = r.encode();
    b[0x0B] = 2;
    assert_eq!(
        dec(b),
        Err(Entries {
            declared: 2,
            present: 3
        })
    );
}

#[test]
fn rejects_unterminated_fields() {
    use RouteError::*;
    let mut b = v7_1();
    b.pop();
    let len = (b.len() - 24) as u32;
    b[0x10..0x14].copy_from_slice(&len.to_be_bytes());
    assert_eq!(RouteRequest::decode(&b), Err(Unterminated(1)));
    // One hop with only two NULs.
    let mut b = v7_1()[..24].to_vec();
    b[0x10..0x14].copy_from_slice(&4u32.to_be_bytes());
    b.extend_from_slice(b"ab\0\0");
    assert_eq!(RouteRequest::decode(&b), Err(Unterminated(0)));
}

#[test]
fn non_utf8_is_decoded_lossily_with_consistent_offset() {
    let hops = vec![hop("a", "", ""), hop("b", "", "")];
    let mut b = RouteRequest::new(hops, 0, 40).encode();
    b[24] = 0xff;
    let r = RouteRequest::decode(&b).unwrap();
    assert_eq!(r.hops[0].host, "\u{fffd}");
    assert_eq!(r.offset as usize, r.hops[0].encoded_len());
    assert_eq!(RouteRequest::decode(&r.encode()), Ok(r));
}

#[test]
fn debug_redacts_passwords() {
    let text = format!("{:?}", hop("h", "s", "S3cr3t"));
    assert!(!text.contains("S3cr3t"), "{text}");
    assert!(text.contains("<redacted>"));
}

fn field() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.:\\[\\]-]{0,12}"
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = RouteRequest::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_after_valid_header(
        header in prop::collection::vec(any::<u8>(), 15),
        body in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut b = ROUTE_EYECATCHER.to_vec();
        b.extend_from_slice(&header);
        b.extend_from_slice(&body);
        b[9] = 2;
        if let Ok(r) = RouteRequest::decode(&b) {
            prop_assert!(r.hops.len() >= 2 && r.rest >= 1 && (r.rest as usize) < r.hops.len());
            let _ = (r.next_hop(), r.own_hop(), r.advanced());
        }
    }

    #[test]
    fn encode_decode_round_trip(
        fields in prop::collection::vec((field(), field(), field()), 2..8),
        talk in 0u8..=2,
        version in 1u8..,
    ) {
        let hops: Vec<RouteHop> = fields.into_iter().map(|(h, s, p)| hop(&h, &s, &p)).collect();
        let mut r = RouteRequest::new(hops, talk, version);
        loop {
            let bytes = r.encode();
            let back = RouteRequest::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &r);
            prop_assert_eq!(back.encode(), bytes);
            match r.advanced() {
                Some(next) => r = next,
                None => break,
            }
        }
        prop_assert_eq!(r.rest, 1);
    }
}
