//! Random credentials (client ids and secrets, access tokens) and the hashes
//! they are stored as. Credentials are long random strings, so a single
//! SHA-256 is a sufficient one-way hash: there is nothing to brute-force.

use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

/// A random alphanumeric string of `len` characters from the OS RNG.
pub fn random_alnum(len: usize) -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new OAuth client id (32 characters, as Ocrolus issues them).
pub fn new_client_id() -> String {
    random_alnum(32)
}

/// A new OAuth client secret (64 characters).
pub fn new_client_secret() -> String {
    random_alnum(64)
}

/// A new opaque access token; the prefix makes leaked tokens easy to scan for.
pub fn new_access_token() -> String {
    format!("oht_{}", random_alnum(48))
}

/// Publisher tokens start with this, account access tokens with `oht_`.
pub const PUBLISHER_TOKEN_PREFIX: &str = "ohp_";

/// A new publisher token (for the platform's publish API).
pub fn new_publisher_token() -> String {
    format!("{PUBLISHER_TOKEN_PREFIX}{}", random_alnum(48))
}

/// Portal links (`POST /v1/portal/sessions`) start with this.
pub const PORTAL_LINK_PREFIX: &str = "ohl_";
/// The dashboard sessions portal links open start with this.
pub const PORTAL_SESSION_PREFIX: &str = "ohs_";

/// A new one-time portal link token.
pub fn new_portal_link() -> String {
    format!("{PORTAL_LINK_PREFIX}{}", random_alnum(48))
}

/// A new portal session token (the dashboard's cookie).
pub fn new_portal_session() -> String {
    format!("{PORTAL_SESSION_PREFIX}{}", random_alnum(48))
}

/// The stored form of a secret credential.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_have_their_shapes() {
        assert_eq!(new_client_id().len(), 32);
        assert_eq!(new_client_secret().len(), 64);
        let t = new_access_token();
        assert!(t.starts_with("oht_") && t.len() == 52);
        assert_ne!(new_access_token(), t);
    }

    #[test]
    fn hashing_is_stable_and_compares() {
        assert_eq!(hash("abc"), hash("abc"));
        assert!(hashes_equal(&hash("abc"), &hash("abc")));
        assert!(!hashes_equal(&hash("abc"), &hash("abd")));
        assert!(!hashes_equal(&hash("abc"), &[]));
    }
}
