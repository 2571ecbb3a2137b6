//! The real acquirer adapter: the REST API most Russian acquiring banks expose
//! (the "RBS" payment gateway). Every call is a form POST with the merchant's
//! `userName` and `password`; answers are JSON with `errorCode` "0" (or none)
//! on success.
//!
//! - `register.do` orderNumber, amount (kopecks), returnUrl → {orderId, formUrl}
//! - `getOrderStatusExtended.do` orderId → {orderStatus, amount, paymentAmountInfo}
//! - `refund.do` orderId, amount → {errorCode}
//!
//! Timeouts, refused connections, HTTP 5xx/429 and the gateway's "system error"
//! (code 7) are temporary ([`AcquirerError::Unavailable`]); other error codes
//! mean the bank refused ([`AcquirerError::Rejected`]).

use std::time::Duration;

use primitives::Money;
use serde_json::Value;

use super::{
    Acquirer, AcquirerError, BankOrder, BoxFuture, OrderStatus, RegisterOrder, Registered,
};

/// Connecting to the bank may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole call to the bank may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The gateway's "system error" code: temporary.
const SYSTEM_ERROR: &str = "7";

/// A merchant's connection to an RBS-shaped gateway.
pub struct RbsAcquirer {
    base: String,
    login: String,
    password: String,
    http: reqwest::Client,
}

impl RbsAcquirer {
    /// `base` is the gateway's REST root, e.g. `https://bank.example/payment/rest`.
    pub fn new(base: &str, login: &str, password: &str) -> RbsAcquirer {
        // A client per adapter: a client's pooled connections belong to the
        // runtime that opened them, and adapters are short-lived.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        RbsAcquirer {
            base: base.trim_end_matches('/').to_string(),
            login: login.to_string(),
            password: password.to_string(),
            http,
        }
    }

    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Value, AcquirerError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("userName", self.login.as_str()),
            ("password", self.password.as_str()),
        ];
        form.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(method, &e))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(AcquirerError::Unavailable(format!(
                "{method}: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(AcquirerError::Protocol(format!("{method}: HTTP {status}")));
        }
        let body: Value = response.json().await.map_err(|e| {
            if e.is_timeout() {
                transport(method, &e)
            } else {
                AcquirerError::Protocol(format!("{method}: {e}"))
            }
        })?;
        match error_code(&body) {
            Some(code) if code != "0" => {
                let message = body
                    .get("errorMessage")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if code == SYSTEM_ERROR && method != "refund.do" {
                    Err(AcquirerError::Unavailable(format!("{method}: {message}")))
                } else {
                    Err(AcquirerError::Rejected { code, message })
                }
            }
            _ => Ok(body),
        }
    }
}

fn transport(method: &str, e: &reqwest::Error) -> AcquirerError {
    // The error text names the URL only; credentials travel in the body.
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    AcquirerError::Unavailable(format!("{method}: {what}"))
}

fn error_code(body: &Value) -> Option<String> {
    match body.get("errorCode")? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(body: &Value, field: &str, method: &str) -> Result<String, AcquirerError> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| AcquirerError::Protocol(format!("{method}: no `{field}` in the answer")))
}

/// An integer that gateways send as a number or as a string.
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Acquirer for RbsAcquirer {
    fn register_order<'a>(
        &'a self,
        order: &'a RegisterOrder,
    ) -> BoxFuture<'a, Result<Registered, AcquirerError>> {
        Box::pin(async move {
            let method = "register.do";
            let body = self
                .call(
                    method,
                    &[
                        ("orderNumber", order.order_number.clone()),
                        ("amount", order.amount.kopecks().to_string()),
                        ("currency", "643".to_string()),
                        ("returnUrl", order.return_url.clone()),
                        ("description", order.description.clone()),
                    ],
                )
                .await?;
            Ok(Registered {
                bank_order_id: text(&body, "orderId", method)?,
                payment_url: text(&body, "formUrl", method)?,
            })
        })
    }

    fn order_status<'a>(
        &'a self,
        bank_order_id: &'a str,
    ) -> BoxFuture<'a, Result<BankOrder, AcquirerError>> {
        Box::pin(async move {
            let method = "getOrderStatusExtended.do";
            let body = self
                .call(method, &[("orderId", bank_order_id.to_string())])
                .await?;
            let code = integer(body.get("orderStatus")).ok_or_else(|| {
                AcquirerError::Protocol(format!("{method}: no `orderStatus` in the answer"))
            })?;
            let status = OrderStatus::from_bank_code(code).ok_or_else(|| {
                AcquirerError::Protocol(format!("{method}: unknown orderStatus {code}"))
            })?;
            let amount = integer(body.get("amount")).ok_or_else(|| {
                AcquirerError::Protocol(format!("{method}: no `amount` in the answer"))
            })?;
            let refunded = integer(
                body.get("paymentAmountInfo")
                    .and_then(|i| i.get("refundedAmount")),
            )
            .unwrap_or(0);
            Ok(BankOrder {
                status,
                amount: Money::from_kopecks(amount),
                refunded: Money::from_kopecks(refunded),
            })
        })
    }

    fn refund<'a>(
        &'a self,
        bank_order_id: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<(), AcquirerError>> {
        Box::pin(async move {
            self.call(
                "refund.do",
                &[
                    ("orderId", bank_order_id.to_string()),
                    ("amount", amount.kopecks().to_string()),
                ],
            )
            .await
            .map(|_| ())
        })
    }
}
