//! Reverse invoke with redundancy, end to end on loopback: one LAN router registered with
//! two DMZ routers (127.0.0.1 and 127.0.0.2, the same registration port), and two LAN
//! routers serving one pseudo address through one DMZ router (active-active). Real
//! `saprouter -i` processes; every wait polls with a bound, nothing sleeps a fixed time.

mod common;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const L: &str = "127.0.0.1";
/// The pseudo address the LAN routers register (never dialled: no host has it).
const PSEUDO_HOST: &str = "10.9.9.9";

/// A router with its reverse-invoke parameter file.
struct Node {
    router: TestRouter,
    _cf: tempfile::TempDir,
}

fn start(cf_text: &str, table: &str) -> Node {
    start_with(cf_text, table, &[])
}

fn start_with(cf_text: &str, table: &str, extra: &[&str]) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cf");
    std::fs::write(&path, cf_text).expect("write cf");
    let path = path.to_string_lossy().into_owned();
    let mut args = vec!["-i", path.as_str(), "-V", "2"];
    args.extend_from_slice(extra);
    let router = TestRouter::start(table, &args);
    Node { router, _cf: dir }
}

/// A DMZ router taking registrations on `bind:reg`, routing to the pseudo address.
fn dmz(bind: &str, reg: u16, extra: &str, pseudo: u16) -> Node {
    start(
        &format!("client = true\nclient_hostname = {bind}\nclient_service = {reg}\n{extra}"),
        &format!("P * {PSEUDO_HOST} {pseudo}\nD * * *\n"),
    )
}

/// A LAN router registering `PSEUDO_HOST:pseudo` with the DMZ routers `dmz_hosts`.
fn lan(dmz_hosts: &str, reg: u16, pseudo: u16) -> Node {
    lan_with(dmz_hosts, reg, pseudo, &[])
}

fn lan_with(dmz_hosts: &str, reg: u16, pseudo: u16, extra: &[&str]) -> Node {
    start_with(
        &format!(
            "server = true\nclient_hostname = {dmz_hosts}\nclient_service = {reg}\n\
             reg_hostname = {PSEUDO_HOST}\nreg_service = {pseudo}\nretry_timeout = 1\n"
        ),
        "P * * *\n",
        extra,
    )
}

/// Waits until the DMZ router holds `servers` registered instances.
fn wait_servers(d: &Node, servers: usize) -> String {
    wait_listing(&d.router, &format!("{servers} servers"), |t| {
        t.contains(&format!("srv no {servers} ")) && t.matches("instance").count() == servers
    })
}

/// A session DMZ router → pseudo address → the echo server; checks one frame echoes.
fn session(d: &Node, pseudo: u16, echo: u16) -> TcpStream {
    let (dp, pp, ep) = (
        d.router.port.to_string(),
        pseudo.to_string(),
        echo.to_string(),
    );
    let (mut s, reply) = ask_route(
        &d.router,
        &[(L, &dp, ""), (PSEUDO_HOST, &pp, ""), (L, &ep, "")],
        0,
    );
    assert_eq!(
        reply,
        PONG,
        "route refused: {:?}",
        String::from_utf8_lossy(&reply)
    );
    echo_ok(&mut s);
    s
}

fn echo_ok(s: &mut TcpStream) {
    use std::io::Write;
    let data = pattern(100, 7);
    s.write_all(&frame(&data)).expect("send frame");
    assert_eq!(read_frame(s), data, "echo over the session");
}

