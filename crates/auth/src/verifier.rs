//! Token verification against a JWK set from a file, a URL or memory.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::error::from_jwt;
use crate::{AuthError, Claims, Principal};

/// The shortest time between two key refetches triggered by unknown key ids, so a
/// stream of tokens with made-up `kid`s cannot hammer the identity provider.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Timeout for fetching a JWK set over HTTP.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// RSA moduli shorter than this many bytes (2048 bits) are ignored as too weak.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Where the verifier gets its keys and what it checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifierConfig {
    /// A JWK set file (e.g. the `jwks.json` written by [`crate::LocalSigner`]).
    pub jwks_path: Option<PathBuf>,
    /// A JWK set URL (the identity provider's `jwks_uri`).
    pub jwks_url: Option<String>,
    /// Required `iss`; when unset any issuer is accepted.
    pub issuer: Option<String>,
    /// Required `aud` member; when unset `aud` is not checked.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Defaults to 60.
    pub leeway_secs: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            jwks_path: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway_secs: 60,
        }
    }
}

/// A verification key accepted from a JWK set.
#[derive(Debug)]
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The usable keys of one JWK set.
#[derive(Debug)]
struct KeyRing {
    keys: Vec<VerifyKey>,
}

impl KeyRing {
    /// Keeps the RS256 and ES256 signing keys; fails if there are none.
    fn from_set(set: &JwkSet) -> Result<Self, AuthError> {
        let keys: Vec<VerifyKey> = set.keys.iter().filter_map(usable_key).collect();
        if keys.is_empty() {
            return Err(AuthError::KeySource(
                "the JWK set has no usable RS256 or ES256 signing key".into(),
            ));
        }
        Ok(KeyRing { keys })
    }

    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyKey, AuthError> {
        match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|key| key.kid.as_deref() == Some(kid))
                    .ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))?;
                if key.alg != alg {
                    return Err(AuthError::Malformed(format!(
                        "token algorithm {alg:?} does not match key {kid:?}, which is {:?}",
                        key.alg
                    )));
                }
                Ok(key)
            }
            None => {
                let mut candidates = self.keys.iter().filter(|key| key.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(AuthError::UnknownKey(String::new())),
                    (Some(_), Some(_)) => Err(AuthError::Malformed(format!(
                        "token has no kid and several {alg:?} keys could have signed it"
                    ))),
                }
            }
        }
    }
}

/// Turns a JWK into a verification key, or `None` for keys we must not or
/// cannot use: encryption keys, HMAC secrets, other curves and algorithms, bad
/// points, short RSA moduli.
fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(params), None | Some(KeyAlgorithm::ES256))
            if params.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let sound = match (alg, key.kind()) {
        // jsonwebtoken does not check the point when building the key; do it here so
        // a bad key is dropped at load time rather than failing every token.
        (Algorithm::ES256, _) => p256::PublicKey::from_sec1_bytes(key.as_bytes()).is_ok(),
        (_, jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. }) => {
            let significant = n.iter().skip_while(|byte| **byte == 0).count();
            significant >= MIN_RSA_MODULUS_BYTES
        }
        _ => false,
    };
    sound.then(|| VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// Parses a JWK set document key by key, skipping keys this version of
/// `jsonwebtoken` cannot represent, so one exotic key in an identity provider's
/// set does not lock everybody out.
fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, AuthError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes)
        .map_err(|e| AuthError::KeySource(format!("JWK set is not valid JSON: {e}")))?;
    let keys = raw
        .keys
        .into_iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
        .collect();
    Ok(JwkSet { keys })
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Url {
        url: String,
        client: reqwest::Client,
    },
}

impl Source {
    async fn fetch(&self) -> Result<KeyRing, AuthError> {
        let bytes = match self {
            // The file is small and read rarely (startup, rotation), so blocking briefly
            // is cheaper than requiring tokio's fs feature.
            Source::File(path) => std::fs::read(path).map_err(|e| {
                AuthError::KeySource(format!("cannot read JWK set {}: {e}", path.display()))
            })?,
            Source::Url { url, client } => {
                let fail = |e: reqwest::Error| {
                    AuthError::KeySource(format!("cannot fetch JWK set from {url}: {e}"))
                };
                client
                    .get(url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(fail)?
                    .bytes()
                    .await
                    .map_err(fail)?
                    .to_vec()
            }
        };
        KeyRing::from_set(&parse_jwks(&bytes)?)
    }
}

/// Verifies bearer tokens and turns them into [`Principal`]s.
///
/// Accepts RS256 and ES256 only; `none`, HMAC and every other algorithm are
/// refused, as is a token whose algorithm differs from its key's. Keys are chosen by
/// the token's `kid`; a token without `kid` is accepted only when exactly one key of
/// its algorithm is known. Share one verifier (e.g. in an `Arc`) across requests.
#[derive(Debug)]
pub struct Verifier {
    keys: RwLock<Arc<KeyRing>>,
    source: Option<Source>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
    /// When an unknown `kid` last caused a refetch; the async mutex also makes
    /// concurrent callers wait for one refetch instead of each starting their own.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Verifier {
    /// Loads keys from exactly one of `jwks_path` and `jwks_url` (fetched now).
    pub async fn load(config: VerifierConfig) -> Result<Self, AuthError> {
        let source = match (config.jwks_path, config.jwks_url) {
            (Some(path), None) => Source::File(path),
            (None, Some(url)) => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| AuthError::KeySource(format!("cannot build HTTP client: {e}")))?;
                Source::Url { url, client }
            }
            (None, None) => {
                return Err(AuthError::KeySource(
                    "no key source configured: set jwks_path or jwks_url".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(AuthError::KeySource(
                    "both jwks_path and jwks_url are set; configure one".into(),
                ))
            }
        };
        let ring = source.fetch().await?;
        Ok(Self::build(
            ring,
            Some(source),
            config.issuer,
            config.audience,
            config.leeway_secs,
        ))
    }

