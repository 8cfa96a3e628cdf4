//! Secrets at rest: every credential and signing secret is sealed with XChaCha20-Poly1305 under a
//! key derived from the master key, with a fresh random nonce per value. Client secrets, which
//! Switchyard only ever checks, are kept as hashes instead.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::CoreError;

const SEALED_PREFIX: &str = "sy1:";
const NONCE_LEN: usize = 24;

/// Encrypts and decrypts secret strings. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box whose key is derived from the master key for this one purpose.
    pub fn new(master_key: &[u8]) -> Self {
        let key = derive_key(master_key, "switchyard/secrets-at-rest/v1");
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Seals a plaintext into `sy1:<base64(nonce || ciphertext)>`.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
        let nonce = XNonce::from(nonce_bytes);
        // Encryption into a Vec cannot fail for inputs below the AEAD's enormous size limit.
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value made by [`SecretBox::seal`] with the same master key.
    pub fn open(&self, sealed: &str) -> Result<String, CoreError> {
        let b64 = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CoreError::Decrypt)?;
        let bytes = STANDARD.decode(b64).map_err(|_| CoreError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(CoreError::Decrypt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| CoreError::Decrypt)?;
        let plain = self
            .cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| CoreError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CoreError::Decrypt)
    }
}

/// A 32-byte key for one purpose, derived from the master key with HMAC-SHA256.
pub fn derive_key(master_key: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(master_key)
        .expect("HMAC takes keys of any length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not something a webhook hub can recover from.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}

/// A random URL-safe token of `N` random bytes.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// A number in [0, 1) for jitter.
pub fn random_unit() -> f64 {
    let n = u64::from_le_bytes(random_bytes::<8>());
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// Hex SHA-256 of a client secret: what the store keeps.
pub fn hash_client_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented client secret with a stored hash in constant time.
pub fn client_secret_matches(secret: &str, stored_hash: &str) -> bool {
    let presented = hash_client_secret(secret);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let b = SecretBox::new(b"master key for tests");
        let sealed = b.seal("hunter2-password");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, b.seal("hunter2-password"), "fresh nonce per value");
        assert_eq!(b.open(&sealed).unwrap(), "hunter2-password");
    }

    #[test]
    fn a_different_master_key_or_a_damaged_value_cannot_open() {
        let sealed = SecretBox::new(b"key one").seal("secret");
        assert!(SecretBox::new(b"key two").open(&sealed).is_err());
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push('A');
        assert!(SecretBox::new(b"key one").open(&damaged).is_err());
        assert!(SecretBox::new(b"key one").open("plain").is_err());
    }

    #[test]
    fn client_secrets_are_checked_against_their_hash() {
        let h = hash_client_secret("s3cret");
        assert!(client_secret_matches("s3cret", &h));
        assert!(!client_secret_matches("s3cre", &h));
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}

/// Bearer tokens: `sy.<base64url(payload)>.<base64url(HMAC-SHA256)>`, stateless so that any node
/// sharing the master key accepts them.
pub mod tokens {
    use super::*;

    type HmacSha256 = hmac::Hmac<Sha256>;

    fn mac(key: &[u8; 32], payload: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        mac.update(payload);
        mac
    }

    /// Signs a payload into a token.
    pub fn sign(key: &[u8; 32], payload: &str) -> String {
        let tag = mac(key, payload.as_bytes()).finalize().into_bytes();
        format!(
            "sy.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The payload of a token this key signed, or `None`.
    pub fn verify(key: &[u8; 32], token: &str) -> Option<String> {
        let mut parts = token.strip_prefix("sy.")?.split('.');
        let payload = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        mac(key, &payload).verify_slice(&tag).ok()?;
        String::from_utf8(payload).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_verify_only_with_their_key_and_unaltered() {
            let key = derive_key(b"m", "t");
            let token = sign(&key, r#"{"c":"id","e":1}"#);
            assert_eq!(verify(&key, &token).as_deref(), Some(r#"{"c":"id","e":1}"#));
            assert_eq!(verify(&derive_key(b"other", "t"), &token), None);
            let forged = token.replacen("sy.", "sy.e", 1);
            assert_eq!(verify(&key, &forged), None);
            assert_eq!(verify(&key, "garbage"), None);
        }
    }
}
