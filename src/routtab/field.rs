//! Field grammars of a table line: the action token with hop limits, host patterns and
//! service patterns. Each parser returns the reason text of an error; the line parser adds
//! the field name, the offending text, the line and the column.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while1};
use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{all_consuming, map, map_res, value};
use nom::multi::separated_list1;
use nom::sequence::{separated_pair, tuple};
use nom::IResult;

use super::pattern::{AddressMask, HopLimits, HostPattern, ServicePattern};
use super::{Action, Resolver};

/// Host name lookups done while one table loads (each name is resolved once).
pub(crate) type HostCache = HashMap<String, Result<Vec<IpAddr>, String>>;

/// The action token: `P`, `S`, `D`, `KT`, `KP`, `KS`, `KD` (any case), and for `P`/`S`
/// optional hop limits `<before>,<after>` written directly after the letter.
pub(crate) fn action(text: &str) -> Result<(Action, HopLimits), String> {
    let mut letters = alt((
        value(Action::SncTarget, tag_no_case("KT")),
        value(Action::SncPermit, tag_no_case("KP")),
        value(Action::SncSecure, tag_no_case("KS")),
        value(Action::SncDeny, tag_no_case("KD")),
        value(Action::Permit, tag_no_case("P")),
        value(Action::Secure, tag_no_case("S")),
        value(Action::Deny, tag_no_case("D")),
    ));
    let unknown = || "unknown line type (expected P, S, D, KT, KP, KS or KD)".to_string();
    let parsed: IResult<&str, Action> = letters(text);
    let Ok((rest, action)) = parsed else {
        return Err(unknown());
    };
    if rest.is_empty() {
        return Ok((action, HopLimits::default()));
    }
    if !rest.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
        return Err(unknown());
    }
    if !matches!(action, Action::Permit | Action::Secure) {
        return Err("hop limits are only allowed on P and S lines".to_string());
    }
    let hops: IResult<&str, (Option<&str>, Option<&str>)> =
        all_consuming(separated_pair(hop_limit, char(','), hop_limit))(rest);
    let Ok((_, (before, after))) = hops else {
        return Err("hop limits must be written <before>,<after> (e.g. P0,1 or P*,0)".to_string());
    };
    let check = |limit: Option<&str>| match limit {
        None => Ok(255),
        Some(digits) => match digits.parse::<u8>() {
            Ok(n) if n <= 254 => Ok(n),
            _ => Err(format!(
                "hop limit {digits} exceeds 254 (write * for unlimited)"
            )),
        },
    };
    let hops = HopLimits {
        before: check(before)?,
        after: check(after)?,
    };
    Ok((action, hops))
}

/// One hop limit: `*` (`None`, unlimited) or decimal digits (range checked by the caller).
fn hop_limit(input: &str) -> IResult<&str, Option<&str>> {
    alt((value(None, char('*')), map(digit1, Some)))(input)
}

/// A `#` where a field is expected: the comment came too early.
fn no_comment(text: &str) -> Result<(), String> {
    if text.starts_with('#') {
        return Err("a '#' comment may only follow the last field \
                    (write the omitted fields out as '*')"
            .to_string());
    }
    Ok(())
}

/// A host field: `*`, an IPv4 pattern (octets decimal, `*` or 8 binary digits with `x`),
/// IPv4 CIDR, an IPv6 address or prefix, or a host name resolved now.
pub(crate) fn host(
    text: &str,
    resolver: &dyn Resolver,
    cache: &mut HostCache,
) -> Result<HostPattern, String> {
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    no_comment(text)?;
    if text.contains(':') {
        return ipv6(text);
    }
    if let Some((addr, len)) = text.split_once('/') {
        return ipv4_cidr(addr, len);
    }
    let dotted_chars = |c: char| c.is_ascii_digit() || matches!(c, '.' | '*' | 'x' | 'X');
    if text.chars().all(dotted_chars) && text.contains(|c: char| c.is_ascii_digit() || c == '*') {
        return ipv4_pattern(text);
    }
    host_name(text, resolver, cache)
}

fn ipv6(text: &str) -> Result<HostPattern, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, len)) => (addr, prefix_len(len, 128)?),
        None => (text, 128),
    };
    let addr: Ipv6Addr = addr
        .parse()
        .map_err(|_| "not a valid IPv6 address or prefix".to_string())?;
    Ok(HostPattern::Addresses(vec![AddressMask::prefix(
        IpAddr::V6(addr),
        prefix,
    )]))
}

fn ipv4_cidr(addr: &str, len: &str) -> Result<HostPattern, String> {
    let prefix = prefix_len(len, 32)?;
    let octets = split_octets(addr)?;
    let mut bytes = [0u8; 4];
    match octets.as_slice() {
        [_, _, _, _] => {
            for (byte, octet) in bytes.iter_mut().zip(&octets) {
                *byte = decimal_octet(octet)?;
            }
        }
        _ => return Err("a CIDR prefix needs a full address a.b.c.d/n".to_string()),
    }
    let addr = IpAddr::V4(Ipv4Addr::from(bytes));
    Ok(HostPattern::Addresses(vec![AddressMask::prefix(
        addr, prefix,
    )]))
}

fn prefix_len(text: &str, max: u8) -> Result<u8, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("prefix length must be a decimal number".to_string());
    }
    match text.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("prefix length {text} exceeds {max}")),
    }
}

/// Splits `a.b.c.d` into its octet tokens (nom); empty octets are an error.
fn split_octets(text: &str) -> Result<Vec<&str>, String> {
    let octet = take_while1(|c: char| c.is_ascii_alphanumeric() || c == '*');
    let parsed: IResult<&str, Vec<&str>> = all_consuming(separated_list1(char('.'), octet))(text);
    parsed
        .map(|(_, octets)| octets)
        .map_err(|_| "empty or malformed octet".to_string())
}

