//! The `crypto` global's host side: the OS CSPRNG, and the digests and HMAC behind
//! `crypto.subtle`. ring is already linked for TLS, so Web Crypto costs no new code.

use deno_core::op2;
use rand::RngCore;
use ring::{digest, hmac};

/// A random (version 4) UUID.
#[op2]
#[string]
pub fn op_eddy_crypto_random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Fills `buf` with random bytes (the JS side caps the length at 65536).
#[op2(fast)]
pub fn op_eddy_crypto_fill_random(#[buffer] buf: &mut [u8]) {
    rand::rngs::OsRng.fill_bytes(buf);
}

/// Why a Web Crypto op refused; the JS side has already normalised names, so reaching
/// this is a bug in the caller, reported as a TypeError rather than a crash.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
#[class(type)]
#[error("unsupported hash algorithm {0:?}")]
pub struct UnsupportedHash(String);

fn digest_algorithm(name: &str) -> Result<&'static digest::Algorithm, UnsupportedHash> {
    match name {
        "SHA-1" => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        "SHA-256" => Ok(&digest::SHA256),
        "SHA-384" => Ok(&digest::SHA384),
        "SHA-512" => Ok(&digest::SHA512),
        other => Err(UnsupportedHash(other.to_owned())),
    }
}

fn hmac_key(hash: &str, key: &[u8]) -> Result<hmac::Key, UnsupportedHash> {
    let algorithm = match hash {
        "SHA-1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "SHA-256" => hmac::HMAC_SHA256,
        "SHA-384" => hmac::HMAC_SHA384,
        "SHA-512" => hmac::HMAC_SHA512,
        other => return Err(UnsupportedHash(other.to_owned())),
    };
    Ok(hmac::Key::new(algorithm, key))
}

/// `crypto.subtle.digest`: the hash of `data`.
#[op2]
#[arraybuffer]
pub fn op_eddy_crypto_digest(#[string] hash: &str, #[buffer] data: &[u8]) -> Result<Vec<u8>, UnsupportedHash> {
    digest_bytes(hash, data)
}

fn digest_bytes(hash: &str, data: &[u8]) -> Result<Vec<u8>, UnsupportedHash> {
    Ok(digest::digest(digest_algorithm(hash)?, data).as_ref().to_vec())
}

/// `crypto.subtle.sign` with an HMAC key.
#[op2]
#[arraybuffer]
pub fn op_eddy_crypto_hmac_sign(
    #[string] hash: &str,
    #[buffer] key: &[u8],
    #[buffer] data: &[u8],
) -> Result<Vec<u8>, UnsupportedHash> {
    hmac_sign(hash, key, data)
}

fn hmac_sign(hash: &str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, UnsupportedHash> {
    Ok(hmac::sign(&hmac_key(hash, key)?, data).as_ref().to_vec())
}

/// `crypto.subtle.verify` with an HMAC key, compared in constant time.
#[op2(fast)]
pub fn op_eddy_crypto_hmac_verify(
    #[string] hash: &str,
    #[buffer] key: &[u8],
    #[buffer] data: &[u8],
    #[buffer] signature: &[u8],
) -> Result<bool, UnsupportedHash> {
    hmac_verify(hash, key, data, signature)
}

fn hmac_verify(hash: &str, key: &[u8], data: &[u8], signature: &[u8]) -> Result<bool, UnsupportedHash> {
    Ok(hmac::verify(&hmac_key(hash, key)?, data, signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn digests_match_fips_180_vectors_for_abc() {
        let cases = [
            ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "SHA-256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (hash, expected) in cases {
            assert_eq!(hex(&digest_bytes(hash, b"abc").unwrap()), expected);
        }
        assert!(digest_bytes("MD5", b"abc").is_err());
    }

    #[test]
    fn hmac_sign_and_verify_agree_and_reject_a_changed_byte() {
        let mac = hmac_sign("SHA-256", b"key", b"data").unwrap();
        assert!(hmac_verify("SHA-256", b"key", b"data", &mac).unwrap());
        let mut wrong = mac.clone();
        wrong[0] ^= 1;
        assert!(!hmac_verify("SHA-256", b"key", b"data", &wrong).unwrap());
        assert!(!hmac_verify("SHA-256", b"key", b"data", &mac[..16]).unwrap());
    }
}
