//! The banks' endpoint: check, pay and cancel, answered by payments over the
//! bus with the implementation its REST door uses.

use contracts::payments::{BankAnswer, BankOperation, BankRequest};
use contracts::Contract;
use primitives::Money;
use quick_xml::escape::partial_escape as escape;

use super::read::Inbound;
use super::write::GatewayError;

/// The request to payments, or the AppData field that cannot be taken.
pub fn request(
    bank: &str,
    operation: &str,
    inbound: &Inbound,
) -> Result<BankRequest, GatewayError> {
    let field = |name: &str| {
        inbound
            .app(&format!("{operation}/{name}"))
            .unwrap_or_default()
            .to_string()
    };
    let invalid = |name: &str, text: String| GatewayError {
        path: Some(format!(
            "/Envelope/Body/{operation}/MessageData/AppData/{operation}/{name}"
        )),
        ..GatewayError::new("SCHEMA_VIOLATION", text)
    };
    let op = match operation {
        "Check" => BankOperation::Check {
            account: field("Account"),
        },
        "Pay" => {
            let amount = Money::parse(&field("Amount"))
                .map_err(|e| invalid("Amount", format!("Amount: {e}")))?;
            let txn_at = chrono::DateTime::parse_from_rfc3339(&field("TxnAt")).map_err(|_| {
                invalid(
                    "TxnAt",
                    "TxnAt: a date and time with its offset, e.g. 2026-12-03T10:15:00+05:00".into(),
                )
            })?;
            BankOperation::Pay {
                account: field("Account"),
                amount,
                txn_id: field("TxnId"),
                txn_at,
            }
        }
        "Cancel" => BankOperation::Cancel {
            txn_id: field("TxnId"),
        },
        other => {
            return Err(GatewayError::new(
                "SCHEMA_VIOLATION",
                format!("banks has no operation {other}"),
            ))
        }
    };
    Ok(BankRequest {
        bank: bank.to_string(),
        operation: op,
    })
}

pub fn envelope(req: &BankRequest) -> Result<bus::Envelope, bus::BusError> {
    bus::Envelope::json(BankRequest::TOPIC, BankRequest::KIND, req)
}

/// `<tns:Answer>` of the banks' schema.
pub fn answer_xml(a: &BankAnswer) -> String {
    let mut out = String::from("<tns:Answer>");
    let mut el =
        |name: &str, v: &str| out.push_str(&format!("<tns:{name}>{}</tns:{name}>", escape(v)));
    let result = a.result.map(|r| r.name()).unwrap_or("OTHER_ERROR");
    el("Result", result);
    el("Code", &a.code.to_string());
    el("Temporary", if a.temporary { "true" } else { "false" });
    el("Message", &a.message);
    if let Some(v) = &a.account {
        el("Account", v);
    }
    if let Some(v) = &a.student {
        el("Student", v);
    }
    if let Some(v) = &a.school {
        el("School", v);
    }
    if let Some(v) = &a.balance {
        el("Balance", &v.to_string());
    }
    if let Some(v) = &a.payment_id {
        el("PaymentId", v);
    }
    if let Some(v) = &a.accepted_at {
        el("AcceptedAt", v);
    }
    out.push_str("</tns:Answer>");
    out
}
