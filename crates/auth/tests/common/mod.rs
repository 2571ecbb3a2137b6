//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};

use auth::{LocalSigner, Verifier, SIGNING_KEY_FILE};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "auth-test-{label}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A signer in its own temp dir; the dir lives as long as the returned guard.
pub fn signer(label: &str) -> (TempDir, LocalSigner) {
    let dir = TempDir::new(label);
    let signer = LocalSigner::load_or_create(dir.path()).unwrap();
    (dir, signer)
}

pub fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap()
}

/// Claims that pass a verifier configured with issuer "portal-local" and no audience.
pub fn base_claims() -> Value {
    json!({
        "sub": "user-1",
        "iss": "portal-local",
        "iat": now(),
        "exp": now() + 600,
        "roles": ["parent"],
    })
}

/// Signs arbitrary JSON claims with the signer's private key read from `dir`.
pub fn sign_raw(dir: &Path, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(dir.join(SIGNING_KEY_FILE)).unwrap();
    let key = EncodingKey::from_ec_pem(&pem).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

pub fn verifier_for(signer: &LocalSigner) -> Verifier {
    Verifier::from_jwks(signer.jwks(), Some("portal-local".into()), None, 60)
}

/// Unpadded base64url, for hand-made tokens.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Joins a JSON header and payload into `header.payload.` plus `signature`.
pub fn hand_made(header: &Value, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes()),
        signature
    )
}
