//! The test support's own checks, run once here rather than in every test binary that
//! includes `common`.

mod common;
use common::listener_owner::listens_on;

#[test]
fn this_process_is_seen_listening_and_not_once_it_closes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    assert!(listens_on(std::process::id(), port));
    drop(listener);
    assert!(!listens_on(std::process::id(), port));
}
