use super::*;

/// Two ends of a link over an in-memory pipe; the server side's inbound streams arrive on
/// the returned receiver.
fn pair() -> (
    Session<tokio::io::DuplexStream>,
    Opener,
    Session<tokio::io::DuplexStream>,
    Opener,
) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (client_opener, client_requests) = open_channel();
    let (server_opener, server_requests) = open_channel();
    let client = session(a, yamux::Mode::Client, client_requests);
    let server = session(b, yamux::Mode::Server, server_requests);
    (client, client_opener, server, server_opener)
}

fn collect(tx: mpsc::UnboundedSender<yamux::Stream>) -> impl FnMut(yamux::Stream) -> bool {
    move |s| tx.send(s).is_ok()
}

async fn echo(stream: yamux::Stream) {
    let (mut r, mut w) = tokio::io::split(stream.compat());
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

#[tokio::test]
async fn streams_open_and_carry_bytes_both_ways() {
    let (client, opener, server, _) = pair();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = tokio::spawn(client.drive(|_| false, cancel.clone()));
    let s = tokio::spawn(server.drive(collect(tx), cancel.clone()));
    let count = StreamCount::default();
    for round in 0..3u8 {
        let stream = opener.open().await.unwrap();
        let mut stream = MuxStream::new(stream, &count);
        assert_eq!(count.open(), 1);
        stream.write_all(&[round; 100_000]).await.unwrap();
        let inbound = rx.recv().await.unwrap();
        tokio::spawn(echo(inbound));
        let mut back = vec![0u8; 100_000];
        stream.read_exact(&mut back).await.unwrap();
        assert!(back.iter().all(|&b| b == round));
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(stream);
        assert_eq!(count.open(), 0);
    }
    assert_eq!(count.total(), 3);
    cancel.cancel();
    assert_eq!(c.await.unwrap(), LinkEnd::Cancelled);
    let _ = s.await.unwrap();
}

#[tokio::test]
async fn a_stalled_stream_does_not_stall_its_neighbour() {
    let (client, opener, server, _) = pair();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(client.drive(|_| false, cancel.clone()));
    tokio::spawn(server.drive(collect(tx), cancel.clone()));
    // Stream A: the far side floods it and nobody reads it here.
    let mut a = opener.open().await.unwrap().compat();
    a.write_all(b"x").await.unwrap();
    let far_a = rx.recv().await.unwrap();
    let flood = tokio::spawn(async move {
        let mut w = far_a.compat();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    // Stream B still echoes 4 MiB.
    let b = opener.open().await.unwrap();
    let (mut br, mut bw) = tokio::io::split(b.compat());
    bw.write_all(b"y").await.unwrap();
    tokio::spawn(echo(rx.recv().await.unwrap()));
    let data = vec![3u8; 4 << 20];
    let writer = tokio::spawn(async move {
        bw.write_all(&data).await.unwrap();
        bw.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), br.read_to_end(&mut got))
        .await
        .expect("the neighbour stream stalled")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), 1 + (4 << 20));
    assert!(
        !flood.is_finished(),
        "the flooder is blocked by its window, not failed"
    );
    cancel.cancel();
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_declared_dead() {
    let (a, _b_kept_but_never_driven) = tokio::io::duplex(1024);
    let (_opener, requests) = open_channel();
    let client = session(a, yamux::Mode::Client, requests);
    let started = Instant::now();
    let end = client.drive(|_| false, CancellationToken::new()).await;
    assert_eq!(end, LinkEnd::Silent);
    let took = started.elapsed();
    assert!(
        took > DEAD_AFTER && took <= Duration::from_secs(15),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_an_idle_link_alive() {
    let (client, _opener, server, server_opener) = pair();
    let cancel = CancellationToken::new();
    let dmz_cancel = cancel.clone();
    // The DMZ side (client mode) takes the first inbound stream as its control stream.
    let c = tokio::spawn(client.drive(
        move |stream| {
            tokio::spawn(run_control(stream.compat(), dmz_cancel.clone()));
            true
        },
        cancel.clone(),
    ));
    let s = tokio::spawn(server.drive(|_| false, cancel.clone()));
    let control = server_opener.open().await.unwrap();
    tokio::spawn(run_control(control.compat(), cancel.clone()));
    tokio::time::sleep(DEAD_AFTER * 4).await;
    assert!(!c.is_finished() && !s.is_finished(), "link died while idle");
    cancel.cancel();
    assert_eq!(c.await.unwrap(), LinkEnd::Cancelled);
}

#[tokio::test]
async fn a_closed_peer_ends_the_link_and_its_streams() {
    let (client, opener, server, _) = pair();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = tokio::spawn(client.drive(|_| false, CancellationToken::new()));
    let server_cancel = CancellationToken::new();
    let s = tokio::spawn(server.drive(collect(tx), server_cancel.clone()));
    let mut stream = opener.open().await.unwrap().compat();
    stream.write_all(b"hi").await.unwrap();
    let _far = rx.recv().await.unwrap();
    server_cancel.cancel();
    assert_eq!(s.await.unwrap(), LinkEnd::Cancelled);
    assert_eq!(c.await.unwrap(), LinkEnd::Closed);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "stream of a closed link must not hang");
    assert!(opener.open().await.is_err(), "no streams on a closed link");
}

#[tokio::test]
async fn a_forbidden_inbound_stream_ends_the_link() {
    let (client, _opener, server, server_opener) = pair();
    let c = tokio::spawn(client.drive(|_| false, CancellationToken::new()));
    tokio::spawn(server.drive(|_| true, CancellationToken::new()));
    let mut s = server_opener.open().await.unwrap().compat();
    s.write_all(b"unexpected").await.unwrap();
    assert_eq!(c.await.unwrap(), LinkEnd::Cancelled);
}

#[tokio::test]
async fn oversized_control_messages_end_the_control_stream() {
    let (client, _opener, server, server_opener) = pair();
    let cancel = CancellationToken::new();
    let (done_tx, done_rx) = oneshot::channel();
    let mut done_tx = Some(done_tx);
    let inner_cancel = cancel.clone();
    tokio::spawn(client.drive(
        move |stream| {
            let done = done_tx.take();
            let cancel = inner_cancel.clone();
            tokio::spawn(async move {
                run_control(stream.compat(), cancel).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            });
            true
        },
        cancel.clone(),
    ));
    tokio::spawn(server.drive(|_| false, cancel.clone()));
    let mut control = server_opener.open().await.unwrap().compat();
    control
        .write_all(&frame::frame(&[0u8; 1000]))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), done_rx)
        .await
        .expect("control stream must end")
        .unwrap();
}

#[test]
fn activity_measures_idle_time() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let a = Activity::new();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(a.idle() >= Duration::from_secs(3));
        a.touch();
        assert!(a.idle() < Duration::from_millis(10));
    });
}

#[tokio::test(start_paused = true)]
async fn without_heartbeats_an_idle_link_dies() {
    // Proves the test above measures the heartbeats, not yamux's own pings.
    let (client, _opener, server, _server_opener) = pair();
    let cancel = CancellationToken::new();
    let c = tokio::spawn(client.drive(|_| true, cancel.clone()));
    let _s = tokio::spawn(server.drive(|_| true, cancel.clone()));
    assert_eq!(c.await.unwrap(), LinkEnd::Silent);
}
