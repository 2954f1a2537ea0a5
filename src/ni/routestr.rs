//! Route strings, the text form of a route: `/H/host/S/service/W/password` per hop
//! (docs/protocol.md §2.2), shared by the router, its admin client and niping.

use super::route::RouteHop;

/// A route string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteStringError {
    /// Empty input or not starting with `/H/`.
    #[error("route string must start with /H/: {0:?}")]
    NoHost(String),
    /// An unknown tag (`/X/`), or text outside a tag.
    #[error("unexpected {found:?} at byte {at} of the route string")]
    Unexpected {
        /// What was found.
        found: String,
        /// Byte offset.
        at: usize,
    },
    /// A tag with an empty value (`/H//S/...`).
    #[error("empty value for /{0}/ in the route string")]
    EmptyValue(char),
}

/// True when `text` is a route string rather than a plain host name.
pub fn is_route_string(text: &str) -> bool {
    text.starts_with("/H/") || text.starts_with("/h/")
}

/// Parses a route string into hops.
///
/// Hops without `/S/` get `3299` (a SAProuter), except the last, which gets
/// `last_default_service` (e.g. `3298` for niping, `3299` for a route whose last hop is a
/// router). `/W/` sets the password of the hop it follows; the pre-4.0 `/P/` is accepted
/// the same way (it stays on the hop where it appears). Tags `H`, `S`, `W`, `P` are
/// matched case-insensitively; SAP GUI's own tags (`/R/ /G/ /A/ /M/`) are rejected.
///
/// Values run to the next `/` (so they cannot contain one). A single trailing `/` is
/// tolerated. A second `/S/` or password on the same hop is an error, as is an empty value.
pub fn parse(text: &str, last_default_service: &str) -> Result<Vec<RouteHop>, RouteStringError> {
    if !is_route_string(text) {
        return Err(RouteStringError::NoHost(text.to_string()));
    }
    let mut hops: Vec<RouteHop> = Vec::new();
    let mut pos = 0;
    while let Some(rest) = text.get(pos..).filter(|r| !r.is_empty()) {
        if rest == "/" {
            break; // trailing slash; `hops` is non-empty here since the text starts with /H/
        }
        let unexpected = |found: &str| RouteStringError::Unexpected {
            found: found.into(),
            at: pos,
        };
        let tag = match rest.as_bytes() {
            [b'/', tag, b'/', ..] => tag.to_ascii_uppercase(),
            _ => return Err(unexpected(segment(rest))),
        };
        // The three tag bytes are ASCII, so `pos + 3` is a char boundary.
        let value_start = pos + 3;
        let tail = text.get(value_start..).unwrap_or("");
        let value = tail.split('/').next().unwrap_or("");
        let tag_text = rest.get(..3).unwrap_or(rest);
        if value.is_empty() && matches!(tag, b'H' | b'S' | b'W' | b'P') {
            return Err(RouteStringError::EmptyValue(char::from(tag)));
        }
        match (tag, hops.last_mut()) {
            (b'H', _) => hops.push(RouteHop::new(value, "")),
            (b'S', Some(hop)) if hop.service.is_empty() => hop.service = value.to_string(),
            (b'W' | b'P', Some(hop)) if hop.password.is_empty() => hop.password = value.to_string(),
            _ => return Err(unexpected(tag_text)),
        }
        pos = value_start + value.len();
    }
    let last = hops.len().saturating_sub(1);
    for (i, hop) in hops.iter_mut().enumerate() {
        if hop.service.is_empty() {
            hop.service = if i == last {
                last_default_service
            } else {
                "3299"
            }
            .to_string();
        }
    }
    Ok(hops)
}

/// The offending piece of text at the front of `rest`: up to the `/` after the first byte.
fn segment(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '/')
        .map_or(rest.len(), |(i, _)| i);
    rest.get(..end).unwrap_or(rest)
}

/// Formats hops as a route string (`/H/h/S/s/W/p...`), omitting empty services and passwords.
/// Passwords are written as `/W/` (use [`format_redacted`] for logs).
pub fn format(hops: &[RouteHop]) -> String {
    format_with(hops, |p| p)
}

/// Like [`format`], with every password shown as `/W/***`.
pub fn format_redacted(hops: &[RouteHop]) -> String {
    format_with(hops, |_| "***")
}

