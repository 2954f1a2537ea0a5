use super::*;
use proptest::prelude::*;

fn sample() -> Register {
    Register {
        version: LINK_VERSION,
        instance: 0x0102_0304_0506_0708,
        link_index: 2,
        reg_service: 5002,
        implicit: true,
        addrs: vec![
            RegAddr::Ip("10.18.0.2".parse().unwrap()),
            RegAddr::Ip("2001:db8::2".parse().unwrap()),
            RegAddr::Name("lan.example".into()),
        ],
    }
}

#[test]
fn register_layout_is_exact() {
    let bytes = sample().encode();
    let mut want = b"RI_REGISTER\0".to_vec();
    want.push(2);
    want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    want.extend_from_slice(&[0, 2]);
    want.extend_from_slice(&5002u16.to_be_bytes());
    want.push(1);
    want.push(3);
    want.extend_from_slice(&[4, 10, 18, 0, 2]);
    want.push(6);
    want.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    want.push(b'N');
    want.push(11);
    want.extend_from_slice(b"lan.example");
    assert_eq!(bytes, want);
    assert_eq!(Register::decode(&bytes), Ok(sample()));
}

#[test]
fn accept_layout_is_exact() {
    let a = Accept {
        version: 1,
        pool_size: 3,
        server_number: 7,
        link_id: 0x0a0b0c0d,
    };
    let bytes = a.encode();
    assert_eq!(bytes, b"RI_ACCEPT\0\x01\x00\x03\x00\x07\x0a\x0b\x0c\x0d");
    assert_eq!(Accept::decode(&bytes), Ok(a));
    assert_eq!(Reply::decode(&bytes), Ok(Reply::Accept(a)));
}

#[test]
fn both_versions_have_their_byte_and_no_other() {
    // Version 1 (yamux) and 2 (linkmux) differ in the version byte alone.
    for version in [YAMUX_VERSION, LINKMUX_VERSION] {
        let r = Register {
            version,
            ..sample()
        };
        let bytes = r.encode();
        assert_eq!(bytes[12], version);
        assert_eq!(bytes[13..], sample().encode()[13..]);
        assert_eq!(Register::decode(&bytes), Ok(r));
        let a = Accept {
            version,
            pool_size: 1,
            server_number: 1,
            link_id: 1,
        };
        let bytes = a.encode();
        assert_eq!(bytes[10], version);
        assert_eq!(Accept::decode(&bytes), Ok(a));
    }
    assert_eq!(
        LINK_VERSION, LINKMUX_VERSION,
        "LAN routers offer linkmux first"
    );
    assert!(!speaks(0) && speaks(1) && speaks(2) && !speaks(3));
}

#[test]
fn every_truncation_of_a_register_fails_cleanly() {
    let bytes = sample().encode();
    for n in 0..bytes.len() {
        let r = Register::decode(&bytes[..n]);
        assert!(r.is_err(), "prefix of {n} bytes decoded: {r:?}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Register::decode(&longer), Err(LinkError::Trailing(1)));
}

#[test]
fn every_truncation_of_an_accept_fails_cleanly() {
    let bytes = Accept {
        version: 1,
        pool_size: 1,
        server_number: 0,
        link_id: 1,
    }
    .encode();
    for n in 0..bytes.len() {
        assert!(Accept::decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
    }
}

#[test]
fn hostile_registers() {
    let base = sample().encode();
    let count_at = 12 + 1 + 8 + 2 + 2 + 1;
    // A count that lies upwards: no allocation beyond the cap, and a clean error.
    let mut lying = base.clone();
    lying[count_at] = 4;
    assert_eq!(
        Register::decode(&lying),
        Err(LinkError::Truncated("RI_REGISTER"))
    );
    let mut huge = base.clone();
    huge[count_at] = 255;
    assert_eq!(Register::decode(&huge), Err(LinkError::AddrCount(255)));
    let mut zero = base.clone();
    zero[count_at] = 0;
    assert_eq!(Register::decode(&zero), Err(LinkError::AddrCount(0)));
    // A name length that lies.
    let mut name = b"RI_REGISTER\0\x01".to_vec();
    name.extend_from_slice(&[0; 8]);
    name.extend_from_slice(&[0, 0, 0x13, 0x8a, 0, 1, b'N', 200, b'a']);
    assert_eq!(
        Register::decode(&name),
        Err(LinkError::Truncated("RI_REGISTER"))
    );
    // Bad tag, bad name bytes, empty name, zero port, wrong version, wrong eyecatcher.
    let mut tagged = base.clone();
    tagged[count_at + 1] = 9;
    assert_eq!(Register::decode(&tagged), Err(LinkError::AddrTag(9)));
    let with = |addr: &[u8]| {
        let mut m = b"RI_REGISTER\0\x01".to_vec();
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[0, 0, 0x13, 0x8a, 0, 1]);
        m.extend_from_slice(addr);
        m
    };
    assert_eq!(Register::decode(&with(b"N\x03a b")), Err(LinkError::Name));
    assert_eq!(
        Register::decode(&with(b"N\x02\xff\xfe")),
        Err(LinkError::Name)
    );
    assert_eq!(Register::decode(&with(b"N\x00")), Err(LinkError::Name));
    assert!(Register::decode(&with(b"N\x01x")).is_ok());
    let mut port0 = base.clone();
    port0[count_at - 3..count_at - 1].copy_from_slice(&[0, 0]);
    assert_eq!(
        Register::decode(&port0),
        Err(LinkError::Zero("registered service"))
    );
    let mut flags = base.clone();
    flags[count_at - 1] = 0x03;
    assert_eq!(Register::decode(&flags), Err(LinkError::Flags(0x03)));
    for (version, spoken) in [(0u8, false), (1, true), (2, true), (3, false), (255, false)] {
        let mut v = base.clone();
        v[12] = version;
        let decoded = Register::decode(&v);
        if spoken {
            assert_eq!(decoded.map(|r| r.version), Ok(version));
        } else {
            assert_eq!(decoded, Err(LinkError::Version(version)));
        }
    }
    assert_eq!(
        Register::decode(b"NI_ROUTE\0"),
        Err(LinkError::Eyecatcher("RI_REGISTER"))
    );
}

#[test]
fn encode_drops_what_decode_would_refuse() {
    let mut r = sample();
    r.addrs = (0..20)
        .map(|i| RegAddr::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))))
        .collect();
    r.addrs.insert(0, RegAddr::Name("bad name".into()));
    let decoded = Register::decode(&r.encode()).unwrap();
    assert_eq!(decoded.addrs.len(), MAX_REG_ADDRS);
    assert_eq!(decoded.addrs[0], RegAddr::Ip("10.0.0.0".parse().unwrap()));
}

