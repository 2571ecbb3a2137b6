//! The one error type of the crate.

use jsonwebtoken::errors::{Error as JwtError, ErrorKind};

/// Why a caller could not be authenticated or authorised.
///
/// [`AuthError::status`] gives the HTTP status to answer with. The messages are
/// safe to show to the caller: they never include key material or claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token was presented.
    #[error("authentication required: no bearer token was presented")]
    MissingToken,
    /// The token is not a well-formed JWT, uses an algorithm we do not accept,
    /// or its claims have the wrong shape (unknown role, missing `exp`, ...).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not match the token's contents and key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past, beyond the configured leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future, beyond the configured leeway.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is missing or is not the configured issuer.
    #[error("token was issued by an untrusted issuer")]
    WrongIssuer,
    /// `aud` is missing or does not name this service.
    #[error("token is not intended for this service (audience mismatch)")]
    WrongAudience,
    /// The token names a key id (`kid`) that is not in the key set; empty when
    /// the token has no `kid` and no key of its algorithm is known.
    #[error("token is signed with an unknown key (kid {0:?})")]
    UnknownKey(String),
    /// The token is valid but carries no roles, so it grants nothing.
    #[error("token carries no roles")]
    NoRoles,
    /// The caller is authenticated but may not do this.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// Keys could not be loaded, fetched or stored.
    #[error("signing keys are unavailable: {0}")]
    KeySource(String),
}

impl AuthError {
    /// The HTTP status for this error: 401 when the caller is not authenticated,
    /// 403 when authenticated but not allowed, 503 when our key source failed.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Forbidden(_) => 403,
            AuthError::KeySource(_) => 503,
            AuthError::MissingToken
            | AuthError::Malformed(_)
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::UnknownKey(_)
            | AuthError::NoRoles => 401,
        }
    }
}

/// Maps a `jsonwebtoken` failure from decoding a token.
pub(crate) fn from_jwt(err: &JwtError) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::Malformed(format!("required claim {claim:?} is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::Malformed(format!("claim {claim:?} has the wrong format"))
        }
        ErrorKind::InvalidAlgorithm => {
            AuthError::Malformed("token algorithm does not match its key".into())
        }
        // A key that parses but cannot verify (e.g. a bad curve point) is ours to fix.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            AuthError::KeySource(format!("verification key is unusable: {err}"))
        }
        _ => AuthError::Malformed(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(AuthError::MissingToken.status(), 401);
        assert_eq!(AuthError::Expired.status(), 401);
        assert_eq!(AuthError::UnknownKey("k".into()).status(), 401);
        assert_eq!(AuthError::NoRoles.status(), 401);
        assert_eq!(AuthError::Forbidden("x".into()).status(), 403);
        assert_eq!(AuthError::KeySource("x".into()).status(), 503);
    }
}
