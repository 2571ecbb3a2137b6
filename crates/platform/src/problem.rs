//! Errors for REST callers as `application/problem+json` (RFC 9457), naming the
//! field at fault.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// JSON pointer-like path of the field, e.g. `items[2].amount`.
    pub field: String,
    pub message: String,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A URI naming the problem type (stable, documented).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The trace id of the request, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl Problem {
    pub fn new(status: u16, kind: &str, title: &str) -> Problem {
        Problem {
            kind: format!("urn:problem:{kind}"),
            title: title.to_string(),
            status,
            detail: None,
            errors: Vec::new(),
            trace_id: telemetry::trace_id(&tracing::Span::current()),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: &str, message: impl Into<String>) -> Problem {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
        self
    }

    /// `Ok` when `id` is a plain identifier ([`primitives::is_plain_id`]),
    /// else 400 naming `field` and the form it must have.
    pub fn require_plain_id(field: &str, id: &str) -> Result<(), Problem> {
        if primitives::is_plain_id(id) {
            Ok(())
        } else {
            Err(Problem::invalid(
                field,
                "1–64 characters: latin letters, digits, '-', '_', '.'",
            ))
        }
    }

    /// `Ok` when `value` is text a person typed: not blank, and free of
    /// control characters (a NUL or an escape sequence in a child's name would
    /// reach printed requests, registries and other systems). Line breaks and
    /// tabs are text.
    pub fn require_text(field: &str, value: &str) -> Result<(), Problem> {
        if value.trim().is_empty() {
            return Err(Problem::invalid(field, "must not be empty"));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Problem::invalid(
                field,
                "must not contain control characters",
            ));
        }
        Ok(())
    }

    /// 400 for one invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Problem {
        let message = message.into();
        Problem::new(400, "invalid-request", "The request is invalid")
            .detail(format!("{field}: {message}"))
            .field(field, message)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(401, "unauthorized", "Authentication required").detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(403, "forbidden", "Not allowed").detail(detail)
    }

    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(404, "not-found", "Not found").detail(what)
    }

    pub fn conflict(kind: &str, detail: impl Into<String>) -> Problem {
        Problem::new(409, kind, "Conflict with the current state").detail(detail)
    }

    pub fn unprocessable(kind: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem::new(422, kind, title).detail(detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(503, "unavailable", "Temporarily unavailable").detail(detail)
    }

    /// 500 that hides the cause from the caller and logs it.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!(%cause, "internal error");
        Problem::new(500, "internal", "Internal error")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("application/problem+json")
            .json(self)
    }
}

impl From<auth::AuthError> for Problem {
    fn from(e: auth::AuthError) -> Self {
        match e.status() {
            403 => Problem::forbidden(e.to_string()),
            503 => Problem::unavailable(e.to_string()),
            _ => Problem::unauthorized(e.to_string()),
        }
    }
}

impl From<storage::StorageError> for Problem {
    fn from(e: storage::StorageError) -> Self {
        match e {
            storage::StorageError::Pool(_) => Problem::unavailable("the database does not answer"),
            other => Problem::internal(other),
        }
    }
}

impl From<diesel::result::Error> for Problem {
    fn from(e: diesel::result::Error) -> Self {
        Problem::from(storage::StorageError::from(e))
    }
}

/// JSON bodies that do not parse answer with a problem naming the field.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(4 * 1024 * 1024)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError;
            if let JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } = err
            {
                return Problem::new(413, "payload-too-large", "The request body is too large")
                    .detail(format!("a JSON body may be at most {} KiB", limit / 1024))
                    .into();
            }
            let detail = err.to_string();
            Problem::new(
                400,
                "malformed-json",
                "The request body is not valid JSON for this operation",
            )
            .detail(detail)
            .into()
        })
}

/// Query strings that do not parse answer the same way.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        Problem::new(400, "invalid-query", "The query string is invalid")
            .detail(err.to_string())
            .into()
    })
}

/// Path segments that do not parse answer the same way.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|err, _req| {
        Problem::new(400, "invalid-path", "The path is invalid")
            .detail(err.to_string())
            .into()
    })
}
