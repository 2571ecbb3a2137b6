//! Authentication and authorisation for the portal.
//!
//! Callers present a JWT issued by ЕСИА (ESIA, the federal Unified Identification
//! and Authentication System) via the regional gateway, or, in the embedded mode,
//! by the portal itself through [`LocalSigner`]. A [`Verifier`] checks the token
//! against a JWK set and yields a [`Principal`]: the caller's [`Role`]s and the
//! scopes (schools, classes, caterers, ...) it may act on. Checks deny by default.
//!
//! ```no_run
//! # async fn demo() -> Result<(), auth::AuthError> {
//! use auth::{bearer_token, Role, Verifier, VerifierConfig};
//!
//! let verifier = Verifier::load(VerifierConfig {
//!     jwks_url: Some("https://idp.example/jwks.json".into()),
//!     issuer: Some("https://idp.example".into()),
//!     audience: Some("portal".into()),
//!     ..VerifierConfig::default()
//! })
//! .await?;
//! let token = bearer_token(Some("Bearer eyJ..."))?;
//! let principal = verifier.verify_refreshing(token).await?;
//! principal.require_any(&[Role::MealAdmin, Role::OperatorAdmin])?;
//! if !principal.may_see_school("school-42") {
//!     return Err(auth::AuthError::Forbidden("school-42 is outside your scope".into()));
//! }
//! # Ok(())
//! # }
//! ```

mod claims;
mod error;
mod principal;
mod role;
mod signer;
mod verifier;

pub use claims::{Audience, Claims};
pub use error::AuthError;
pub use jsonwebtoken::jwk::JwkSet;
pub use principal::Principal;
pub use role::{Role, UnknownRole};
pub use signer::{
    LocalSigner, MintRequest, JWKS_FILE, LOCAL_AUDIENCE, LOCAL_ISSUER, SIGNING_KEY_FILE,
};
pub use verifier::{bearer_token, Verifier, VerifierConfig, MIN_REFRESH_INTERVAL};