fn format_with(hops: &[RouteHop], password: impl Fn(&str) -> &str) -> String {
    let mut out = String::new();
    for hop in hops {
        out.push_str("/H/");
        out.push_str(&hop.host);
        if !hop.service.is_empty() {
            out.push_str("/S/");
            out.push_str(&hop.service);
        }
        if !hop.password.is_empty() {
            out.push_str("/W/");
            out.push_str(password(&hop.password));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hop(host: &str, service: &str, password: &str) -> RouteHop {
        RouteHop::new(host, service).with_password(password)
    }

    #[test]
    fn parses_gui_style_route() {
        let hops = parse("/H/saprouter/S/3299/H/10.0.0.1/S/3200", "3298").unwrap();
        assert_eq!(
            hops,
            vec![hop("saprouter", "3299", ""), hop("10.0.0.1", "3200", "")]
        );
    }

    #[test]
    fn defaults_services_and_keeps_passwords_in_place() {
        let hops = parse("/H/r1/W/pw/H/target", "3298").unwrap();
        assert_eq!(
            hops,
            vec![hop("r1", "3299", "pw"), hop("target", "3298", "")]
        );
        let hops = parse("/H/rt/H/target/P/pw", "3299").unwrap();
        assert_eq!(
            hops,
            vec![hop("rt", "3299", ""), hop("target", "3299", "pw")]
        );
        let hops = parse("/H/r1/H/r2.example-1/S/sapdp00/H/app", "3200").unwrap();
        assert_eq!(
            hops,
            vec![
                hop("r1", "3299", ""),
                hop("r2.example-1", "sapdp00", ""),
                hop("app", "3200", "")
            ]
        );
    }

    #[test]
    fn tags_are_case_insensitive_and_trailing_slash_is_fine() {
        let hops = parse("/h/a1/s/1/w/x/H/b2", "9").unwrap();
        assert_eq!(hops, vec![hop("a1", "1", "x"), hop("b2", "9", "")]);
        assert_eq!(parse("/H/a/S/1/", "9").unwrap(), vec![hop("a", "1", "")]);
        assert_eq!(
            parse("/H/[::1]/S/3200", "9").unwrap(),
            vec![hop("[::1]", "3200", "")]
        );
    }

    #[test]
    fn rejects_malformed_route_strings() {
        use RouteStringError::*;
        assert_eq!(parse("", "1"), Err(NoHost(String::new())));
        assert_eq!(parse("host", "1"), Err(NoHost("host".into())));
        assert_eq!(parse("/X/foo", "1"), Err(NoHost("/X/foo".into())));
        assert_eq!(parse("/H/", "1"), Err(EmptyValue('H')));
        assert_eq!(parse("/H//S/1", "1"), Err(EmptyValue('H')));
        assert_eq!(parse("/H/a/S/", "1"), Err(EmptyValue('S')));
        assert_eq!(parse("/H/a/W/", "1"), Err(EmptyValue('W')));
        assert_eq!(
            parse("/H/a/R/sys", "1"),
            Err(Unexpected {
                found: "/R/".into(),
                at: 4
            })
        );
        for tag in ["G", "A", "M", "K", "x"] {
            let text = format!("/H/a/{tag}/v");
            assert!(
                matches!(parse(&text, "1"), Err(Unexpected { at: 4, .. })),
                "{text}"
            );
        }
        assert_eq!(
            parse("/H/a/bogus", "1"),
            Err(Unexpected {
                found: "/bogus".into(),
                at: 4
            })
        );
        assert_eq!(
            parse("/H/a/S", "1"),
            Err(Unexpected {
                found: "/S".into(),
                at: 4
            })
        );
        assert_eq!(
            parse("/H/a//", "1"),
            Err(Unexpected {
                found: "/".into(),
                at: 4
            })
        );
        assert_eq!(
            parse("/H/a/S/1/S/2", "1"),
            Err(Unexpected {
                found: "/S/".into(),
                at: 8
            })
        );
        assert_eq!(
            parse("/H/a/W/p/P/q", "1"),
            Err(Unexpected {
                found: "/P/".into(),
                at: 8
            })
        );
        assert!(parse("/H/a/\u{e9}/x", "1").is_err());
    }

    #[test]
    fn recognises_route_strings() {
        assert!(is_route_string("/H/a"));
        assert!(is_route_string("/h/a"));
        assert!(!is_route_string("host"));
        assert!(!is_route_string("/S/3299"));
    }

    #[test]
    fn formats_and_redacts() {
        let hops = vec![
            hop("r1", "3299", "pw"),
            hop("target", "3200", ""),
            hop("x", "", ""),
        ];
        assert_eq!(format(&hops), "/H/r1/S/3299/W/pw/H/target/S/3200/H/x");
        assert_eq!(
            format_redacted(&hops),
            "/H/r1/S/3299/W/***/H/target/S/3200/H/x"
        );
        assert_eq!(format(&[]), "");
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(
            hops in prop::collection::vec(
                ("[a-z0-9][a-z0-9.-]{0,10}", "[0-9]{1,5}", "[!-.0-~]{0,8}"),
                1..6,
            ),
        ) {
            let hops: Vec<RouteHop> = hops.iter().map(|(h, s, p)| hop(h, s, p)).collect();
            prop_assert_eq!(parse(&format(&hops), "1"), Ok(hops.clone()));
            let redacted = parse(&format_redacted(&hops), "1").map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (r, h) in redacted.iter().zip(&hops) {
                prop_assert_eq!(&r.password, if h.password.is_empty() { "" } else { "***" });
            }
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,30}", tail in "(/[HSWPhswpRX]/[^/]{0,4}){0,5}/?") {
            let _ = parse(&text, "1");
            let _ = parse(&format!("/H/{text}{tail}"), "1");
        }
    }
}