fn ipv4_pattern(text: &str) -> Result<HostPattern, String> {
    let octets = split_octets(text)?;
    if octets.len() == 1 && octets[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err("a bare number is not a host (did a field go missing? \
                    write an address such as 10.0.0.1, a pattern, a name or '*')"
            .to_string());
    }
    if octets.len() < 4 {
        let mut suggestion = text.to_string();
        for _ in octets.len()..4 {
            suggestion.push_str(".*");
        }
        return Err(format!(
            "partial address is ambiguous; write '{suggestion}'"
        ));
    }
    if octets.len() > 4 {
        return Err("too many octets (an IPv4 pattern has 4)".to_string());
    }
    let mut addr = [0u8; 4];
    let mut wildcard = [0u8; 4];
    for (i, octet) in octets.iter().enumerate() {
        (addr[i], wildcard[i]) = octet_pattern(octet)?;
    }
    Ok(HostPattern::Addresses(vec![AddressMask::v4(
        Ipv4Addr::from(addr),
        Ipv4Addr::from(wildcard),
    )]))
}

/// One octet of a pattern: (value, don't-care bits).
fn octet_pattern(octet: &str) -> Result<(u8, u8), String> {
    if octet == "*" {
        return Ok((0, 0xff));
    }
    let binary_chars = |c: char| matches!(c, '0' | '1' | 'x' | 'X');
    if octet.len() == 8 && octet.chars().all(binary_chars) {
        let (mut value, mut wildcard) = (0u8, 0u8);
        for c in octet.chars() {
            value = (value << 1) | u8::from(c == '1');
            wildcard = (wildcard << 1) | u8::from(c == 'x' || c == 'X');
        }
        return Ok((value, wildcard));
    }
    if octet.chars().all(binary_chars) && octet.contains(['x', 'X']) {
        return Err(format!(
            "binary octet '{octet}' must have exactly 8 digits of 0, 1 or x"
        ));
    }
    decimal_octet(octet).map(|v| (v, 0))
}

/// A decimal octet 0..=255 without leading zeros (`010` would be octal to inet_aton).
fn decimal_octet(octet: &str) -> Result<u8, String> {
    if octet.is_empty() || !octet.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "octet '{octet}' is not a decimal number 0-255, '*' or 8 binary digits"
        ));
    }
    if octet.len() > 1 && octet.starts_with('0') {
        return Err(format!(
            "octet '{octet}' has a leading zero (ambiguous: octal?); write it without"
        ));
    }
    octet
        .parse::<u8>()
        .map_err(|_| format!("octet '{octet}' exceeds 255"))
}

fn host_name(
    text: &str,
    resolver: &dyn Resolver,
    cache: &mut HostCache,
) -> Result<HostPattern, String> {
    if let Some(bad) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "invalid character {bad:?} (not an address pattern, and a host name \
             may only hold letters, digits, '.', '-' and '_')"
        ));
    }
    if text.len() > 253 {
        return Err("host name longer than 253 characters".to_string());
    }
    let lower = text.to_ascii_lowercase();
    let hex = lower
        .strip_prefix("0x")
        .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    if hex || !lower.contains(|c: char| c.is_ascii_alphabetic()) {
        return Err(
            "not an IPv4 pattern nor a host name (hexadecimal and other \
                    numeric spellings are not supported)"
                .to_string(),
        );
    }
    let resolved = cache
        .entry(lower)
        .or_insert_with(|| resolver.resolve_host(text))
        .clone();
    // A name that does not resolve makes the line match nothing (with a warning from the
    // parser) rather than failing the table: a DNS outage must not stop a router or a reload.
    let Ok(addrs) = resolved else {
        return Ok(HostPattern::Addresses(Vec::new()));
    };
    let mut masks: Vec<AddressMask> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let mask = AddressMask::exact(addr);
        if !masks.contains(&mask) {
            masks.push(mask);
        }
    }
    Ok(HostPattern::Addresses(masks))
}

/// A service field: `*`, a port, a range `min.max` / `min-max`, or a service name.
pub(crate) fn service(text: &str, resolver: &dyn Resolver) -> Result<ServicePattern, String> {
    if text == "*" {
        return Ok(ServicePattern::Any);
    }
    no_comment(text)?;
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let port = port(text)?;
        return Ok(ServicePattern::Range(port, port));
    }
    let range: IResult<&str, (&str, char, &str)> =
        all_consuming(tuple((digit1, one_of(".-"), digit1)))(text);
    if let Ok((_, (min, _, max))) = range {
        let (min, max) = (port(min)?, port(max)?);
        if min > max {
            return Err(format!("range start {min} is above its end {max}"));
        }
        return Ok(ServicePattern::Range(min, max));
    }
    let name: IResult<&str, &str> = all_consuming(map_res(
        take_while1(|c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')),
        |name: &str| match name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            true => Ok(name),
            false => Err(()),
        },
    ))(text);
    if name.is_err() || text.len() > 64 {
        return Err("not a port (1-65535), a range min.max, a service name or '*'".to_string());
    }
    match resolver.resolve_service(text) {
        Some(0) | None => Err("unknown service name (not in the services database)".to_string()),
        Some(port) => Ok(ServicePattern::Range(port, port)),
    }
}

/// A decimal port 1..=65535.
fn port(text: &str) -> Result<u16, String> {
    let digits = text.trim_start_matches('0');
    match digits.parse::<u32>() {
        _ if digits.is_empty() => Err("port 0 is not allowed".to_string()),
        Ok(port @ 1..=65535) => u16::try_from(port).map_err(|e| e.to_string()),
        _ => Err(format!("port {text} exceeds 65535")),
    }
}
