//! Secrets at rest (SPEC §6): webhook signing secrets and URL passwords are
//! sealed with XChaCha20-Poly1305 under an operator key before they reach
//! the store. A sealed value names the id of the key that sealed it, so keys
//! can be rotated: the first key of a [`Keyring`] seals, every key opens.
//!
//! [`SecretString`] is the in-memory form of a secret: it never prints.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// A secret string that shows as `****` in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call sites that need it are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Why a keyring or a sealed value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("key {0:?}: a key is written as <id>:<base64 of 32 bytes>")]
    BadKey(String),
    #[error("a keyring needs at least one key")]
    NoKeys,
    #[error("sealed value names key {0:?}, which is not in the keyring")]
    UnknownKey(String),
    #[error("sealed value is corrupt or was sealed with another key")]
    Corrupt,
}

/// The operator's encryption keys; the first one seals.
pub struct Keyring {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Parses keys written as `<id>:<base64 of 32 bytes>`, the sealing key first.
    pub fn from_specs<S: AsRef<str>>(specs: &[S]) -> Result<Self, SealError> {
        let mut keys = Vec::new();
        for spec in specs {
            let spec = spec.as_ref().trim();
            let bad = || SealError::BadKey(spec.split(':').next().unwrap_or_default().to_owned());
            let (id, b64) = spec.split_once(':').ok_or_else(bad)?;
            let bytes = B64.decode(b64).map_err(|_| bad())?;
            if id.is_empty() || id.contains(':') || bytes.len() != 32 {
                return Err(bad());
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| bad())?;
            keys.push((id.to_owned(), cipher));
        }
        if keys.is_empty() {
            return Err(SealError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A fresh random key spec with the given id, for a new data folder.
    pub fn generate_spec(id: &str) -> String {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        format!("{id}:{}", B64.encode(key))
    }

    /// Seals `plaintext` as `<key id>:<base64 of nonce ‖ ciphertext>`.
    pub fn seal(&self, plaintext: &SecretString) -> String {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.expose().as_bytes())
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{id}:{}", B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<SecretString, SealError> {
        let (id, b64) = sealed.split_once(':').ok_or(SealError::Corrupt)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let bytes = B64.decode(b64).map_err(|_| SealError::Corrupt)?;
        if bytes.len() < 24 {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain)
            .map(SecretString)
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_without_leaking() {
        let ring = Keyring::from_specs(&[Keyring::generate_spec("k1")]).unwrap();
        let secret = SecretString::new("hunter2hunter2hunter2");
        let sealed = ring.seal(&secret);
        assert!(sealed.starts_with("k1:"));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(ring.seal(&secret), sealed, "nonces are random");
        assert_eq!(ring.open(&sealed).unwrap(), secret);
        assert_eq!(format!("{secret:?} {secret}"), "**** ****");
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::generate_spec("old");
        let sealed = Keyring::from_specs(std::slice::from_ref(&old))
            .unwrap()
            .seal(&SecretString::new("s"));
        let ring = Keyring::from_specs(&[Keyring::generate_spec("new"), old]).unwrap();
        assert_eq!(ring.open(&sealed).unwrap().expose(), "s");
        assert!(ring.seal(&SecretString::new("s")).starts_with("new:"));
    }

    #[test]
    fn bad_keys_and_tampering_are_refused() {
        assert!(matches!(
            Keyring::from_specs::<&str>(&[]),
            Err(SealError::NoKeys)
        ));
        assert!(matches!(
            Keyring::from_specs(&["k1:abc"]),
            Err(SealError::BadKey(_))
        ));
        let ring = Keyring::from_specs(&[Keyring::generate_spec("k1")]).unwrap();
        let mut sealed = ring.seal(&SecretString::new("secret"));
        sealed.pop();
        sealed.push('A');
        assert!(ring.open(&sealed).is_err());
        assert!(matches!(
            ring.open("k9:AAAA"),
            Err(SealError::UnknownKey(_))
        ));
    }
}
