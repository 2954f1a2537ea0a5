//! Unit tests of `ROUTER_ADM` requests and info records, incl. docs/protocol.md §7.9-7.10 and
//! hostile inputs H37-H42 (docs/hardening.md).

use super::*;
use crate::ni::hex;
use proptest::prelude::*;

fn payload(frame: &[u8]) -> &[u8] {
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    &frame[4..]
}

fn req(version: u8, command: AdminCommand) -> AdminRequest {
    AdminRequest { version, command }
}

/// Decodes `frame`, checks the result and that it re-encodes byte-identical.
fn round_trip(frame: &[u8], want: AdminRequest) {
    let got = AdminRequest::decode(payload(frame)).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.encode(), payload(frame));
}

#[test]
fn pysap_info_request_with_password() {
    let frame = hex("00 00 00 22 52 4f 55 54 45 52 5f 41 44 4d 00 28
                     02 00 00 73 65 63 72 65 74 00 00 00 00 00 00 00
                     00 00 00 00 00 00");
    round_trip(
        &frame,
        req(
            40,
            AdminCommand::Info {
                password: Some("secret".into()),
            },
        ),
    );
}

#[test]
fn info_request_forms() {
    let msf = hex("00 00 00 0f 52 4f 55 54 45 52 5f 41 44 4d 00 26 02 00 00");
    let got = AdminRequest::decode(payload(&msf)).unwrap();
    assert_eq!(got, req(38, AdminCommand::Info { password: None }));
    // None encodes the pysap form with an all-NUL password field.
    let enc = got.encode();
    assert_eq!(enc.len(), 34);
    assert_eq!(&enc[..15], payload(&msf));
    assert!(enc[15..].iter().all(|&b| b == 0));
    assert_eq!(
        AdminRequest::decode(&enc).unwrap().command,
        AdminCommand::Info {
            password: Some(String::new())
        }
    );
    // Without even the unused bytes.
    let bare = &payload(&msf)[..13];
    assert_eq!(
        AdminRequest::decode(bare).unwrap().command,
        AdminCommand::Info { password: None }
    );
    // H41: 19 bytes without NUL, and longer: read whole, never cut to a prefix.
    let mut long = payload(&msf)[..15].to_vec();
    long.extend_from_slice(b"abcdefghijklmnopqrstuvw");
    assert_eq!(
        AdminRequest::decode(&long).unwrap().command,
        AdminCommand::Info {
            password: Some("abcdefghijklmnopqrstuvw".into())
        }
    );
    // Encoding cuts to 18 characters + NUL.
    let enc = req(
        40,
        AdminCommand::Info {
            password: Some("abcdefghijklmnopqrstuvw".into()),
        },
    )
    .encode();
    assert_eq!(enc.len(), 34);
    assert_eq!(&enc[15..], b"abcdefghijklmnopqr\0");
}

#[test]
fn cancel_routes() {
    let frame = hex("00 00 00 19 52 4f 55 54 45 52 5f 41 44 4d 00 28
                     06 00 00 00 02 00 00 00 01 00 00 00 02");
    round_trip(&frame, req(40, AdminCommand::Cancel(vec![1, 2])));
    round_trip(
        &crate::ni::frame::frame(&req(2, AdminCommand::Cancel(vec![])).encode()),
        req(2, AdminCommand::Cancel(vec![])),
    );
}

#[test]
fn cancel_count_bombs_are_bounded() {
    // H38: count 0xFFFF without ids; count greater than ids present.
    let mut b = b"ROUTER_ADM\0\x28\x06\0\0\xff\xff".to_vec();
    assert_eq!(
        AdminRequest::decode(&b),
        Err(AdminError::Truncated("cancel ids"))
    );
    b[14..16].copy_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1]);
    assert_eq!(
        AdminRequest::decode(&b),
        Err(AdminError::Truncated("cancel ids"))
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0\x28\x06\0\0\0"),
        Err(AdminError::Truncated("cancel count"))
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0\x28\x06"),
        Err(AdminError::Truncated("cancel count"))
    );
}

