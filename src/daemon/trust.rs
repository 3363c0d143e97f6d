//! The trust password, stored only as a salted PBKDF2-HMAC-SHA256 hash, and random secrets.

use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};

const ITERATIONS: u32 = 100_000;
const PREFIX: &str = "pbkdf2-sha256";

/// Hex of `n` random bytes.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails if the kernel RNG is unavailable, in which case nothing is safe.
    if SystemRandom::new().fill(&mut buf).is_err() {
        tracing::error!("kernel random number generator unavailable");
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

pub fn hash_password(password: &str) -> String {
    let salt = random_hex(16);
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt.as_bytes(), password.as_bytes(), &mut out);
    let hash: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}${ITERATIONS}${salt}${hash}")
}

/// Constant-time check of `password` against a stored hash.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [prefix, iterations, salt, hash] = parts.as_slice() else {
        return false;
    };
    if *prefix != PREFIX {
        return false;
    }
    let (Some(iterations), Some(expected)) = (iterations.parse::<u32>().ok().and_then(NonZeroU32::new), from_hex(hash)) else {
        return false;
    };
    ring::pbkdf2::verify(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt.as_bytes(), password.as_bytes(), &expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("sekret");
        assert!(h.starts_with("pbkdf2-sha256$"));
        assert!(!h.contains("sekret"));
        assert!(verify_password(&h, "sekret"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("garbage", "sekret"));
        assert_eq!(random_hex(32).len(), 64);
    }
}
