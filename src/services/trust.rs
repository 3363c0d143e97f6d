//! Who may use the API over HTTPS: the trusted certificates cached from the trust store (and
//! reloaded when an unknown one knocks: another member may just have added it), the members'
//! certificates trusted while joining, and the trust password, stored only as a salted
//! PBKDF2-HMAC-SHA256 hash.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::Result;
use crate::store::global::{GlobalDb, certificates as store_certs};
use crate::util::secret::random_hex;

const ITERATIONS: u32 = 100_000;
const PREFIX: &str = "pbkdf2-sha256";

/// How often an unknown fingerprint may trigger a reload of the trust store.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_millis(250);

/// A trusted certificate as authentication needs it.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub kind: i64,
    pub name: String,
}

impl Trusted {
    /// Another member's server certificate.
    pub fn is_member(&self) -> bool {
        self.kind == store_certs::TYPE_SERVER
    }
}

pub struct Trust {
    global: GlobalDb,
    cache: RwLock<HashMap<String, Trusted>>,
    refreshed: Mutex<Instant>,
    /// Members' certificates trusted while joining, before our replica holds the trust store.
    members: RwLock<HashMap<String, Trusted>>,
}

impl Trust {
    pub fn new(global: GlobalDb) -> Trust {
        Trust {
            global,
            cache: RwLock::new(HashMap::new()),
            refreshed: Mutex::new(Instant::now()),
            members: RwLock::new(HashMap::new()),
        }
    }

    /// Reloads the cache from the trust store: linearizable (a certificate just added through
    /// another member is seen); without a quorum, this member's own replica still lets trusted
    /// clients in.
    pub async fn refresh(&self) -> Result<()> {
        let fresh = tokio::time::timeout(Duration::from_secs(3), store_certs::list(&self.global)).await;
        let certs = match fresh {
            Ok(Ok(certs)) => certs,
            Ok(Err(e)) => store_certs::list_stale(&self.global).await.map_err(|_| e)?,
            Err(_) => store_certs::list_stale(&self.global).await?,
        };
        if let Ok(mut at) = self.refreshed.lock() {
            *at = Instant::now();
        }
        let map = certs.into_iter().map(|c| (c.fingerprint, Trusted { kind: c.kind, name: c.name })).collect();
        if let Ok(mut t) = self.cache.write() {
            *t = map;
        }
        Ok(())
    }

    pub fn trusted(&self, fingerprint: &str) -> Option<Trusted> {
        if let Some(t) = self.members.read().ok().and_then(|m| m.get(fingerprint).cloned()) {
            return Some(t);
        }
        self.cache.read().ok()?.get(fingerprint).cloned()
    }

    /// Looks a fingerprint up, reloading the trust store first (at most every 250 ms) when it
    /// is unknown.
    pub async fn trusted_fresh(&self, fingerprint: &str) -> Option<Trusted> {
        if let Some(t) = self.trusted(fingerprint) {
            return Some(t);
        }
        let stale = self.refreshed.lock().map(|at| at.elapsed() > RELOAD_AT_MOST_EVERY).unwrap_or(true);
        if stale && let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(4), self.refresh()).await {
            tracing::debug!(error = %e, "trust store not reloaded");
        }
        self.trusted(fingerprint)
    }

    /// Trusts other members' server certificates (fingerprint, name) ahead of the trust store.
    pub fn trust_members(&self, certs: impl Iterator<Item = (String, String)>) {
        if let Ok(mut t) = self.members.write() {
            for (fp, name) in certs {
                t.insert(fp, Trusted { kind: store_certs::TYPE_SERVER, name });
            }
        }
    }

    /// Forgets the member certificates trusted while joining (after leaving the cluster).
    pub fn forget_members(&self) {
        if let Ok(mut t) = self.members.write() {
            t.clear();
        }
    }
}

pub fn hash_password(password: &str) -> String {
    let salt = random_hex(16);
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt.as_bytes(), password.as_bytes(), &mut out);
    let hash: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}${ITERATIONS}${salt}${hash}")
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
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
    }
}
