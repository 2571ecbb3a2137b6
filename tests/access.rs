//! Deny by default, walked: the role × operation matrix of every REST
//! operation is the table below, and this test holds the platform to it.
//!
//! - Every operation of the OpenAPI document has its row and every row its
//!   operation: an endpoint cannot ship without saying who may call it.
//! - Without a token every operation but the public ones answers 401.
//! - Each of the eight roles calls every operation with a token whose scopes
//!   name other tenants (another school, class, organizer, municipality, bank,
//!   child, participant), with path parameters, query parameters and a body
//!   made from the document's schemas: a role the row does not admit is refused
//!   (4xx, never 401: the token is good); a role it admits, acting outside its
//!   scope, changes nothing (no write answers 2xx); the operator, who has every
//!   scope, is never refused for its role; nothing answers 5xx.
//! - Each admitted role calls the operation again with a token whose scopes
//!   name the ids the call uses: it is not refused (no 403).
//!
//! The rows were read from the handlers (`Caller::require`, the access
//! helpers); a handler that hides what exists answers 404 instead of 403.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use auth::Role;
use platform::testing::TestApp;
use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token needed (health checks, the acquiring bank's callback).
    Public,
    /// Any caller with a valid token, whatever its roles.
    AnyAuthenticated,
    /// Only callers holding at least one of these roles.
    Roles(&'static [Role]),
}

/// (method, path as in the OpenAPI document, who may call it)
const MATRIX: &[(&str, &str, Access)] = &[
    (
        "GET",
        "/api/gateway/deliveries",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/deliveries.rs — operator(): require(OperatorAdmin)
    (
        "POST",
        "/api/gateway/deliveries/{id}/replay",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/deliveries.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/connections/overdue",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/connections.rs — operator(): require(OperatorAdmin)
    (
        "POST",
        "/api/gateway/participants/{code}/connection",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/connections.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/participants/{code}/connection",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/connections.rs — operator(): require(OperatorAdmin)
    (
        "POST",
        "/api/gateway/participants/{code}/connection/steps",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/connections.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/participants/{code}/connection/act",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/connections.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/audit",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/log",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/log/{seq}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/operations",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/participants",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/participants/{code}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "PUT",
        "/api/gateway/participants/{code}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "GET",
        "/api/gateway/participants/{code}/rights",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "DELETE",
        "/api/gateway/participants/{code}/rights/{operation}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "PUT",
        "/api/gateway/participants/{code}/rights/{operation}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/gateway/src/api/mod.rs — operator(): require(OperatorAdmin)
    (
        "POST",
        "/api/meals/classes/{class}/attendance",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::OperatorAdmin,
            Role::InformationSystem,
        ]),
    ), // services/meals/src/api/requests.rs — teacher_of || IS with the school in scope; others 404
    (
        "GET",
        "/api/meals/classes/{class}/requests",
        Access::Roles(&[Role::ClassTeacher, Role::OperatorAdmin]),
    ), // services/meals/src/api/requests.rs — teacher_of; others 404
    (
        "POST",
        "/api/meals/classes/{class}/requests",
        Access::Roles(&[Role::ClassTeacher, Role::OperatorAdmin]),
    ), // services/meals/src/api/requests.rs — teacher_of; others 404
    // Conditional: without ?school=/?municipality= OperatorAdmin only; with them schools_in_scope (MealAdmin only with ?school=).
    (
        "GET",
        "/api/meals/day-closes",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reports.rs — conditional, see above
    (
        "PUT",
        "/api/meals/municipalities/{municipality}/age-categories/{code}",
        Access::Roles(&[Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_municipal
    (
        "GET",
        "/api/meals/municipalities/{municipality}/dictionaries",
        Access::AnyAuthenticated,
    ), // services/meals/src/api/reference.rs — `_caller: Caller`, no role check
    (
        "PUT",
        "/api/meals/municipalities/{municipality}/menu-types/{code}",
        Access::Roles(&[Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_municipal
    (
        "PUT",
        "/api/meals/municipalities/{municipality}/pchvr-categories/{code}",
        Access::Roles(&[Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_municipal
    (
        "GET",
        "/api/meals/organizers/{organizer}/catalog",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "POST",
        "/api/meals/organizers/{organizer}/catalog",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "PUT",
        "/api/meals/organizers/{organizer}/complexes/{code}",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "PUT",
        "/api/meals/organizers/{organizer}/dishes/{id}",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "PUT",
        "/api/meals/organizers/{organizer}/extras/{id}",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "GET",
        "/api/meals/organizers/{organizer}/notices",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require_organizer
    (
        "GET",
        "/api/meals/organizers/{organizer}/procurement",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reports.rs — require_organizer
    (
        "GET",
        "/api/meals/organizers/{organizer}/requests",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/requests.rs — require_organizer
    // Conditional: MealAdmin and ClassTeacher only with ?school= (ClassTeacher: any school, rows limited to own classes); ?municipality= needs MunicipalOfficer/OperatorAdmin.
    (
        "GET",
        "/api/meals/reports/balances",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/meals/src/api/reports.rs — conditional, see above
    // Conditional: schools_in_scope; MealAdmin only with ?school=, ?municipality= needs MunicipalOfficer/OperatorAdmin.
    (
        "GET",
        "/api/meals/reports/links",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reports.rs — conditional, see above
    // Conditional: schools_in_scope; MealAdmin only with ?school=, ?municipality= needs MunicipalOfficer/OperatorAdmin.
    (
        "GET",
        "/api/meals/reports/money-flow",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reports.rs — conditional, see above
    // Conditional: schools_in_scope; MealAdmin only with ?school=, ?municipality= needs MunicipalOfficer/OperatorAdmin.
    (
        "GET",
        "/api/meals/reports/subsidies",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reports.rs — conditional, see above
    (
        "GET",
        "/api/meals/requests/{id}",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/meals/src/api/requests.rs — visible: teacher_of || may_read_school; others 404
    (
        "PUT",
        "/api/meals/requests/{id}/actual",
        Access::Roles(&[Role::ClassTeacher, Role::OperatorAdmin]),
    ), // services/meals/src/api/requests.rs — visible, then teacher_of (MealAdmin/MealOrganizer/MunicipalOfficer get 403)
    (
        "GET",
        "/api/meals/requests/{id}/print",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/meals/src/api/requests.rs — visible: teacher_of || may_read_school; others 404
    (
        "GET",
        "/api/meals/schools/{school}",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/meals/src/api/reference.rs — may_read_school || class teacher of the school; others 404
    (
        "PUT",
        "/api/meals/schools/{school}",
        Access::Roles(&[Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_municipal(body.municipality)
    (
        "PUT",
        "/api/meals/schools/{school}/buildings/{building}",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_school_manager
    (
        "PUT",
        "/api/meals/schools/{school}/classes/{class}",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_school_manager
    (
        "PUT",
        "/api/meals/schools/{school}/credit-limit",
        Access::Roles(&[Role::MealAdmin, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_admin
    (
        "PUT",
        "/api/meals/schools/{school}/meal-times/{code}",
        Access::Roles(&[Role::MealAdmin, Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_school_manager
    (
        "GET",
        "/api/meals/schools/{school}/menus/print",
        Access::Roles(&[
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/meals/src/api/reports.rs — may_read_school || class teacher of the school; others 404
    (
        "PUT",
        "/api/meals/schools/{school}/menus/{date}/{meal_kind}",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/meals/src/api/catalog.rs — require(MealOrganizer, OperatorAdmin) + organizer linked to school
    (
        "PUT",
        "/api/meals/schools/{school}/organizer",
        Access::Roles(&[Role::MealAdmin, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_admin
    (
        "PUT",
        "/api/meals/schools/{school}/students/{account}",
        Access::Roles(&[
            Role::MealAdmin,
            Role::OperatorAdmin,
            Role::InformationSystem,
        ]),
    ), // services/meals/src/api/reference.rs — require_admin_or_school_system (IS: other schools 404)
    (
        "PUT",
        "/api/meals/schools/{school}/students/{account}/settings",
        Access::Roles(&[Role::MealAdmin, Role::OperatorAdmin]),
    ), // services/meals/src/api/reference.rs — require_admin
    (
        "GET",
        "/api/meals/students/{account}/menu",
        Access::Roles(&[Role::Parent, Role::OperatorAdmin]),
    ), // services/meals/src/api/orders.rs — own_child; others 404
    (
        "GET",
        "/api/meals/students/{account}/orders",
        Access::Roles(&[Role::Parent, Role::OperatorAdmin]),
    ), // services/meals/src/api/orders.rs — own_child; others 404
    (
        "POST",
        "/api/meals/students/{account}/orders/confirm",
        Access::Roles(&[Role::Parent, Role::OperatorAdmin]),
    ), // services/meals/src/api/orders.rs — own_child; others 404
    (
        "DELETE",
        "/api/meals/students/{account}/orders/{date}/{meal_kind}",
        Access::Roles(&[Role::Parent, Role::OperatorAdmin]),
    ), // services/meals/src/api/orders.rs — own_child; others 404
    (
        "PUT",
        "/api/meals/students/{account}/orders/{date}/{meal_kind}",
        Access::Roles(&[Role::Parent, Role::OperatorAdmin]),
    ), // services/meals/src/api/orders.rs — own_child; others 404
    (
        "POST",
        "/api/payments/accounts",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/payments/src/api/mod.rs — access::may_open_account
    (
        "GET",
        "/api/payments/accounts/{account}",
        Access::Roles(&[
            Role::Parent,
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/payments/src/api/mod.rs — access::may_view_account; others get 404, not 403
    (
        "POST",
        "/api/payments/accounts/{account}/adjustments",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/payments/src/api/mod.rs — require(OperatorAdmin)
    (
        "GET",
        "/api/payments/accounts/{account}/movements",
        Access::Roles(&[
            Role::Parent,
            Role::ClassTeacher,
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/payments/src/api/mod.rs — access::may_view_account; others get 404, not 403
    (
        "POST",
        "/api/payments/accounts/{account}/top-ups",
        Access::Roles(&[Role::Parent]),
    ), // services/payments/src/api/acquiring.rs — require(Parent); OperatorAdmin not admitted
    ("GET", "/api/payments/acquiring/callback", Access::Public), // services/payments/src/api/acquiring.rs — no token: the bank's HMAC checksum is the proof
    (
        "POST",
        "/api/payments/banks/cancel",
        Access::Roles(&[Role::Bank]),
    ), // services/payments/src/api/banking.rs — bank_of: require(Bank)
    (
        "POST",
        "/api/payments/banks/check",
        Access::Roles(&[Role::Bank]),
    ), // services/payments/src/api/banking.rs — bank_of: require(Bank), exactly one bank claim; OperatorAdmin not admitted
    (
        "POST",
        "/api/payments/banks/pay",
        Access::Roles(&[Role::Bank]),
    ), // services/payments/src/api/banking.rs — bank_of: require(Bank)
    (
        "GET",
        "/api/payments/banks/transactions",
        Access::Roles(&[Role::Bank]),
    ), // services/payments/src/api/banking.rs — bank_of: require(Bank)
    (
        "POST",
        "/api/payments/movements/{movement}/reversal",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/payments/src/api/mod.rs — require(OperatorAdmin)
    (
        "GET",
        "/api/payments/organizers/{organizer}/acquiring",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/payments/src/api/acquiring.rs — require(OperatorAdmin, MealOrganizer) + may_configure
    (
        "PUT",
        "/api/payments/organizers/{organizer}/acquiring",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/payments/src/api/acquiring.rs — require(OperatorAdmin, MealOrganizer) + may_configure
    (
        "POST",
        "/api/payments/registries",
        Access::Roles(&[Role::OperatorAdmin, Role::Bank]),
    ), // services/payments/src/api/registries.rs — require(Bank, OperatorAdmin); operator must give ?bank=
    (
        "GET",
        "/api/payments/registries/{id}",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin, Role::Bank]),
    ), // services/payments/src/api/registries.rs — visible: organizer (own lines only) / bank (own registry) / operator; others 404
    (
        "GET",
        "/api/payments/registries/{id}/report",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin, Role::Bank]),
    ), // services/payments/src/api/registries.rs — visible: organizer (own lines only) / bank (own registry) / operator; others 404
    (
        "GET",
        "/api/payments/reports/balances",
        Access::Roles(&[
            Role::MealAdmin,
            Role::MealOrganizer,
            Role::MunicipalOfficer,
            Role::OperatorAdmin,
        ]),
    ), // services/payments/src/api/reports.rs — filter_of: role + non-empty scope claim; ClassTeacher refused
    (
        "GET",
        "/api/payments/reports/municipalities",
        Access::Roles(&[Role::MunicipalOfficer, Role::OperatorAdmin]),
    ), // services/payments/src/api/reports.rs — require(MunicipalOfficer, OperatorAdmin)
    (
        "GET",
        "/api/payments/reports/turnover",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/payments/src/api/reports.rs — operator must name organizer; else require(MealOrganizer)
    (
        "GET",
        "/api/payments/top-ups/{order}",
        Access::Roles(&[Role::Parent, Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/payments/src/api/acquiring.rs — may_view_top_up (parent who made it); others get 404
    (
        "POST",
        "/api/payments/top-ups/{order}/refunds",
        Access::Roles(&[Role::MealOrganizer, Role::OperatorAdmin]),
    ), // services/payments/src/api/acquiring.rs — visible_top_up then may_refund; a parent gets 403
    (
        "GET",
        "/api/payments/unip/charges",
        Access::Roles(&[Role::OperatorAdmin, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — require(InformationSystem, OperatorAdmin); IS needs participant claim
    (
        "POST",
        "/api/payments/unip/charges",
        Access::Roles(&[Role::OperatorAdmin, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — require(InformationSystem, OperatorAdmin); IS needs participant claim, operator must name supplier
    (
        "GET",
        "/api/payments/unip/charges/{uin}",
        Access::Roles(&[Role::OperatorAdmin, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — visible_charge: require(InformationSystem, OperatorAdmin) + is_participant
    (
        "POST",
        "/api/payments/unip/charges/{uin}/cancel",
        Access::Roles(&[Role::OperatorAdmin, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — visible_charge: require(InformationSystem, OperatorAdmin) + is_participant
    (
        "POST",
        "/api/payments/unip/payments",
        Access::Roles(&[Role::Bank, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — require(Bank, InformationSystem); OperatorAdmin not admitted
    (
        "POST",
        "/api/payments/unip/payments/{payment_id}/match",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/payments/src/api/charges.rs — require(OperatorAdmin)
    (
        "GET",
        "/api/payments/unip/quittance-report",
        Access::Roles(&[Role::OperatorAdmin, Role::InformationSystem]),
    ), // services/payments/src/api/charges.rs — require(OperatorAdmin, InformationSystem); IS needs participant claim
    (
        "PUT",
        "/api/payments/unip/suppliers/{participant}",
        Access::Roles(&[Role::OperatorAdmin]),
    ), // services/payments/src/api/charges.rs — require(OperatorAdmin)
    ("GET", "/health/live", Access::Public), // crates/platform/src/app.rs — no Caller extractor
    ("GET", "/health/ready", Access::Public), // crates/platform/src/app.rs — no Caller extractor
];

/// Writes an admitted role may make outside its token's scopes by design: any
/// bank checks and accepts a payment into any student's account (the parent
/// chooses the bank; a bank's scope is its own transactions: cancel, the
/// transaction list, its registries).
const UNSCOPED_WRITES: &[(&str, &str)] = &[
    ("POST", "/api/payments/banks/check"),
    ("POST", "/api/payments/banks/pay"),
];

fn document() -> Value {
    serde_json::to_value(platform::app::openapi_document(&portal::services())).unwrap()
}

/// A value of `schema`: the first of an enum, its example, or the simplest
/// value of its type and format; objects with their required properties.
fn example(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 12 {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return example(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(o) = example(doc, part, depth + 1) {
                merged.extend(o);
            }
        }
        return Value::Object(merged);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema.get(key).and_then(Value::as_array).and_then(|a| {
            a.iter()
                .find(|s| s.get("type") != Some(&json!("null")))
                .or(a.first())
        }) {
            return example(doc, first, depth + 1);
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match ty {
        "object" => {
            let mut o = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                o.insert(
                    name.into(),
                    example(doc, &schema["properties"][name], depth + 1),
                );
            }
            Value::Object(o)
        }
        "array" => json!([]),
        "string" => match schema["format"].as_str() {
            Some("date") => json!("2026-05-12"),
            Some("date-time") => json!("2026-05-12T10:00:00+05:00"),
            Some("uuid") => json!("01890000-0000-7000-8000-000000000000"),
            _ => json!("x-1"),
        },
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The operation's URL with every path parameter and required query parameter
/// filled, and its JSON body if it has one.
fn call_of(doc: &Value, path: &str, op: &Value) -> (String, Option<Value>) {
    let mut url = path.to_string();
    let mut query = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap();
        let value = as_text(&example(doc, &p["schema"], 0));
        match p["in"].as_str() {
            Some("path") => url = url.replace(&format!("{{{name}}}"), &value),
            Some("query") if p["required"] == json!(true) => query.push(format!("{name}={value}")),
            _ => {}
        }
    }
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let body = op["requestBody"]["content"]["application/json"]["schema"]
        .as_object()
        .map(|s| example(doc, &Value::Object(s.clone()), 0));
    (url, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_admits_only_the_roles_of_its_row() {
    let doc = document();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(op) = item.get(method) {
                operations.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    let row = |method: &str, path: &str| {
        MATRIX
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, a)| *a)
    };
    let unlisted: Vec<String> = operations
        .iter()
        .filter(|(m, p, _)| row(m, p).is_none())
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "operations without a row in MATRIX: {unlisted:?}"
    );
    let gone: Vec<String> = MATRIX
        .iter()
        .filter(|(m, p, _)| !operations.iter().any(|(om, op, _)| om == m && op == p))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        gone.is_empty(),
        "rows of MATRIX the document no longer has: {gone:?}"
    );

    let clock = calendar::FixedClock::at_local(
        chrono::NaiveDate::from_ymd_opt(2026, 5, 12)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
    );
    let services: Vec<Arc<dyn platform::Service>> = portal::services();
    let app = TestApp::spawn(services, clock).await;
    let http = reqwest::Client::new();
    let tokens: Vec<(Role, String)> = Role::ALL
        .iter()
        .map(|role| {
            let token = app.token("someone-else", &[*role], |r| {
                r.schools = vec!["other-school".into()];
                r.classes = vec!["other-class".into()];
                r.organizers = vec!["other-org".into()];
                r.municipalities = vec!["other-muni".into()];
                r.banks = vec!["other-bank".into()];
                r.children = vec!["other-child".into()];
                r.participant = Some("OTHER01".into());
            });
            (*role, token)
        })
        .collect();
    // Tokens whose scopes name the ids the walk's calls use (every generated id
    // is `x-1`), for the admitted roles' own-scope calls.
    let own: Vec<(Role, String)> = Role::ALL
        .iter()
        .map(|role| {
            let token = app.token("x-1", &[*role], |r| {
                r.schools = vec!["x-1".into()];
                r.classes = vec!["x-1".into()];
                r.organizers = vec!["x-1".into()];
                r.municipalities = vec!["x-1".into()];
                r.banks = vec!["x-1".into()];
                r.children = vec!["x-1".into()];
                r.participant = Some("x-1".into());
            });
            (*role, token)
        })
        .collect();

    let mut wrong = Vec::new();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    for (method, path, op) in &operations {
        let access = row(method, path).unwrap();
        let (url, body) = call_of(&doc, path, op);
        // `scope`: a query parameter added to the operation's own.
        let send = |token: Option<&str>, scope: Option<(&str, &str)>| {
            let mut req = http.request(method.parse().unwrap(), app.url(&url));
            if let Some(q) = scope {
                req = req.query(&[q]);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            // Operations that take money need a key; every call its own.
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            req = req.header("Idempotency-Key", format!("access-{n}"));
            if let Some(b) = &body {
                req = req.json(b);
            }
            req.send()
        };
        let status = send(None, None).await.unwrap().status().as_u16();
        if status >= 500 || (access != Access::Public && status != 401) {
            wrong.push(format!("{method} {url} without a token: {status}"));
        }
        if access == Access::Public {
            continue;
        }
        for (role, token) in &tokens {
            let res = send(Some(token), None).await.unwrap();
            let status = res.status().as_u16();
            // The banks' protocol answers every call 200 with a result code;
            // a refusal is a code other than 0 (OK).
            let refused_in_protocol = path.starts_with("/api/payments/banks/")
                && res
                    .json::<Value>()
                    .await
                    .map(|v| v["code"].as_i64().is_some_and(|c| c != 0))
                    .unwrap_or(false);
            let admitted = match access {
                Access::Roles(roles) => roles.contains(role),
                _ => true,
            };
            let write = method != "GET";
            let fine = if status >= 500 || status == 401 {
                false
            } else if !admitted {
                (400..500).contains(&status)
            } else if *role == Role::OperatorAdmin {
                status != 403
            } else {
                !(write && (200..300).contains(&status))
                    || refused_in_protocol
                    || UNSCOPED_WRITES.contains(&(method.as_str(), path.as_str()))
            };
            if !fine {
                wrong.push(format!(
                    "{method} {url} as {role:?} ({}): {status}",
                    if admitted {
                        "admitted, other scope"
                    } else {
                        "not admitted"
                    }
                ));
            }
        }
        // In its own scope an admitted role is not refused for who it is.
        if let Access::Roles(roles) = access {
            for (role, token) in own.iter().filter(|(r, _)| roles.contains(r)) {
                // The query parameter naming the role's own scope, where the
                // operation takes one (a report by school or municipality).
                let scope = match role {
                    Role::MealAdmin | Role::ClassTeacher => Some("school"),
                    Role::MunicipalOfficer => Some("municipality"),
                    Role::MealOrganizer => Some("organizer"),
                    Role::Bank => Some("bank"),
                    _ => None,
                };
                let takes = |name: &str| {
                    op["parameters"].as_array().into_iter().flatten().any(|p| {
                        p["in"] == "query" && p["name"] == name && p["required"] != json!(true)
                    })
                };
                let query = scope.filter(|n| takes(n)).map(|n| (n, "x-1"));
                let status = send(Some(token), query).await.unwrap().status().as_u16();
                if status >= 500 || status == 401 || status == 403 {
                    wrong.push(format!(
                        "{method} {url} as {role:?} (admitted, own scope): {status}"
                    ));
                }
            }
        }
    }
    app.stop().await;
    assert!(
        wrong.is_empty(),
        "{} answers break the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
