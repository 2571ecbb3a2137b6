//! The authenticated caller of a REST request: a bearer JWT verified against the
//! configured keys. Handlers take [`Caller`] as an argument; a request without a
//! valid token never reaches them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::problem::Problem;

pub use auth::{Principal, Role};

/// The verified principal of the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl Caller {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        self.0.require_any(roles).map_err(Problem::from)
    }
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Arc<auth::Verifier>>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| Problem::internal("no token verifier configured"))?;
            let header = header.ok_or_else(|| Problem::from(auth::AuthError::MissingToken))?;
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Problem::unauthorized("the Authorization header must be `Bearer <token>`")
                })?;
            let principal = verifier.verify_refreshing(token.trim()).await?;
            tracing::Span::current().record("subject", principal.subject.as_str());
            Ok(Caller(principal))
        })
    }
}
