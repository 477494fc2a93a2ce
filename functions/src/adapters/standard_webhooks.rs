//! Signing per the Standard Webhooks specification, so partners verify our
//! deliveries with its off-the-shelf libraries (`standardwebhooks`, `svix`):
//! `webhook-id` (the event id, stable across retries), `webhook-timestamp`
//! (unix seconds) and `webhook-signature`, `v1,<base64 HMAC-SHA256(key,
//! "<id>.<timestamp>.<body>")>`, where the key is the base64-decoded part of
//! the `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a webhook signing secret is `whsec_` followed by base64")]
pub struct BadSecret;

/// An endpoint's signing key.
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// A new secret (192 random bits), as the partner sees it once.
    pub fn generate() -> String {
        format!("{PREFIX}{}", STANDARD.encode(rand::random::<[u8; 24]>()))
    }

    pub fn parse(secret: &str) -> Result<Self, BadSecret> {
        let key = STANDARD
            .decode(secret.strip_prefix(PREFIX).ok_or(BadSecret)?)
            .map_err(|_| BadSecret)?;
        if key.is_empty() { Err(BadSecret) } else { Ok(Self(key)) }
    }

    /// The `webhook-signature` header value for this delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).map_err(|_| BadSecret)?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
    }

    /// HMAC-SHA256 of `message` under this key: a value only the holder of
    /// the key can compute or match.
    pub fn digest(&self, message: &[u8]) -> Result<[u8; 32], BadSecret> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).map_err(|_| BadSecret)?;
        mac.update(message);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The three headers of a signed delivery.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<[(&'static str, String); 3], BadSecret> {
        Ok([
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.sign(id, timestamp, body)?),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example: secret, message id, timestamp and
    /// payload, and the signature it documents for them.
    #[test]
    fn matches_the_specification_example() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert!(SigningSecret::parse(&SigningSecret::generate()).is_ok());
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(),
            Some(BadSecret)
        );
        assert_eq!(SigningSecret::parse("whsec_!!!").err(), Some(BadSecret));
        assert_eq!(SigningSecret::parse("whsec_").err(), Some(BadSecret));
    }
}
