//! The service side of the XML gateway's calls: a SOAP operation arrives as a
//! [`ServiceCall`] whose body is the service's REST body, and is answered by
//! the same function the REST handler calls (one implementation, two doors).
//! [`CallResponder`] runs that function in a savepoint of the responder's
//! transaction: a refusal undoes everything the call wrote (all or nothing)
//! and travels back as a [`CallError`] made from the [`Problem`].

use contracts::gateway::{CallAnswer, CallError, ServiceCall};
use diesel::Connection;
use storage::DbConnection;

use crate::Problem;

impl From<Problem> for CallError {
    fn from(p: Problem) -> CallError {
        let slug = p.kind.rsplit(':').next().unwrap_or(&p.kind);
        let field = p.errors.first().map(|e| e.field.clone());
        CallError {
            code: slug.replace('-', "_").to_uppercase(),
            text: p.detail.clone().unwrap_or_else(|| p.title.clone()),
            field,
        }
    }
}

/// What a service does with a call: the REST answer's body, or the problem.
pub type CallFn =
    dyn Fn(&mut DbConnection, &ServiceCall) -> Result<serde_json::Value, Problem> + Send + Sync;

/// Answers [`ServiceCall`]s with `f`, all or nothing.
pub struct CallResponder(pub Box<CallFn>);

impl bus::Responder for CallResponder {
    fn respond(
        &self,
        conn: &mut DbConnection,
        request: &bus::Envelope,
    ) -> Result<String, bus::HandlerError> {
        let call: ServiceCall = request.decode()?;
        // The answer is made and measured inside the savepoint: one the bus
        // could not carry undoes the call's writes rather than leaving them
        // behind an error.
        let outcome = conn.transaction::<_, Refusal, _>(|c| {
            let body = (self.0)(c, &call).map_err(Refusal::Problem)?;
            let text = serde_json::to_string(&CallAnswer::Done(body))
                .map_err(|e| Refusal::Problem(Problem::internal(e)))?;
            bus::check_payload(&request.kind, &text).map_err(|e| {
                Refusal::Problem(
                    Problem::new(413, "answer-too-large", "The answer is too large")
                        .detail(format!("{e}; nothing was applied: ask for less at once")),
                )
            })?;
            Ok(text)
        });
        let answer = match outcome {
            Ok(text) => return Ok(text),
            Err(Refusal::Problem(p)) if p.status >= 500 => {
                // The service's own failure: the gateway answers FAILURE and the
                // caller may ask again.
                return Err(bus::HandlerError::Transient(p.detail.unwrap_or(p.title)));
            }
            Err(Refusal::Problem(p)) => CallAnswer::Refused(p.into()),
            Err(Refusal::Db(e)) => return Err(bus::HandlerError::Transient(e.to_string())),
        };
        serde_json::to_string(&answer).map_err(|e| bus::HandlerError::Permanent(e.to_string()))
    }
}

/// Why the savepoint rolled back.
enum Refusal {
    Problem(Problem),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Refusal::Db(e)
    }
}

/// The call's body as the REST handler's body type; a body that does not fit
/// is refused naming what is wrong.
pub fn body<T: serde::de::DeserializeOwned>(call: &ServiceCall) -> Result<T, Problem> {
    serde_json::from_value(call.body.clone()).map_err(|e| Problem::invalid("body", e.to_string()))
}

/// A Problem answers a call that names no operation the service has.
pub fn unknown(call: &ServiceCall) -> Problem {
    Problem::not_found(format!("no operation {}", call.operation))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_becomes_a_code_a_text_and_the_field() {
        let e: CallError = Problem::invalid("complexes[1].dishes", "no dish d-9").into();
        assert_eq!(e.code, "INVALID_REQUEST");
        assert_eq!(e.field.as_deref(), Some("complexes[1].dishes"));
        assert!(e.text.contains("no dish d-9"));
        let c: CallError = Problem::conflict("charge-has-payments", "paid").into();
        assert_eq!((c.code.as_str(), c.field), ("CHARGE_HAS_PAYMENTS", None));
    }
}
