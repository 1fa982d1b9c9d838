//! `crypto.randomUUID()` and `crypto.getRandomValues()` backed by the OS CSPRNG.

use deno_core::op2;
use rand::RngCore;

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
