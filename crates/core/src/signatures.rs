//! The signatures Switchyard puts on what it sends, and checks on what it receives in the same
//! schemes: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and
//! Walmart's `WM_SEC.AUTH_SIGNATURE` (hex HMAC-SHA256 of the timestamp followed by the body).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::CoreError;
use crate::secrets::random_bytes;

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hmac_sha256_verify(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    // verify_slice compares in constant time.
    mac.verify_slice(expected).is_ok()
}

pub mod standard_webhooks {
    //! <https://www.standardwebhooks.com/>: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`,
    //! keyed by the base64-decoded secret after `whsec_`.

    use super::*;

    /// A new secret in the `whsec_` form (24 random bytes).
    pub fn generate_secret() -> String {
        format!("whsec_{}", STANDARD.encode(random_bytes::<24>()))
    }

    fn key_of(secret: &str) -> Result<Vec<u8>, CoreError> {
        let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
        STANDARD.decode(b64).map_err(|_| {
            CoreError::invalid("secret", "a whsec_ secret must be base64 after the prefix")
        })
    }

    /// The `webhook-signature` entry for one secret: `v1,<base64>`.
    pub fn sign(
        secret: &str,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<String, CoreError> {
        let key = key_of(secret)?;
        let ts = timestamp.to_string();
        let mac = hmac_sha256(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
        Ok(format!("v1,{}", STANDARD.encode(mac)))
    }

    /// Checks a `webhook-signature` header (space-separated `v1,<sig>` entries) against any of the
    /// secrets. The timestamp window is the caller's to check.
    pub fn verify(
        secrets: &[&str],
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
        signature_header: &str,
    ) -> bool {
        let ts = timestamp.to_string();
        let candidates: Vec<Vec<u8>> = signature_header
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .collect();
        secrets.iter().filter_map(|s| key_of(s).ok()).any(|key| {
            candidates.iter().any(|sig| {
                hmac_sha256_verify(
                    &key,
                    &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body],
                    sig,
                )
            })
        })
    }
}

pub mod walmart {
    //! Walmart's HMAC delivery auth: `WM_SEC.AUTH_SIGNATURE` = hex HMAC-SHA256 with the
    //! `clientSecret` over `WM_SEC.TIMESTAMP` immediately followed by the body.

    use super::*;

    pub const SIGNATURE_HEADER: &str = "WM_SEC.AUTH_SIGNATURE";
    pub const TIMESTAMP_HEADER: &str = "WM_SEC.TIMESTAMP";
    pub const KEY_VERSION_HEADER: &str = "WM_SEC.KEY_VERSION";

    pub fn sign(client_secret: &str, timestamp: &str, body: &[u8]) -> String {
        hex::encode(hmac_sha256(
            client_secret.as_bytes(),
            &[timestamp.as_bytes(), body],
        ))
    }

    pub fn verify(client_secret: &str, timestamp: &str, body: &[u8], signature_hex: &str) -> bool {
        match hex::decode(signature_hex.trim()) {
            Ok(sig) => hmac_sha256_verify(
                client_secret.as_bytes(),
                &[timestamp.as_bytes(), body],
                &sig,
            ),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the Standard Webhooks project (tests/vectors/standard_webhooks.json).
    #[test]
    fn standard_webhooks_reference_vector() {
        let sig = standard_webhooks::sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(standard_webhooks::verify(
            &["whsec_other0000", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            "v1,bm90IGl0 v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ));
        assert!(!standard_webhooks::verify(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            br#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ));
    }

    #[test]
    fn generated_secrets_sign() {
        let s = standard_webhooks::generate_secret();
        assert!(s.starts_with("whsec_"));
        let sig = standard_webhooks::sign(&s, "id", 1, b"{}").unwrap();
        assert!(standard_webhooks::verify(&[&s], "id", 1, b"{}", &sig));
    }

    /// RFC 4231 test case 2 (key "Jefe"), split as timestamp + body to check the concatenation.
    #[test]
    fn walmart_hmac_is_hex_hmac_sha256_of_timestamp_then_body() {
        let sig = walmart::sign("Jefe", "what do ya want ", b"for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(walmart::verify(
            "Jefe",
            "what do ya want ",
            b"for nothing?",
            &sig
        ));
        assert!(!walmart::verify(
            "Jefe",
            "what do ya want",
            b" for nothing?x",
            &sig
        ));
    }
}
