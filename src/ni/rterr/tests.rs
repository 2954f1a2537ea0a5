//! Unit tests of `NI_RTERR` and the `*ERR*` record, incl. docs/protocol.md §7.5-7.8 and
//! hostile inputs H44-H45 (docs/hardening.md).

use super::*;
use crate::ni::control::{self, opcode};
use crate::ni::hex;
use proptest::prelude::*;

fn payload(frame: &[u8]) -> &[u8] {
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    &frame[4..]
}

fn v7_5() -> Vec<u8> {
    hex("00 00 01 02 4e 49 5f 52 54 45 52 52 00 28 00 00
         ff ff ff a3 00 00 00 ea 2a 45 52 52 2a 00 31 00
         4e 65 74 77 6f 72 6b 20 70 61 63 6b 65 74 20 74
         6f 6f 20 62 69 67 00 2d 39 33 00 4e 49 20 28 6e
         65 74 77 6f 72 6b 20 69 6e 74 65 72 66 61 63 65
         29 00 37 35 33 00 34 30 00 2f 62 61 73 2f 37 35
         33 5f 52 45 4c 2f 73 72 63 2f 62 61 73 65 2f 6e
         69 2f 6e 69 62 75 66 2e 63 70 70 00 32 39 36 31
         00 4e 69 42 75 66 49 49 6e 3a 20 6d 65 73 73 61
         67 65 20 6c 65 6e 67 74 68 20 31 36 35 31 32 36
         39 38 39 38 20 65 78 63 65 65 64 73 20 6d 61 78
         20 28 31 30 30 32 34 29 00 4d 6f 6e 20 41 70 72
         20 32 36 20 30 37 3a 32 39 3a 32 32 20 32 30 32
         31 00 00 00 00 33 00 53 41 50 72 6f 75 74 65 72
         20 34 30 2e 34 20 6f 6e 20 27 76 6d 2d 73 61 70
         72 6f 75 74 65 72 27 00 00 00 00 00 2a 45 52 52
         2a 00 00 00 00 00")
}

fn v7_6() -> Vec<u8> {
    hex("00 00 00 e8 4e 49 5f 52 54 45 52 52 00 28 00 00
         ff ff ff fb 00 00 00 d0 2a 45 52 52 2a 00 31 00
         63 6f 6e 6e 65 63 74 69 6f 6e 20 74 69 6d 65 64
         20 6f 75 74 00 2d 35 00 4e 49 20 28 6e 65 74 77
         6f 72 6b 20 69 6e 74 65 72 66 61 63 65 29 00 37
         32 31 00 34 30 00 6e 69 72 6f 75 74 2e 63 70 70
         00 36 37 30 34 00 52 54 50 45 4e 44 4c 49 53 54
         3a 3a 74 69 6d 65 6f 75 74 50 65 6e 64 3a 20 6e
         6f 20 72 6f 75 74 65 20 72 65 63 65 69 76 65 64
         20 77 69 74 68 69 6e 20 35 73 20 28 43 4f 4e 4e
         45 43 54 45 44 29 00 54 68 75 20 4a 61 6e 20 20
         31 20 30 30 3a 30 30 3a 30 30 20 32 30 31 35 00
         00 00 00 31 00 53 41 50 72 6f 75 74 65 72 20 34
         30 2e 34 20 6f 6e 20 27 68 6f 73 74 27 00 00 00
         00 00 2a 45 52 52 2a 00 00 00 00 00")
}

fn ni(s: &str) -> String {
    s.to_string()
}

#[test]
fn packet_too_big_7_5() {
    let frame = v7_5();
    let msg = RtErr::decode(payload(&frame)).unwrap();
    assert_eq!((msg.ni_version, msg.opcode, msg.return_code), (40, 0, -93));
    assert_eq!(msg.text.len(), 234);
    assert_eq!(msg.trailer, [0; 4]);
    let rec = msg.record().unwrap();
    let want = ErrorRecord {
        counter: ni("1"),
        error: ni("Network packet too big"),
        return_code: ni("-93"),
        component: ni("NI (network interface)"),
        release: ni("753"),
        version: ni("40"),
        module: ni("/bas/753_REL/src/base/ni/nibuf.cpp"),
        line: ni("2961"),
        detail: ni("NiBufIIn: message length 1651269898 exceeds max (10024)"),
        time: ni("Mon Apr 26 07:29:22 2021"),
        system_call: String::new(),
        errno: String::new(),
        errno_text: String::new(),
        error_count: ni("3"),
        location: ni("SAProuter 40.4 on 'vm-saprouter'"),
    };
    assert_eq!(rec, want);
    assert_eq!(msg.encode(), payload(&frame));
    assert_eq!(
        RtErr::error(40, rc::NIEROUT_INTERN, &rec).encode(),
        payload(&frame)
    );
}

#[test]
fn route_timeout_7_6() {
    let frame = v7_6();
    let msg = RtErr::decode(payload(&frame)).unwrap();
    assert_eq!(
        (msg.ni_version, msg.opcode, msg.return_code),
        (40, 0, rc::NIETIMEOUT)
    );
    assert_eq!(msg.text.len(), 0xd0);
    let rec = msg.record().unwrap();
    assert_eq!(rec.counter, "1");
    assert_eq!(rec.error, "connection timed out");
    assert_eq!(rec.return_code, "-5");
    assert_eq!(rec.release, "721");
    assert_eq!(rec.version, "40");
    assert_eq!(rec.module, "nirout.cpp");
    assert_eq!(rec.line, "6704");
    assert_eq!(
        rec.detail,
        "RTPENDLIST::timeoutPend: no route received within 5s (CONNECTED)"
    );
    assert_eq!(rec.time, "Thu Jan  1 00:00:00 2015");
    assert_eq!(rec.error_count, "1");
    assert_eq!(rec.location, "SAProuter 40.4 on 'host'");
    assert_eq!(RtErr::error(40, -5, &rec).encode(), payload(&frame));
}

#[test]
fn version_request_7_7() {
    let frame = hex("00 00 00 18 4e 49 5f 52 54 45 52 52 00 28 01 00
                     00 00 00 00 00 00 00 00 2a 45 52 52");
    assert_eq!(control::version_request(40).encode(), payload(&frame));
    let msg = RtErr::decode(payload(&frame)).unwrap();
    assert_eq!(msg, control::version_request(40));
    assert_eq!(msg.opcode, opcode::VERSION_REQUEST);
    assert_eq!(msg.trailer, *b"*ERR");
}

#[test]
fn version_response_shape() {
    let resp = control::version_response(40);
    let bytes = resp.encode();
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[..9], RTERR_EYECATCHER);
    assert_eq!(bytes[9], 40);
    assert_eq!(bytes[10], opcode::VERSION_RESPONSE);
    assert_eq!(&bytes[11..], &[0; 13]);
    assert_eq!(RtErr::decode(&bytes), Ok(resp));
}

#[test]
fn pysap_minimal_denial_7_8() {
    let frame = hex("00 00 00 18 4e 49 5f 52 54 45 52 52 00 02 00 00
                     ff ff ff a2 00 00 00 00 00 00 00 00");
    let msg = RtErr::decode(payload(&frame)).unwrap();
    assert_eq!((msg.ni_version, msg.opcode, msg.return_code), (2, 0, -94));
    assert!(msg.text.is_empty());
    assert!(msg.record().is_err());
    assert_eq!(msg.encode(), payload(&frame));
}

#[test]
fn record_layout_is_21_strings() {
    let rec = ErrorRecord {
        counter: ni("1"),
        error: ni("e"),
        ..Default::default()
    };
    let bytes = rec.encode();
    assert!(bytes.starts_with(b"*ERR*\x001\x00e\x00"));
    assert!(bytes.ends_with(b"\x00\x00\x00\x00\x00*ERR*\x00"));
    assert_eq!(bytes.iter().filter(|&&b| b == 0).count(), ERR_FIELDS);
    assert_eq!(ErrorRecord::decode(&bytes), Ok(rec.clone()));
    // Missing final NUL is tolerated.
    assert_eq!(ErrorRecord::decode(&bytes[..bytes.len() - 1]), Ok(rec));
}

#[test]
fn record_rejects_malformed_text() {
    let good = ErrorRecord::default().encode();
    let err = |t: &[u8]| ErrorRecord::decode(t).is_err();
    assert!(err(b""));
    assert!(err(b"*ERR*\0"));
    assert!(err(&good[1..]), "opening eyecatcher damaged");
    let mut closing = good.clone();
    let n = closing.len();
    closing[n - 2] = b'X';
    assert!(err(&closing), "closing eyecatcher damaged");
    let mut extra = good.clone();
    extra.extend_from_slice(b"junk\0");
    assert!(err(&extra));
    let mut short = good.clone();
    short.drain(6..7); // drop one NUL: 20 fields
    assert!(err(&short));
}

#[test]
fn decode_rejects_bad_headers() {
    assert_eq!(RtErr::decode(b""), Err(RtErrError::NotRtErr));
    assert_eq!(RtErr::decode(b"NI_RTERR"), Err(RtErrError::NotRtErr));
    assert_eq!(RtErr::decode(b"NI_ROUTE\0\x02"), Err(RtErrError::NotRtErr));
    assert_eq!(
        RtErr::decode(b"NI_RTERR\0\x28\0\0\0\0"),
        Err(RtErrError::Truncated("header"))
    );
    // H45: lying text length.
    let mut b = control::version_request(40).encode();
    b[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(RtErr::decode(&b), Err(RtErrError::Truncated("text")));
    b[16..20].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(RtErr::decode(&b), Err(RtErrError::Truncated("text")));
}

#[test]
fn decode_tolerates_missing_or_partial_trailer() {
    let full = RtErr::error(40, -94, &ErrorRecord::default()).encode();
    let short = &full[..full.len() - 4];
    let msg = RtErr::decode(short).unwrap();
    assert_eq!(msg.trailer, [0; 4]);
    assert_eq!(msg.encode(), full);
    let mut b = control::version_request(40).encode();
    b.truncate(b.len() - 2);
    assert_eq!(RtErr::decode(&b).map(|m| m.trailer), Ok(*b"*E\0\0"));
    // SNC-style data after the trailer is ignored.
    let mut b = control::version_request(40).encode();
    b.extend_from_slice(b"SNCFRAME");
    assert_eq!(RtErr::decode(&b), Ok(control::version_request(40)));
}

#[test]
fn rc_table() {
    assert_eq!(
        rc_text(rc::NIEROUT_PERM_DENIED),
        Some("Connect from source to destination not allowed")
    );
    assert_eq!(rc_text(-1), Some("NI-internal error"));
    assert_eq!(rc_text(-20), Some("Requested package too large"));
    assert_eq!(rc_text(-93), Some("NI-internal errors"));
    assert_eq!(rc_text(-98), Some("saprouter shutdown"));
    assert_eq!(rc_text(-104), Some("Error in the SNC shift"));
    for missing in [0, 1, -21, -89, -105, i32::MIN] {
        assert_eq!(rc_text(missing), None, "{missing}");
    }
    let known = (-104..=-1).filter(|&c| rc_text(c).is_some()).count();
    assert_eq!(known, 35);
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}

proptest! {
    #[test]
    fn rterr_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut b = RTERR_EYECATCHER.to_vec();
        b.extend_from_slice(&bytes);
        if let Ok(m) = RtErr::decode(&b) {
            let _ = m.record();
        }
        let _ = RtErr::decode(&bytes);
        let _ = ErrorRecord::decode(&bytes);
    }

    #[test]
    fn record_round_trips(f in prop::collection::vec(text(), 15), rc in any::<i32>(), v in any::<u8>()) {
        let rec = ErrorRecord {
            counter: f[0].clone(), error: f[1].clone(), return_code: f[2].clone(),
            component: f[3].clone(), release: f[4].clone(), version: f[5].clone(),
            module: f[6].clone(), line: f[7].clone(), detail: f[8].clone(), time: f[9].clone(),
            system_call: f[10].clone(), errno: f[11].clone(), errno_text: f[12].clone(),
            error_count: f[13].clone(), location: f[14].clone(),
        };
        let msg = RtErr::error(v, rc, &rec);
        let back = RtErr::decode(&msg.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.record(), Ok(rec));
    }
}
