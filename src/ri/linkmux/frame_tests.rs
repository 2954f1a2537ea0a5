use super::*;
use proptest::prelude::*;

#[test]
fn every_kind_has_its_bytes() {
    let cases: [(Frame, [u8; HEADER_LEN]); 6] = [
        (
            Frame::Data {
                stream: 0x0102_0304,
                len: 0x0001_0000,
            },
            [1, 2, 3, 4, 0, 0, 1, 0, 0],
        ),
        (
            Frame::Window {
                stream: 7,
                credit: 0x0004_0000,
            },
            [0, 0, 0, 7, 1, 0, 4, 0, 0],
        ),
        (Frame::Open { stream: 3 }, [0, 0, 0, 3, 2, 0, 0, 0, 0]),
        (
            Frame::Fin {
                stream: 0xffff_fffe,
            },
            [0xff, 0xff, 0xff, 0xfe, 3, 0, 0, 0, 0],
        ),
        (
            Frame::Reset {
                stream: 9,
                reason: reset::REFUSED,
            },
            [0, 0, 0, 9, 4, 0, 0, 0, 1],
        ),
        (
            Frame::Reset {
                stream: 9,
                reason: 0xdead_beef,
            },
            [0, 0, 0, 9, 4, 0xde, 0xad, 0xbe, 0xef],
        ),
    ];
    for (frame, bytes) in cases {
        assert_eq!(frame.encode(), bytes, "{frame:?}");
        assert_eq!(Frame::decode(&bytes), Ok(frame));
    }
}

#[test]
fn only_data_has_a_body() {
    assert_eq!(Frame::Data { stream: 1, len: 5 }.body_len(), 5);
    assert_eq!(
        Frame::Window {
            stream: 1,
            credit: 5
        }
        .body_len(),
        0
    );
    assert_eq!(
        Frame::Reset {
            stream: 1,
            reason: 5
        }
        .body_len(),
        0
    );
    assert_eq!(Frame::Open { stream: 1 }.body_len(), 0);
    assert_eq!(Frame::Fin { stream: 1 }.stream(), 1);
}

#[test]
fn bad_headers_are_named() {
    let h = |stream: u32, k: u8, len: u32| {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&stream.to_be_bytes());
        b[4] = k;
        b[5..9].copy_from_slice(&len.to_be_bytes());
        Frame::decode(&b)
    };
    assert_eq!(h(1, 5, 0), Err(FrameError::Kind(5)));
    assert_eq!(h(1, 0xff, 0), Err(FrameError::Kind(0xff)));
    assert_eq!(h(0, kind::DATA, 1), Err(FrameError::StreamZero(0)));
    assert_eq!(h(0, kind::RESET, 1), Err(FrameError::StreamZero(4)));
    assert_eq!(h(1, kind::DATA, 0), Err(FrameError::BodyLength(0)));
    assert_eq!(
        h(1, kind::DATA, MAX_BODY + 1),
        Err(FrameError::BodyLength(MAX_BODY + 1))
    );
    assert_eq!(
        h(1, kind::DATA, MAX_BODY),
        Ok(Frame::Data {
            stream: 1,
            len: MAX_BODY
        })
    );
    assert_eq!(h(1, kind::WINDOW, 0), Err(FrameError::Credit(0)));
    assert_eq!(
        h(1, kind::WINDOW, MAX_WINDOW + 1),
        Err(FrameError::Credit(MAX_WINDOW + 1))
    );
    assert_eq!(
        h(1, kind::OPEN, 1),
        Err(FrameError::Length { kind: 2, len: 1 })
    );
    assert_eq!(
        h(1, kind::FIN, 9),
        Err(FrameError::Length { kind: 3, len: 9 })
    );
}

#[test]
fn a_short_buffer_is_not_a_header_yet() {
    let bytes = Frame::Open { stream: 1 }.encode();
    for n in 0..HEADER_LEN {
        assert_eq!(Frame::decode_prefix(&bytes[..n]), Ok(None), "{n} bytes");
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(b"body");
    assert_eq!(
        Frame::decode_prefix(&longer),
        Ok(Some(Frame::Open { stream: 1 }))
    );
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let stream = 1u32..;
    prop_oneof![
        (stream.clone(), 1..=MAX_BODY).prop_map(|(stream, len)| Frame::Data { stream, len }),
        (stream.clone(), 1..=MAX_WINDOW)
            .prop_map(|(stream, credit)| Frame::Window { stream, credit }),
        stream.clone().prop_map(|stream| Frame::Open { stream }),
        stream.clone().prop_map(|stream| Frame::Fin { stream }),
        (stream, any::<u32>()).prop_map(|(stream, reason)| Frame::Reset { stream, reason }),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(frame in any_frame()) {
        prop_assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(Some(frame)) = Frame::decode_prefix(&bytes) {
            // What decodes re-encodes to the same bytes: no two spellings of one frame.
            prop_assert_eq!(&frame.encode()[..], &bytes[..HEADER_LEN]);
        }
    }
}