#[test]
fn trace_connection() {
    let frame = hex("00 00 00 15 52 4f 55 54 45 52 5f 41 44 4d 00 28
                     0c 00 00 00 01 00 00 00 03");
    round_trip(&frame, req(40, AdminCommand::TraceConnection(vec![3])));
    let mut b = payload(&frame).to_vec();
    b[12] = command::TRACE_CONNECTION_2;
    assert_eq!(
        AdminRequest::decode(&b).unwrap().command,
        AdminCommand::TraceConnection2(vec![3])
    );
    assert_eq!(AdminRequest::decode(&b).unwrap().encode(), b);
    // H39: count 0xFFFFFFFF.
    b[13..17].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        AdminRequest::decode(&b),
        Err(AdminError::Truncated("trace ids"))
    );
    assert_eq!(
        AdminRequest::decode(&b[..15]),
        Err(AdminError::Truncated("trace count"))
    );
}

#[test]
fn trace_peer_masks() {
    let mut frame = hex("00 00 00 2d 52 4f 55 54 45 52 5f 41 44 4d 00 28
                         0a 31 30 2e 30 2e 30 2e 2a 00");
    frame.resize(4 + 0x2d, 0);
    round_trip(
        &frame,
        req(40, AdminCommand::SetTracePeer("10.0.0.*".into())),
    );
    let mut b = payload(&frame).to_vec();
    b[12] = command::CLEAR_TRACE_PEER;
    assert_eq!(
        AdminRequest::decode(&b).unwrap().command,
        AdminCommand::ClearTracePeer("10.0.0.*".into())
    );
    // H40: 32 bytes without NUL, a short field, an empty one.
    let mut full = b"ROUTER_ADM\0\x28\x0a".to_vec();
    full.extend_from_slice(&[b'x'; 40]);
    assert_eq!(
        AdminRequest::decode(&full).unwrap().command,
        AdminCommand::SetTracePeer("x".repeat(32))
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0\x28\x0a10.*")
            .unwrap()
            .command,
        AdminCommand::SetTracePeer("10.*".into())
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0\x28\x0b"),
        Err(AdminError::Truncated("trace peer mask"))
    );
    let enc = req(40, AdminCommand::SetTracePeer("y".repeat(40))).encode();
    assert_eq!(enc.len(), 13 + TRACE_MASK_LEN);
    assert_eq!(enc[13 + 31], 0);
}

#[test]
fn plain_commands() {
    let stop = hex("00 00 00 0f 52 4f 55 54 45 52 5f 41 44 4d 00 28 05 00 00");
    round_trip(&stop, req(40, AdminCommand::Stop));
    let plain = [
        AdminCommand::NewRoutTab,
        AdminCommand::ToggleTrace,
        AdminCommand::Stop,
        AdminCommand::DumpBuffers,
        AdminCommand::FlushBuffers,
        AdminCommand::SoftShutdown,
        AdminCommand::HideErrors,
    ];
    for (cmd, code) in plain.into_iter().zip([3, 4, 5, 7, 8, 9, 14]) {
        assert_eq!(cmd.code(), code);
        let enc = req(2, cmd.clone()).encode();
        assert_eq!(enc.len(), 15);
        assert_eq!(enc[12], code);
        assert_eq!(AdminRequest::decode(&enc), Ok(req(2, cmd.clone())));
        // The unused bytes may be missing.
        assert_eq!(AdminRequest::decode(&enc[..13]), Ok(req(2, cmd)));
    }
}

#[test]
fn rejects_non_admin_and_unknown_commands() {
    assert_eq!(AdminRequest::decode(b""), Err(AdminError::NotAdmin));
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM"),
        Err(AdminError::NotAdmin)
    );
    assert_eq!(
        AdminRequest::decode(b"NI_ROUTE\0\x02\x28"),
        Err(AdminError::NotAdmin)
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0"),
        Err(AdminError::Truncated("version"))
    );
    assert_eq!(
        AdminRequest::decode(b"ROUTER_ADM\0\x28"),
        Err(AdminError::Truncated("command"))
    );
    for op in [0u8, 1, 15, 0x7f, 0xff] {
        let b = [&ADMIN_EYECATCHER[..], &[40, op, 0, 0]].concat();
        assert_eq!(
            AdminRequest::decode(&b),
            Err(AdminError::UnknownCommand(op))
        );
    }
}