    /// A verifier over a fixed key set, e.g. [`crate::LocalSigner::jwks`]. It never
    /// refetches. `issuer`/`audience`, when given, are required; `leeway_secs` is
    /// the clock skew allowed on `exp` and `nbf`.
    ///
    /// Unusable keys are skipped, as with [`Verifier::load`]; if none is left, every
    /// token fails with `UnknownKey` (see [`Verifier::key_count`]).
    pub fn from_jwks(
        jwks: JwkSet,
        issuer: Option<String>,
        audience: Option<String>,
        leeway_secs: u64,
    ) -> Self {
        let ring = KeyRing {
            keys: jwks.keys.iter().filter_map(usable_key).collect(),
        };
        Self::build(ring, None, issuer, audience, leeway_secs)
    }

    fn build(
        ring: KeyRing,
        source: Option<Source>,
        issuer: Option<String>,
        audience: Option<String>,
        leeway_secs: u64,
    ) -> Self {
        Verifier {
            keys: RwLock::new(Arc::new(ring)),
            source,
            issuer,
            audience,
            leeway_secs,
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// The key ids currently known (keys without `kid` are not listed).
    pub fn key_ids(&self) -> Vec<String> {
        self.current()
            .keys
            .iter()
            .filter_map(|key| key.kid.clone())
            .collect()
    }

    /// How many usable keys are cached, with or without `kid`.
    pub fn key_count(&self) -> usize {
        self.current().keys.len()
    }

    /// Verifies `token` (the bare JWT, without `Bearer `) against the cached keys:
    /// signature, `exp`/`nbf` with leeway, `iss` and `aud` when configured, and a
    /// non-empty `roles` claim.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let header = decode_header(token)
            .map_err(|e| AuthError::Malformed(format!("unreadable token header: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Malformed(format!(
                "algorithm {:?} is not accepted; use RS256 or ES256",
                header.alg
            )));
        }

        let ring = self.current();
        let key = ring.select(header.kid.as_deref(), header.alg)?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // jsonwebtoken rejects any `aud` when none is expected; we only skip the check.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let data = decode::<Claims>(token, &key.key, &validation).map_err(|e| from_jwt(&e))?;
        Principal::try_from(data.claims)
    }

    /// Like [`Verifier::verify`], but when the token names an unknown key and the
    /// keys come from a file or URL, reloads them once (keys rotate) and retries.
    /// Reloads triggered this way happen at most once per [`MIN_REFRESH_INTERVAL`].
    pub async fn verify_refreshing(&self, token: &str) -> Result<Principal, AuthError> {
        match self.verify(token) {
            Err(AuthError::UnknownKey(_)) if self.source.is_some() => {
                self.refresh_rate_limited().await?;
                self.verify(token)
            }
            other => other,
        }
    }

    /// Reloads the keys from the configured file or URL now. On failure the old
    /// keys stay in use. A verifier built with [`Verifier::from_jwks`] has nothing
    /// to reload and returns `Ok`.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.last_refresh.lock().await;
        *last = Some(Instant::now());
        self.reload().await
    }

    async fn refresh_rate_limited(&self) -> Result<(), AuthError> {
        let mut last = self.last_refresh.lock().await;
        if matches!(*last, Some(at) if at.elapsed() < MIN_REFRESH_INTERVAL) {
            // Either a concurrent caller just reloaded (the retry will see its keys)
            // or we are rate limited (the retry fails with UnknownKey again).
            return Ok(());
        }
        // Counted before fetching, so a failing identity provider is not retried
        // on every request either.
        *last = Some(Instant::now());
        self.reload().await
    }

    async fn reload(&self) -> Result<(), AuthError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let ring = source.fetch().await?;
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    fn current(&self) -> Arc<KeyRing> {
        // Writers only swap a whole Arc, so a poisoned lock still holds a usable ring.
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Extracts the token from an `Authorization` header value (`Bearer <jwt>`, scheme
/// case-insensitive). `None` or blank gives `MissingToken`; another scheme gives
/// `Malformed`.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(AuthError::MissingToken);
    }
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "the Authorization header is not a Bearer token".into(),
        ));
    }
    match token.trim() {
        "" => Err(AuthError::MissingToken),
        token => Ok(token),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("  ")), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken));
        assert!(matches!(
            bearer_token(Some("Basic dXNlcjpwYXNz")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let set = parse_jwks(
            br#"{"keys":[
                {"kty":"oct","k":"c2VjcmV0","alg":"HS256"},
                {"kty":"EC","crv":"P-256","use":"enc","x":"AA","y":"AA"},
                {"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"bad-point"},
                {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"short"},
                {"kty":"weird","kid":"unparseable"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            set.keys.len(),
            4,
            "the unparseable key is dropped while parsing"
        );
        assert!(matches!(
            KeyRing::from_set(&set),
            Err(AuthError::KeySource(_))
        ));
    }

    #[test]
    fn config_defaults() {
        let config: VerifierConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, VerifierConfig::default());
        assert_eq!(config.leeway_secs, 60);
    }

    #[tokio::test]
    async fn load_needs_exactly_one_source() {
        let none = Verifier::load(VerifierConfig::default()).await;
        assert!(matches!(none, Err(AuthError::KeySource(_))));
        let both = Verifier::load(VerifierConfig {
            jwks_path: Some("/nonexistent".into()),
            jwks_url: Some("http://127.0.0.1:1/".into()),
            ..VerifierConfig::default()
        })
        .await;
        assert!(matches!(both, Err(AuthError::KeySource(_))));
    }
}
