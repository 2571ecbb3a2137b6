//! The endpoints whose operations a service answers with its REST
//! implementation: УНиП (payments) and the caterers' (meals). The AppData
//! becomes the REST body ([`super::json`]), travels as a [`ServiceCall`] over
//! request/reply, and the answer (or the service's refusal, named by its
//! field) comes back as AppData.

use contracts::gateway::{
    CallAnswer, Caller, ServiceCall, CALL_KIND, MEALS_CALL_TOPIC, PAYMENTS_CALL_TOPIC,
};

use super::json::{self, Shape};
use super::write::GatewayError;
use super::{Call, Outcome};
use crate::domain::envelope::{Message, Status};
use crate::store;

/// Where an operation goes and what its JSON looks like.
struct Route {
    topic: &'static str,
    /// The participant kind that may call the endpoint.
    kind: &'static str,
    /// The AppData element of the answer.
    answer: &'static str,
    shape: Shape,
}

const UNIP_SHAPE: Shape = Shape {
    lists: &[
        ("payments", "Payment"),
        ("charges", "Charge"),
        ("uins", "Uin"),
    ],
    numbers: &[],
    booleans: &[],
};

pub const CATERERS_SHAPE: Shape = Shape {
    lists: &[
        ("dishes", "Dish"),
        ("allergens", "Allergen"),
        ("complexes", "Complex"),
        ("extras", "Extra"),
        ("lines", "Line"),
        ("requests", "Request"),
    ],
    numbers: &["yield_grams"],
    booleans: &[],
};

fn route_of(endpoint: &str, op: &str) -> Option<Route> {
    let (topic, kind, shape) = match endpoint {
        "unip" => (PAYMENTS_CALL_TOPIC, "agency", UNIP_SHAPE),
        "caterers" => (MEALS_CALL_TOPIC, "caterer", CATERERS_SHAPE),
        _ => return None,
    };
    let answer = match op {
        "ImportCharge" | "CancelCharge" => "Charge",
        "ExportPayments" => "Export",
        "UploadCatalog" => "Catalog",
        "SetDayMenu" => "DayMenu",
        "Procurement" => "Procurement",
        "ClassRequests" => "Requests",
        _ => return None,
    };
    Some(Route {
        topic,
        kind,
        answer,
        shape,
    })
}

/// Whether the gateway routes `endpoint` through [`call`].
pub fn serves(endpoint: &str) -> bool {
    matches!(endpoint, "unip" | "caterers")
}

/// `complexes[1].dishes` → `Complexes/Complex[2]/Dishes`: the REST field in the
/// request's element path.
pub fn element_path(field: &str, shape: &Shape) -> String {
    field
        .split('.')
        .map(|seg| match seg.split_once('[') {
            Some((name, rest)) => {
                let i: usize = rest.trim_end_matches(']').parse().unwrap_or(0);
                let item = shape.item_of(name).unwrap_or("Item");
                format!("{}/{item}[{}]", json::pascal(name), i + 1)
            }
            None => json::pascal(seg),
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) async fn call(
    x: &Call<'_>,
    m: &Message,
    id: &str,
    op: &str,
    participant: &store::ParticipantRow,
) -> Outcome {
    let reject = |code: &str, text: String| {
        x.refuse(op, m, id, Status::Reject, GatewayError::new(code, text))
    };
    let Some(route) = route_of(x.endpoint.name, op) else {
        return reject("NOT_GRANTED", format!("no service answers {op}"));
    };
    if participant.kind != route.kind {
        return reject(
            "NOT_GRANTED",
            format!(
                "/soap/{} serves participants of kind {}; {} is {}",
                x.endpoint.name, route.kind, participant.code, participant.kind
            ),
        );
    }
    if route.kind == "caterer" && participant.organizer.is_none() {
        return reject(
            "NOT_GRANTED",
            format!(
                "participant {} is not mapped to an organizer",
                participant.code
            ),
        );
    }
    let body = match json::request_body(&x.request, op, &route.shape) {
        Ok(b) => b,
        Err(e) => return x.invalid(Some((m, id)), e, 500),
    };
    let request = ServiceCall {
        caller: Caller {
            code: participant.code.clone(),
            kind: participant.kind.clone(),
            bank: participant.bank.clone(),
            organizer: participant.organizer.clone(),
        },
        operation: format!("{}.{op}", x.endpoint.name),
        key: format!("{}:{id}", participant.code),
        body,
    };
    let envelope = match bus::Envelope::json(route.topic, CALL_KIND, &request) {
        Ok(e) => e,
        Err(e) => return reject("TOO_LARGE", format!("{e}; send it in smaller parts")),
    };
    let timeout = std::time::Duration::from_millis(x.ctx.settings.gateway.service_timeout_ms);
    let answer = match x.ctx.bus.bus.request(envelope, timeout).await {
        Ok(reply) => reply
            .decode::<CallAnswer>()
            .map_err(|e| bus::BusError::Remote(e.to_string())),
        Err(e) => Err(e),
    };
    match answer {
        Ok(CallAnswer::Done(v)) => {
            let xml = json::answer_xml(route.answer, &v, &route.shape);
            x.answer(op, m, id, Status::Result, Some(xml), "done".into())
        }
        Ok(CallAnswer::Refused(e)) => {
            let error = GatewayError {
                path: e.field.as_deref().map(|f| {
                    format!(
                        "/Envelope/Body/{op}/MessageData/AppData/{op}/{}",
                        element_path(f, &route.shape)
                    )
                }),
                ..GatewayError::new(&e.code, e.text)
            };
            x.refuse(op, m, id, Status::Reject, error)
        }
        Err(e) => super::failure(x, op, m, id, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rest_field_is_named_as_the_request_element() {
        assert_eq!(
            element_path("complexes[1].dishes", &CATERERS_SHAPE),
            "Complexes/Complex[2]/Dishes"
        );
        assert_eq!(element_path("payer.inn", &UNIP_SHAPE), "Payer/Inn");
        assert_eq!(element_path("due_date", &UNIP_SHAPE), "DueDate");
    }
}
