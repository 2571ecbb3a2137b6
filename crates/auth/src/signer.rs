//! Local token issuing for the embedded mode, where the portal is its own identity
//! provider instead of relying on ЕСИА.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::SecretKey;
use rand_core::OsRng;

use crate::{Audience, AuthError, Claims, Role};

/// File name of the private key (PKCS#8 PEM) inside the signer's directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// File name of the public JWK set inside the signer's directory.
pub const JWKS_FILE: &str = "jwks.json";
/// Issuer written by [`MintRequest::new`].
pub const LOCAL_ISSUER: &str = "portal-local";

/// The `aud` of the platform's tokens unless configured otherwise.
pub const LOCAL_AUDIENCE: &str = "portal";

/// What to put into a locally minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// `sub`.
    pub subject: String,
    /// `roles`; must not be empty.
    pub roles: Vec<Role>,
    /// School ids.
    pub schools: Vec<String>,
    /// Class ids.
    pub classes: Vec<String>,
    /// Meal organizer (caterer) ids.
    pub organizers: Vec<String>,
    /// Municipality ids.
    pub municipalities: Vec<String>,
    /// Bank ids.
    pub banks: Vec<String>,
    /// Student account ids.
    pub children: Vec<String>,
    /// Information system participant code.
    pub participant: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Lifetime from now; negative values give an already expired token.
    pub ttl: Duration,
    /// `iss`.
    pub issuer: String,
    /// `aud`, omitted when `None`.
    pub audience: Option<String>,
}

impl MintRequest {
    /// A request with no scopes, issuer [`LOCAL_ISSUER`], audience
    /// [`LOCAL_AUDIENCE`] and a 12 h lifetime.
    pub fn new(subject: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        MintRequest {
            subject: subject.into(),
            roles: roles.into_iter().collect(),
            schools: Vec::new(),
            classes: Vec::new(),
            organizers: Vec::new(),
            municipalities: Vec::new(),
            banks: Vec::new(),
            children: Vec::new(),
            participant: None,
            name: None,
            ttl: Duration::hours(12),
            issuer: LOCAL_ISSUER.to_owned(),
            audience: Some(LOCAL_AUDIENCE.to_owned()),
        }
    }
}

/// An ES256 (P-256) signing key kept in a directory, with its public JWK set.
///
/// The key id is the RFC 7638 SHA-256 thumbprint of the public key, so it is the
/// same whenever the same key is loaded.
pub struct LocalSigner {
    key: EncodingKey,
    kid: String,
    jwk: Jwk,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn io_error(what: &str, path: &Path, err: &io::Error) -> AuthError {
    AuthError::KeySource(format!("cannot {what} {}: {err}", path.display()))
}

impl LocalSigner {
    /// Loads `dir/signing-key.pem`, or generates a new key there on first use (mode
    /// 0600 on unix), and makes sure `dir/jwks.json` holds its public key.
    pub fn load_or_create(dir: &Path) -> Result<LocalSigner, AuthError> {
        fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, &e))?;
        let key_path = dir.join(SIGNING_KEY_FILE);
        let secret = match fs::read_to_string(&key_path) {
            Ok(pem) => parse_secret(&pem, &key_path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_secret(dir, &key_path)?,
            Err(e) => return Err(io_error("read", &key_path, &e)),
        };
        let signer = LocalSigner::from_secret(&secret)?;
        signer.write_jwks(dir)?;
        Ok(signer)
    }

    fn from_secret(secret: &SecretKey) -> Result<LocalSigner, AuthError> {
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| AuthError::KeySource(format!("cannot encode signing key: {e}")))?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| AuthError::KeySource(format!("cannot use signing key: {e}")))?;
        let mut jwk: Jwk = serde_json::from_str(&secret.public_key().to_jwk_string())
            .map_err(|e| AuthError::KeySource(format!("cannot describe public key: {e}")))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(LocalSigner { key, kid, jwk })
    }

    /// Rewrites `jwks.json` unless it already holds exactly our public key.
    fn write_jwks(&self, dir: &Path) -> Result<(), AuthError> {
        let path = dir.join(JWKS_FILE);
        let wanted = self.jwks();
        let current = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<JwkSet>(&bytes).ok());
        if current.as_ref() == Some(&wanted) {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&wanted)
            .map_err(|e| AuthError::KeySource(format!("cannot encode JWK set: {e}")))?;
        // Write then rename, so a verifier reading the file never sees half of it.
        let tmp = temp_path(dir, JWKS_FILE);
        fs::write(&tmp, json).map_err(|e| io_error("write", &tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error("replace", &path, &e)
        })
    }

    /// The key id put into every minted token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK set, for [`crate::Verifier::from_jwks`] or to serve.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// Signs a token for `request`. Fails with `NoRoles` if it has no roles, since
    /// such a token would be refused anyway.
    pub fn mint(&self, request: &MintRequest) -> Result<String, AuthError> {
        if request.roles.is_empty() {
            return Err(AuthError::NoRoles);
        }
        let now = Utc::now().timestamp();
        let exp = now.saturating_add(request.ttl.num_seconds());
        let claims = Claims {
            sub: request.subject.clone(),
            iss: request.issuer.clone(),
            aud: request.audience.clone().map(Audience::One),
            // Times before 1970 cannot occur for `now`; a very negative ttl clamps to 0.
            exp: u64::try_from(exp).unwrap_or(0),
            iat: u64::try_from(now).unwrap_or(0),
            nbf: None,
            jti: Some(uuid::Uuid::new_v4().to_string()),
            roles: request.roles.clone(),
            schools: request.schools.clone(),
            classes: request.classes.clone(),
            organizers: request.organizers.clone(),
            municipalities: request.municipalities.clone(),
            banks: request.banks.clone(),
            children: request.children.clone(),
            participant: request.participant.clone(),
            name: request.name.clone(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::KeySource(format!("cannot sign token: {e}")))
    }
}

fn parse_secret(pem: &str, path: &Path) -> Result<SecretKey, AuthError> {
    SecretKey::from_pkcs8_pem(pem).map_err(|e| {
        AuthError::KeySource(format!(
            "{} is not a PKCS#8 P-256 private key: {e}",
            path.display()
        ))
    })
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

/// Generates a key and publishes it at `key_path` atomically and without
/// overwriting: if another process got there first, its key is used instead.
fn create_secret(dir: &Path, key_path: &Path) -> Result<SecretKey, AuthError> {
    let secret = SecretKey::random(&mut OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuthError::KeySource(format!("cannot encode signing key: {e}")))?;

    let tmp = temp_path(dir, SIGNING_KEY_FILE);
    let written = write_private(&tmp, pem.as_bytes());
    // A hard link fails if the target exists, unlike rename, so two processes
    // starting together cannot replace each other's key.
    let linked = written.and_then(|()| fs::hard_link(&tmp, key_path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let pem = fs::read_to_string(key_path).map_err(|e| io_error("read", key_path, &e))?;
            parse_secret(&pem, key_path)
        }
        Err(e) => Err(io_error("write", key_path, &e)),
    }
}

/// Writes a new file readable by the owner only.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation so the key is never readable by others, not even briefly.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The creation mode is filtered by the umask; make it exactly 0600.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()
}
