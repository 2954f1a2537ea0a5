//! `ROUTER_ADM` decode (and the info reply's binary records): never panics, never
//! allocates from a count it has not checked, and what decodes re-encodes to the same
//! command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use saprouter::ni::admin::{AdminCommand, AdminRequest, InfoClient, InfoServer};

fuzz_target!(|data: &[u8]| {
    if let Ok(client) = InfoClient::decode(data) {
        let once = InfoClient::decode(&client.encode()).expect("client record re-decodes");
        let twice = InfoClient::decode(&once.encode()).expect("client record re-decodes");
        assert_eq!(once, twice);
        assert_eq!(once.id, client.id);
    }
    if let Ok(server) = InfoServer::decode(data) {
        assert_eq!(InfoServer::decode(&server.encode()), Ok(server));
    }
    let Ok(request) = AdminRequest::decode(data) else {
        return;
    };
    let _ = format!("{request:?}");
    let again = AdminRequest::decode(&request.encode()).expect("admin request re-decodes");
    assert_eq!(again.version, request.version);
    assert_eq!(again.command.code(), request.command.code());
    match (&request.command, &again.command) {
        (AdminCommand::Cancel(a), AdminCommand::Cancel(b)) => {
            assert_eq!(&a[..a.len().min(usize::from(u16::MAX))], &b[..]);
        }
        (AdminCommand::TraceConnection(a), AdminCommand::TraceConnection(b))
        | (AdminCommand::TraceConnection2(a), AdminCommand::TraceConnection2(b)) => {
            assert_eq!(a, b);
        }
        (AdminCommand::Info { password: a }, AdminCommand::Info { password: b }) => {
            let a = a.as_deref().unwrap_or("");
            let b = b.as_deref().unwrap_or("");
            if a.len() <= 18 {
                assert_eq!(a, b);
            }
        }
        (AdminCommand::SetTracePeer(a), AdminCommand::SetTracePeer(b))
        | (AdminCommand::ClearTracePeer(a), AdminCommand::ClearTracePeer(b)) => {
            if a.len() <= 31 {
                assert_eq!(a, b);
            }
        }
        (a, b) => assert_eq!(a, b),
    }
});
