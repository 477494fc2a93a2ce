//! Secrets at rest and the end user's access tokens.
//!
//! API secrets and access tokens are sealed with AES-256-GCM under a master
//! key the deployment supplies (`KORALA_MASTER_KEY`, 32 bytes, base64), so a
//! copy of the table alone reveals neither. Access tokens are found by their
//! SHA-256 hash.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use korala_domain::session::AccessToken;

const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error("a sealed value could not be opened (wrong master key or corrupted data)")]
    Unseal,
}

pub struct Sealer {
    cipher: Aes256Gcm,
    /// Signs the local server's file URLs, keyed by a hash of the master
    /// key: no second key to keep, and not the key itself.
    url_mac: Hmac<Sha256>,
}

impl Sealer {
    pub fn from_base64(key: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| CryptoError::BadMasterKey)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let url_key = Sha256::new()
            .chain_update(b"korala: local file URLs\n")
            .chain_update(&bytes)
            .finalize();
        let url_mac = <Hmac<Sha256> as Mac>::new_from_slice(&url_key).map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self { cipher, url_mac })
    }

    /// A new random master key, base64-encoded (for local development).
    pub fn generate_key() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        // Encryption with a valid key and a 12-byte nonce cannot fail.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, CryptoError> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > 12)
            .ok_or(CryptoError::Unseal)?;
        let (nonce, ciphertext) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Unseal)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Unseal)
    }

    /// `plaintext` sealed as bytes (a file at rest): nonce, then ciphertext.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        // Encryption with a valid key and a 12-byte nonce cannot fail.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        out
    }

    pub fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < SEALED_BYTES_OVERHEAD as usize {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Unseal)
    }

    /// A URL-safe signature of `message` (the local server's file URLs).
    pub fn sign_url(&self, message: &str) -> String {
        let mut mac = self.url_mac.clone();
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is [`sign_url`](Self::sign_url) of `message`,
    /// compared in constant time.
    pub fn verify_url(&self, message: &str, signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = self.url_mac.clone();
        mac.update(message.as_bytes());
        mac.verify_slice(&given).is_ok()
    }

    /// A new end-user access token: 256 random bits.
    pub fn new_access_token(&self) -> (String, AccessToken) {
        let token = format!("at_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let stored = AccessToken {
            hash: token_hash(&token),
            sealed: self.seal(&token),
        };
        (token, stored)
    }
}

/// What [`Sealer::seal_bytes`] adds to a file: the nonce and the tag.
pub const SEALED_BYTES_OVERHEAD: u64 = 12 + 16;

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Rejects strings that cannot be a token before any lookup.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 46
        && token.starts_with("at_")
        && token[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new API secret: 256 random bits, hex.
pub fn new_api_secret() -> String {
    format!("sk_{}", hex::encode(rand::random::<[u8; 32]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("secret");
        assert_ne!(sealed, sealer.seal("secret"), "nonces differ");
        assert_eq!(sealer.open(&sealed).unwrap(), "secret");
        let other = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(sealer.open("v1:AAAA").is_err());
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn tokens() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let (token, stored) = sealer.new_access_token();
        assert!(looks_like_token(&token), "{token}");
        assert_eq!(stored.hash, token_hash(&token));
        assert_eq!(sealer.open(&stored.sealed).unwrap(), token);
        assert!(!looks_like_token("at_short"));
    }
}
