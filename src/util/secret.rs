//! Random secrets (tokens, websocket secrets, salts).

use ring::rand::{SecureRandom, SystemRandom};

/// Hex of `n` random bytes from the kernel's generator.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails if the kernel RNG is unavailable, in which case nothing is safe.
    if SystemRandom::new().fill(&mut buf).is_err() {
        tracing::error!("kernel random number generator unavailable");
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_have_the_asked_length_and_differ() {
        let (a, b) = (super::random_hex(32), super::random_hex(32));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