#[test]
fn hostile_accepts() {
    assert_eq!(
        Accept::decode(b"RI_ACCEPT\0\x01\x00\x00\x00\x00\x00\x00\x00\x01"),
        Err(LinkError::Zero("pool size"))
    );
    assert_eq!(
        Accept::decode(b"RI_ACCEPT\0\x07\x00\x01\x00\x00\x00\x00\x00\x01"),
        Err(LinkError::Version(7))
    );
    assert_eq!(
        Accept::decode(b"RI_ACCEPT\0\x01\x00\x01\x00\x00\x00\x00\x00\x01!"),
        Err(LinkError::Trailing(1))
    );
    assert_eq!(
        Reply::decode(b"hello"),
        Err(LinkError::Eyecatcher("RI_ACCEPT"))
    );
    assert!(Reply::decode(b"NI_RTERR\0\x28\x00\x00\xff\xff\xff\xa2\xff\xff\xff\xff").is_err());
}

#[test]
fn refusals_decode_with_their_texts() {
    use crate::ni::rterr::{ErrorRecord, RtErr};
    let record = ErrorRecord {
        error: "registration refused".into(),
        detail: "NiRIRegister: 192.0.2.1 not permitted by the ACE list".into(),
        return_code: "-94".into(),
        ..ErrorRecord::default()
    };
    let payload = RtErr::error(40, -94, &record).encode();
    assert_eq!(
        Reply::decode(&payload),
        Ok(Reply::Refused {
            rc: -94,
            error: "registration refused".into(),
            detail: "NiRIRegister: 192.0.2.1 not permitted by the ACE list".into(),
        })
    );
}

#[test]
fn names() {
    assert!(valid_name("lan-1.example_x"));
    assert!(!valid_name(""));
    assert!(!valid_name(&"a".repeat(254)));
    assert!(valid_name(&"a".repeat(253)));
    assert!(!valid_name("a:b"));
    assert_eq!(RegAddr::Name("x".into()).to_string(), "x");
    assert_eq!(
        RegAddr::Ip("10.0.0.1".parse().unwrap()).to_string(),
        "10.0.0.1"
    );
}

#[test]
fn a_full_register_fits_the_handshake_limit() {
    let r = Register {
        addrs: (0..MAX_REG_ADDRS)
            .map(|i| RegAddr::Name(format!("{i}{}", "a".repeat(250))))
            .collect(),
        ..sample()
    };
    let bytes = r.encode();
    assert!(bytes.len() <= MAX_HANDSHAKE_FRAME, "{}", bytes.len());
    assert_eq!(Register::decode(&bytes).unwrap().addrs.len(), MAX_REG_ADDRS);
}

fn reg_addr() -> impl Strategy<Value = RegAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| RegAddr::Ip(IpAddr::from(o))),
        any::<[u8; 16]>().prop_map(|o| RegAddr::Ip(IpAddr::from(o))),
        "[a-z0-9][a-z0-9.-]{0,30}".prop_map(RegAddr::Name),
    ]
}

proptest! {
    #[test]
    fn register_round_trips(
        instance in any::<u64>(),
        link_index in any::<u16>(),
        reg_service in 1u16..,
        implicit in any::<bool>(),
        addrs in prop::collection::vec(reg_addr(), 1..=MAX_REG_ADDRS),
    ) {
        let r = Register { version: LINK_VERSION, instance, link_index, reg_service, implicit, addrs };
        prop_assert_eq!(Register::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Register::decode(&bytes);
        let _ = Accept::decode(&bytes);
        let _ = Reply::decode(&bytes);
        let mut with_eye = REGISTER_EYECATCHER.to_vec();
        with_eye.extend_from_slice(&bytes);
        let _ = Register::decode(&with_eye);
        let mut with_eye = ACCEPT_EYECATCHER.to_vec();
        with_eye.extend_from_slice(&bytes);
        let _ = Accept::decode(&with_eye);
    }
}
