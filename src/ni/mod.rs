//! The NI wire protocol, sans IO: every byte layout SAP's router and its clients exchange.
//!
//! Nothing here touches a socket; callers feed byte slices and get typed values back (or
//! encode typed values into bytes). All integers are big-endian.

pub mod admin;
pub mod control;
pub mod frame;
pub mod route;
pub mod routestr;
pub mod rterr;

/// The NI version this implementation speaks and announces (SAP's 7.20+ routers: 40).
pub const NI_VERSION: u8 = 40;

/// Test helper: bytes from a hex dump (`"4e 49 5f"`, whitespace ignored).
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("zz"), 16).unwrap_or(0))
        .collect()
}