/// Open sessions per registered instance, as the DMZ router's `-l` shows them.
fn sessions_per_instance(text: &str) -> Vec<usize> {
    text.lines()
        .filter(|l| l.contains("instance"))
        .filter_map(|l| {
            let rest = l.split(", streams ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn kill(node: &mut Node) {
    let _ = node.router.child.kill();
    node.router.wait_exit();
}

#[test]
fn one_lan_router_serves_through_either_dmz_router() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    let a = dmz("127.0.0.1", reg, "", pseudo);
    let mut b = dmz("127.0.0.2", reg, "", pseudo);
    let l = lan("127.0.0.1, 127.0.0.2", reg, pseudo);
    wait_servers(&a, 1);
    wait_servers(&b, 1);
    let text = wait_listing(&l.router, "both DMZ routers registered", |t| {
        t.contains("DMZ routers 2 (registered with 2)")
    });
    assert!(
        text.contains(&format!("- DMZ router 127.0.0.1:{reg}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("- DMZ router 127.0.0.2:{reg}")),
        "{text}"
    );
    assert_eq!(text.matches("[0] up, link").count(), 2, "{text}");
    let mut via_a = session(&a, pseudo, echo);
    let _via_b = session(&b, pseudo, echo);

    // DMZ router B dies: A's links, its sessions and new sessions through it carry on.
    kill(&mut b);
    wait_listing(&l.router, "B's link down", |t| {
        t.contains("DMZ routers 2 (registered with 1)")
    });
    echo_ok(&mut via_a);
    for _ in 0..3 {
        session(&a, pseudo, echo);
    }

    // B restarts on its address: the LAN router registers with it again.
    let restarted = Instant::now();
    let b = dmz("127.0.0.2", reg, "", pseudo);
    wait_servers(&b, 1);
    println!(
        "registered again {:?} after DMZ router B restarted",
        restarted.elapsed()
    );
    session(&b, pseudo, echo);
    echo_ok(&mut via_a);
    wait_listing(&l.router, "both registered again", |t| {
        t.contains("DMZ routers 2 (registered with 2)")
    });
}

#[test]
fn a_dmz_router_that_is_down_from_the_start_leaves_the_other_alone() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    // Nothing listens on 127.0.0.2: its pool retries on its own.
    let a = dmz("127.0.0.1", reg, "", pseudo);
    let l = lan("127.0.0.2, 127.0.0.1", reg, pseudo);
    wait_servers(&a, 1);
    session(&a, pseudo, echo);
    let text = wait_listing(&l.router, "B's slot down", |t| {
        t.contains("registered with 1") && t.contains("[0] down (connect to 127.0.0.2")
    });
    assert!(text.contains("[0] up, link"), "{text}");
}

#[test]
fn two_lan_routers_share_a_pseudo_address() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    let d = dmz(L, reg, "max_servers = 2\nACE = P 127.0.0.0/8\n", pseudo);
    let mut l1 = lan(L, reg, pseudo);
    let _l2 = lan(L, reg, pseudo);
    let text = wait_servers(&d, 2);
    assert!(
        text.contains(&format!("- shared {PSEUDO_HOST}:{pseudo} by 2 servers")),
        "{text}"
    );
    assert_eq!(text.matches(", vetted").count(), 2, "{text}");

    // Held sessions spread evenly over both instances.
    let mut held: Vec<TcpStream> = (0..6).map(|_| session(&d, pseudo, echo)).collect();
    let text = listing(&d.router);
    assert_eq!(sessions_per_instance(&text), vec![3, 3], "{text}");

    // One LAN router dies: the sessions on the other go on, new sessions succeed at once.
    kill(&mut l1);
    let killed = Instant::now();
    let mut fresh = Vec::new();
    for _ in 0..4 {
        fresh.push(session(&d, pseudo, echo));
    }
    let took = killed.elapsed();
    println!("4 new sessions {took:?} after one LAN router was killed");
    assert!(took < Duration::from_secs(2), "new sessions took {took:?}");
    let text = wait_servers(&d, 1);
    assert_eq!(sessions_per_instance(&text), vec![3 + 4], "{text}");
    let mut survived = 0;
    for s in held.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        use std::io::{Read, Write};
        let data = pattern(50, 3);
        let ok = s.write_all(&frame(&data)).is_ok() && {
            let mut head = [0u8; 4];
            s.read_exact(&mut head).is_ok() && {
                let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
                s.read_exact(&mut body).is_ok() && body == data
            }
        };
        survived += usize::from(ok);
    }
    assert_eq!(
        survived, 3,
        "the surviving instance's sessions all continue"
    );
    for s in fresh.iter_mut() {
        echo_ok(s);
    }
}

#[test]
fn an_unvetted_second_lan_router_is_refused() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    // No ACE list: anyone may register, so no one is vetted to share an address.
    let d = dmz(L, reg, "max_servers = 2\n", pseudo);
    let _l1 = lan(L, reg, pseudo);
    wait_servers(&d, 1);
    let l2 = lan(L, reg, pseudo);
    let text = wait_listing(&l2.router, "the refusal", |t| t.contains("refused"));
    assert!(
        text.contains("pseudo address already registered by server [0]"),
        "{text}"
    );
    assert!(text.contains("(rc -4)"), "{text}");
    let text = listing(&d.router);
    assert!(text.contains("srv no 1 "), "{text}");
    assert!(!text.contains("- shared"), "{text}");
    for _ in 0..3 {
        session(&d, pseudo, echo);
    }
    assert_eq!(sessions_per_instance(&listing(&d.router)), vec![0]);
}

fn wait_ready(port: u16, want: u16) {
    let start = Instant::now();
    while http_get(port, "/readyz").0 != want {
        assert!(start.elapsed() < STEP, "/readyz never answered {want}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ready_while_any_dmz_router_holds_a_registration() {
    let reg = free_port();
    let pseudo = free_port();
    let metrics = free_port();
    let mut a = dmz("127.0.0.1", reg, "", pseudo);
    let mut b = dmz("127.0.0.2", reg, "", pseudo);
    let addr = format!("{L}:{metrics}");
    let l = lan_with("127.0.0.1, 127.0.0.2", reg, pseudo, &["--metrics", &addr]);
    wait_listing(&l.router, "both registered", |t| {
        t.contains("registered with 2")
    });
    wait_ready(metrics, 200);
    let (_, body) = http_get(metrics, "/metrics");
    for dmz in ["127.0.0.1", "127.0.0.2"] {
        assert!(
            body.contains(&format!("dmz=\"{dmz}:{reg}\"")),
            "no link series for {dmz}:\n{body}"
        );
    }
    kill(&mut a);
    wait_listing(&l.router, "A's link down", |t| {
        t.contains("registered with 1")
    });
    assert_eq!(
        http_get(metrics, "/readyz").0,
        200,
        "B still holds a registration"
    );
    kill(&mut b);
    wait_ready(metrics, 503);
}

#[test]
fn a_dmz_router_that_never_answers_leaves_the_other_alone() {
    let reg = free_port();
    let pseudo = free_port();
    let echo = ni_echo();
    // "DMZ router" B accepts the TCP connection and then says nothing.
    let silent = std::net::TcpListener::bind(("127.0.0.2", reg)).expect("bind 127.0.0.2");
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    thread::spawn(move || {
        for s in silent.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let a = dmz("127.0.0.1", reg, "", pseudo);
    let started = Instant::now();
    let l = lan("127.0.0.2, 127.0.0.1", reg, pseudo);
    wait_servers(&a, 1);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "registered with A after {took:?}"
    );
    session(&a, pseudo, echo);
    let text = listing(&l.router);
    assert!(text.contains("registered with 1"), "{text}");
    let start = Instant::now();
    while held.lock().unwrap().is_empty() {
        assert!(start.elapsed() < STEP, "B was never asked");
        thread::sleep(Duration::from_millis(20));
    }
}
