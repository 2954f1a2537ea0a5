//! Constant-time comparison of secrets (route and info passwords).
//!
//! Both sides are hashed to a fixed length first, so neither the content nor the length of
//! the expected secret leaks through timing (the info-password timing attack, CVE-2014-0984).

use std::hash::{BuildHasher, Hasher};
use subtle::ConstantTimeEq;

/// Fixed-size digest used only to equalise lengths before the constant-time compare; the
/// final decision also compares the full bytes in constant time, so a hash collision cannot
/// let a wrong secret through.
fn digest(bytes: &[u8], state: &std::hash::RandomState) -> [u8; 8] {
    let mut hasher = state.build_hasher();
    hasher.write(bytes);
    hasher.finish().to_be_bytes()
}

/// True when `a == b`, in time independent of where they differ and of `a`'s length.
pub fn constant_time_eq(expected: &[u8], offered: &[u8]) -> bool {
    let state = std::hash::RandomState::new();
    let same_digest = digest(expected, &state).ct_eq(&digest(offered, &state));
    // Compare over the offered length so the work depends only on attacker-known input.
    let mut diff = (expected.len() != offered.len()) as u8;
    for (i, o) in offered.iter().enumerate() {
        let e = expected.get(i).copied().unwrap_or(0);
        diff |= e ^ o;
    }
    bool::from(same_digest) && diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_and_unequal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
