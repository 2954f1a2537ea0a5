//! End-to-end tests of the `niping` binary: server, client, self test, errors, and routes
//! through small fake routers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use saprouter::ni::frame::{frame, NI_PONG};
use saprouter::ni::route::{talk_mode, RouteHop, RouteRequest};
use saprouter::ni::rterr::{ErrorRecord, RtErr};

const NIPING: &str = env!("CARGO_BIN_EXE_niping");

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A niping server child, killed on drop.
struct Server(Child, u16);

impl Server {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(NIPING)
            .args([
                "-s",
                "-H",
                "127.0.0.1",
                "-S",
                &port.to_string(),
                "-I",
                "120",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server(child, port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "niping server did not start");
            thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn niping(args: &[&str]) -> Output {
    Command::new(NIPING).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_summary(out: &Output, loops: u32, len: usize) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("connect to server o.k."), "{stdout}");
    assert!(
        stdout.contains(&format!("send and receive {loops} messages (len {len})")),
        "{stdout}"
    );
    for key in ["avg ", "max ", "min ", "tr ", "av2 ", "tr2 "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(key)),
            "no {key:?} line in\n{stdout}"
        );
    }
    assert!(stdout.contains("excluding max and min:"));
}

#[test]
fn client_against_server() {
    let server = Server::start();
    let port = server.1.to_string();
    let out = niping(&["-c", "-H", "127.0.0.1", "-S", &port]);
    assert_summary(&out, 10, 1000);
    let out = niping(&[
        "-c",
        "-H",
        "127.0.0.1",
        "-S",
        &port,
        "-B",
        "4000000",
        "-L",
        "3",
        "-D",
        "1",
    ]);
    assert_summary(&out, 3, 4_000_000);
}

#[test]
fn server_echoes_raw_bytes_and_many_clients() {
    let server = Server::start();
    let probe = [0u8, 0, 0, 3, b'S', b'A', b'P'];
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let port = server.1;
            thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(&probe).unwrap();
                let mut back = [0u8; 7];
                s.read_exact(&mut back).unwrap();
                back
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), probe);
    }
}

#[test]
fn self_test() {
    let out = niping(&["-t"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("*** SELFTEST O.K. ***"));
}

#[test]
fn usage_on_bad_arguments() {
    for args in [&[][..], &["-x"], &["-c"]] {
        let out = niping(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("usage"), "{args:?}");
    }
}

#[test]
fn closed_port_prints_error_block() {
    let port = free_port().to_string();
    let out = niping(&["-c", "-H", "127.0.0.1", "-S", &port, "-L", "1"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("*** ERROR =>"), "{err}");
    assert!(err.contains("*  LOCATION"), "{err}");
    assert!(err.contains("*  RC          -10"), "{err}");
    assert!(err.contains("*  ERRNO TEXT  "), "{err}");
}

/// Reads one NI message.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A one-connection fake router: checks the route, then runs `then` on the connection.
fn fake_router(
    then: impl FnOnce(TcpStream, RouteRequest) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let route = RouteRequest::decode(&read_frame(&mut s).unwrap()).unwrap();
        then(s, route);
    });
    (port, handle)
}

#[test]
fn route_through_fake_router() {
    let (port, router) = fake_router(|mut s, route| {
        assert_eq!(route.ni_version, 40);
        assert_eq!(route.talk_mode, talk_mode::NI_MSG_IO);
        assert_eq!((route.rest, route.next_index()), (1, 1));
        let router_hop = RouteHop {
            host: "127.0.0.1".into(),
            service: s.local_addr().unwrap().port().to_string(),
            password: "pw".into(),
        };
        assert_eq!(
            route.hops,
            vec![router_hop, RouteHop::new("10.9.8.7", "3298")]
        );
        s.write_all(&frame(NI_PONG)).unwrap();
        let mut seen = 0;
        while let Some(msg) = read_frame(&mut s) {
            if msg.is_empty() {
                break; // niping's end marker
            }
            assert!(msg.starts_with(b"EYECATCHER") && msg.len() == 500);
            s.write_all(&frame(&msg)).unwrap();
            seen += 1;
        }
        assert_eq!(seen, 4);
    });
    let route = format!("/H/127.0.0.1/S/{port}/W/pw/H/10.9.8.7");
    let out = niping(&["-c", "-H", &route, "-B", "500", "-L", "4"]);
    assert_summary(&out, 4, 500);
    router.join().unwrap();
}

#[test]
fn route_denied_by_fake_router() {
    let (port, router) = fake_router(|mut s, route| {
        assert_eq!(route.next_hop().host, "10.9.8.7");
        let rec = ErrorRecord {
            counter: "1".into(),
            error: "route permission denied (127.0.0.1 to 10.9.8.7, 3299)".into(),
            return_code: "-94".into(),
            component: "NI (network interface)".into(),
            release: "753".into(),
            version: "40".into(),
            module: "nirout.cpp".into(),
            line: "2801".into(),
            detail: "NiRClientHandle: route permission denied".into(),
            time: "Thu Jan  1 00:00:00 2015".into(),
            error_count: "1".into(),
            location: "SAProuter 40.4 on 'fake'".into(),
            ..ErrorRecord::default()
        };
        s.write_all(&frame(&RtErr::error(40, -94, &rec).encode()))
            .unwrap();
    });
    let route = format!("/H/127.0.0.1/S/{port}/H/10.9.8.7/S/3299");
    let out = niping(&["-c", "-H", &route]);
    router.join().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("*  RC          -94"), "{err}");
    assert!(
        err.contains("*  LOCATION    SAProuter 40.4 on 'fake'"),
        "{err}"
    );
    assert!(
        err.contains("*  ERROR       route permission denied"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("connect to server o.k."));
}
