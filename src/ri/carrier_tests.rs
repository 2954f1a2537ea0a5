use super::*;
use crate::ri::mux::StreamCount;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Two connected sockets: plain TCP over loopback, or an in-memory pipe (as a TLS link
/// is seen: not TCP).
async fn sockets(tcp: bool) -> (Side, Side) {
    if tcp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = listener.accept().await.unwrap();
        (Side::Tcp(a), Side::Tcp(b))
    } else {
        let (a, b) = tokio::io::duplex(64 * 1024);
        (Side::stream(a), Side::stream(b))
    }
}

/// A DMZ end and a LAN end of one link of `kind`; the LAN end echoes every stream the DMZ
/// router opens (after the control stream, which both run). Returns the DMZ router's opener,
/// the DMZ end's driver and the token that ends both.
async fn link(
    kind: Kind,
    tcp: bool,
) -> (
    Opener,
    tokio::task::JoinHandle<LinkEnd>,
    CancellationToken,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (dmz_socket, lan_socket) = sockets(tcp).await;
    let cancel = CancellationToken::new();
    let (dmz_opener, dmz_requests) = open_channel(kind);
    let (lan_opener, lan_requests) = open_channel(kind);
    assert_eq!(dmz_requests.kind(), kind);
    // Told when the DMZ end took the control stream.
    let (control_tx, control_rx) = tokio::sync::oneshot::channel();
    let mut control_tx = Some(control_tx);
    let c = cancel.clone();
    let dmz = tokio::spawn(drive(
        dmz_socket,
        End::Dmz,
        dmz_requests,
        move |stream| {
            // The LAN router opens exactly one stream: the control stream.
            let Some(tx) = control_tx.take() else {
                return false;
            };
            let _ = tx.send(());
            tokio::spawn(run_control(stream, c.clone()));
            true
        },
        cancel.clone(),
    ));
    let c = cancel.clone();
    tokio::spawn(drive(
        lan_socket,
        End::Lan,
        lan_requests,
        move |stream| {
            let mut s = stream.counted(StreamCount::default().guard());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
            true
        },
        c,
    ));
    let c = cancel.clone();
    tokio::spawn(async move {
        if let Ok(control) = lan_opener.open().await {
            run_control(control, c).await;
        }
    });
    (dmz_opener, dmz, cancel, control_rx)
}

async fn echo_through(opener: &Opener, bytes: &[u8]) {
    let count = StreamCount::default();
    let mut s = opener.open().await.unwrap().counted(count.guard());
    assert_eq!(count.open(), 1);
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, bytes);
    drop(s);
    assert_eq!(
        count.open(),
        0,
        "the guard counts the stream while it lives"
    );
}

#[test]
fn versions_name_their_multiplexer() {
    assert_eq!(Kind::of_version(1), Some(Kind::Yamux));
    assert_eq!(Kind::of_version(2), Some(Kind::Linkmux));
    assert_eq!(Kind::of_version(0), None);
    assert_eq!(Kind::of_version(3), None);
    for kind in [Kind::Yamux, Kind::Linkmux] {
        assert_eq!(Kind::of_version(kind.version()), Some(kind));
    }
    assert_eq!(Kind::Linkmux.to_string(), "linkmux");
    assert_eq!(Kind::Yamux.to_string(), "yamux");
}

#[tokio::test]
async fn either_kind_carries_control_and_sessions_on_either_socket() {
    for kind in [Kind::Yamux, Kind::Linkmux] {
        for tcp in [true, false] {
            let (opener, dmz, cancel, control) = link(kind, tcp).await;
            control.await.expect("control stream opened by the LAN end");
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            echo_through(&opener, &data).await;
            echo_through(&opener, b"second session").await;
            assert!(!dmz.is_finished(), "{kind} tcp={tcp}: link alive");
            cancel.cancel();
            assert_eq!(dmz.await.unwrap(), LinkEnd::Cancelled);
        }
    }
}

#[tokio::test]
async fn an_open_before_the_link_is_driven_waits_for_it() {
    for kind in [Kind::Yamux, Kind::Linkmux] {
        let (opener, requests) = open_channel(kind);
        let waiting = tokio::spawn({
            let opener = opener.clone();
            async move { opener.open().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "{kind}: waits for the driver");
        let (dmz_socket, lan_socket) = sockets(true).await;
        let cancel = CancellationToken::new();
        let (_lan_opener, lan_requests) = open_channel(kind);
        tokio::spawn(drive(
            lan_socket,
            End::Lan,
            lan_requests,
            |_| true,
            cancel.clone(),
        ));
        let dmz = tokio::spawn(drive(
            dmz_socket,
            End::Dmz,
            requests,
            |_| true,
            cancel.clone(),
        ));
        waiting.await.unwrap().expect("opened once the link runs");
        cancel.cancel();
        dmz.await.unwrap();
        assert!(
            opener.open().await.is_err(),
            "{kind}: an ended link opens nothing"
        );
    }
}

#[tokio::test]
async fn an_open_on_a_link_never_driven_fails() {
    for kind in [Kind::Yamux, Kind::Linkmux] {
        let (opener, requests) = open_channel(kind);
        drop(requests);
        let err = opener.open().await.err().expect("no link");
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{kind}");
    }
}