#[test]
fn debug_redacts_info_password() {
    let text = format!(
        "{:?}",
        req(
            40,
            AdminCommand::Info {
                password: Some("secret".into())
            }
        )
    );
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn server_record_7_10() {
    let frame = hex("00 00 00 14 00 00 04 d2 00 00 00 00 00 00 00 00
                     5f 00 00 00 0c e3 00 00");
    let rec = InfoServer::decode(payload(&frame)).unwrap();
    assert_eq!(
        rec,
        InfoServer {
            pid: 1234,
            parent_pid: 0,
            started_on: 0x5f00_0000 + 1_000_000_000,
            port: 3299,
            parent_port: 0,
        }
    );
    assert_eq!(rec.encode(), payload(&frame));
    assert_eq!(
        InfoServer::decode(&payload(&frame)[..19]),
        Err(AdminError::Truncated("server record"))
    );
}

#[test]
fn client_record_7_10() {
    let rec = InfoClient {
        id: 7,
        flags: client_flags::ROUTED | client_flags::CONNECTED,
        connected_on: 0x1234_5678 + 1_000_000_000,
        address: "10.1.2.3".into(),
        partner: "10.0.0.1".into(),
        service: "3200".into(),
    };
    let bytes = rec.encode();
    assert_eq!(bytes.len(), 137);
    assert_eq!(&bytes[..13], hex("00 00 00 07 03 00 00 00 00 12 34 56 78"));
    assert_eq!(&bytes[13..22], b"10.1.2.3\0");
    assert!(bytes[22..58].iter().all(|&b| b == 0));
    assert_eq!(&bytes[58..67], b"10.0.0.1\0");
    assert_eq!(&bytes[103..108], b"3200\0");
    assert!(bytes[108..].iter().all(|&b| b == 0));
    assert_eq!(InfoClient::decode(&bytes), Ok(rec));
    assert_eq!(
        InfoClient::decode(&bytes[..136]),
        Err(AdminError::Truncated("client record"))
    );
}

#[test]
fn client_record_truncates_long_text_and_clamps_time() {
    let rec = InfoClient {
        address: "a".repeat(60),
        service: "s".repeat(30),
        connected_on: 5,
        ..Default::default()
    };
    let bytes = rec.encode();
    assert_eq!(bytes[13 + 44], 0);
    let back = InfoClient::decode(&bytes).unwrap();
    assert_eq!(back.address, "a".repeat(44));
    assert_eq!(back.service, "s".repeat(26));
    assert_eq!(
        back.connected_on, 1_000_000_000,
        "times before 2001 saturate"
    );
    let far = InfoClient {
        connected_on: u64::MAX,
        ..Default::default()
    }
    .encode();
    assert_eq!(&far[5..13], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    // The high 4 bytes are ignored on decode.
    let mut odd = bytes;
    odd[5] = 0xff;
    assert_eq!(
        InfoClient::decode(&odd).unwrap().connected_on,
        1_000_000_000
    );
}

proptest! {
    #[test]
    fn admin_decode_never_panics(body in prop::collection::vec(any::<u8>(), 0..80)) {
        let mut b = ADMIN_EYECATCHER.to_vec();
        b.extend_from_slice(&body);
        if let Ok(r) = AdminRequest::decode(&b) {
            let _ = r.encode();
        }
        let _ = AdminRequest::decode(&body);
        let _ = InfoClient::decode(&body);
        let _ = InfoServer::decode(&body);
    }

    #[test]
    fn id_lists_round_trip(ids in prop::collection::vec(any::<u32>(), 0..20), v in any::<u8>()) {
        for cmd in [
            AdminCommand::Cancel(ids.clone()),
            AdminCommand::TraceConnection(ids.clone()),
            AdminCommand::TraceConnection2(ids.clone()),
        ] {
            let r = req(v, cmd);
            prop_assert_eq!(AdminRequest::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn records_round_trip(
        id in any::<u32>(), flags in any::<u8>(), t in 1_000_000_000u64..5_294_967_295,
        address in "[0-9a-f.:]{0,44}", partner in "[0-9a-z.]{0,44}", service in "[0-9a-z]{0,26}",
        pid in any::<u32>(), port in any::<u16>(),
    ) {
        let c = InfoClient { id, flags, connected_on: t, address, partner, service };
        prop_assert_eq!(InfoClient::decode(&c.encode()), Ok(c));
        let s = InfoServer { pid, parent_pid: pid ^ 1, started_on: t, port, parent_port: !port };
        prop_assert_eq!(InfoServer::decode(&s.encode()), Ok(s));
    }
}
