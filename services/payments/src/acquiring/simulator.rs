//! A simulated acquiring bank speaking the same REST API as the real gateway
//! (`register.do`, `getOrderStatusExtended.do`, `refund.do`), over real HTTP on
//! 127.0.0.1, for tests and for demonstrating the flow to an operator. Nothing
//! starts it but [`SimulatedBank::start`].
//!
//! Besides the bank's API it has controls, both as methods and as HTTP
//! endpoints under `/sim`: pay or decline an order (as the parent would on the
//! payment page), force a status, send the callback to the merchant's callback
//! URL with a correct or forged checksum, make the bank unavailable, and count
//! the status queries it got.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;

use super::checksum;

/// A merchant as the bank knows it.
#[derive(Debug, Clone)]
struct Merchant {
    password: String,
    secret: String,
    callback_url: String,
}

/// An order as the bank knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub bank_order_id: String,
    pub order_number: String,
    pub merchant: String,
    pub amount_kopecks: i64,
    /// `orderStatus` code: 0 created, 1 approved, 2 deposited, 3 reversed,
    /// 4 refunded, 5 ACS, 6 declined.
    pub status: i64,
    pub refunded_kopecks: i64,
    pub return_url: String,
}

#[derive(Debug, Default)]
struct State {
    base: String,
    merchants: HashMap<String, Merchant>,
    orders: HashMap<String, SimOrder>,
    status_queries: usize,
    unavailable: bool,
}

impl State {
    /// The order by the bank's id or by the merchant's order number.
    fn order_mut(&mut self, order: &str) -> Option<&mut SimOrder> {
        let id = if self.orders.contains_key(order) {
            order.to_string()
        } else {
            self.orders
                .values()
                .find(|o| o.order_number == order)?
                .bank_order_id
                .clone()
        };
        self.orders.get_mut(&id)
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic in a handler cannot leave the maps half written.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether a simulated callback carries the right checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Correct,
    Forged,
}

/// A running simulated bank.
pub struct SimulatedBank {
    base: String,
    state: Shared,
    server: actix_web::dev::ServerHandle,
}

impl SimulatedBank {
    /// Starts the bank on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<SimulatedBank> {
        let state: Shared = Arc::default();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .route("/register.do", web::post().to(register))
                .route("/getOrderStatusExtended.do", web::post().to(order_status))
                .route("/refund.do", web::post().to(refund))
                .route("/payment", web::get().to(payment_page))
                .route("/sim/orders/{order}/pay", web::post().to(control_pay))
                .route(
                    "/sim/orders/{order}/decline",
                    web::post().to(control_decline),
                )
                .route(
                    "/sim/orders/{order}/callback",
                    web::post().to(control_callback),
                )
                .route("/sim/stats", web::get().to(control_stats))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("bound to no address"))?;
        let base = format!("http://{addr}");
        lock(&state).base = base.clone();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        tracing::info!(%base, "simulated acquiring bank listening");
        Ok(SimulatedBank {
            base,
            state,
            server: handle,
        })
    }

    /// The REST root to configure as the organizer's bank.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Opens a merchant account: credentials, the secret of callback checksums,
    /// and where callbacks go.
    pub fn add_merchant(&self, login: &str, password: &str, secret: &str, callback_url: &str) {
        lock(&self.state).merchants.insert(
            login.to_string(),
            Merchant {
                password: password.to_string(),
                secret: secret.to_string(),
                callback_url: callback_url.to_string(),
            },
        );
    }

    /// The order by the bank's id or the merchant's order number.
    pub fn order(&self, order: &str) -> Option<SimOrder> {
        lock(&self.state).order_mut(order).map(|o| o.clone())
    }

    /// The parent paid: the order is deposited. False if there is no such order.
    pub fn pay(&self, order: &str) -> bool {
        self.set_status(order, 2)
    }

    /// The card was declined.
    pub fn decline(&self, order: &str) -> bool {
        self.set_status(order, 6)
    }

    /// Forces the `orderStatus` code the bank reports.
    pub fn set_status(&self, order: &str, code: i64) -> bool {
        match lock(&self.state).order_mut(order) {
            Some(o) => {
                o.status = code;
                true
            }
            None => false,
        }
    }

    /// While unavailable the bank answers HTTP 503 to everything.
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.state).unavailable = unavailable;
    }

    /// How many status queries the bank has answered.
    pub fn status_queries(&self) -> usize {
        lock(&self.state).status_queries
    }

    /// Sends the callback about `order` to the merchant's callback URL, as the
    /// bank does after an operation; returns the merchant's HTTP status.
    pub async fn send_callback(
        &self,
        order: &str,
        operation: &str,
        status: u8,
        checksum: Checksum,
    ) -> Result<u16, String> {
        deliver_callback(&self.state, order, operation, status, checksum).await
    }

    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

async fn deliver_callback(
    state: &Shared,
    order: &str,
    operation: &str,
    status: u8,
    mode: Checksum,
) -> Result<u16, String> {
    let (params, url) = {
        let mut s = lock(state);
        let o = s
            .order_mut(order)
            .ok_or_else(|| format!("no order {order}"))?
            .clone();
        let merchant = s
            .merchants
            .get(&o.merchant)
            .ok_or_else(|| format!("no merchant {}", o.merchant))?;
        let mut params = vec![
            ("mdOrder".to_string(), o.bank_order_id.clone()),
            ("orderNumber".to_string(), o.order_number.clone()),
            ("operation".to_string(), operation.to_string()),
            ("status".to_string(), status.to_string()),
        ];
        let secret = match mode {
            Checksum::Correct => merchant.secret.clone(),
            Checksum::Forged => format!("not-{}", merchant.secret),
        };
        params.push(("checksum".to_string(), checksum(&params, &secret)));
        (params, merchant.callback_url.clone())
    };
    let response = reqwest::Client::new()
        .get(url)
        .query(&params)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

type Form = web::Form<HashMap<String, String>>;

fn answer_error(code: &str, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "errorCode": code, "errorMessage": message }))
}

/// The merchant named in the form, if its password matches.
fn authenticate(s: &State, form: &HashMap<String, String>) -> Option<String> {
    let login = form.get("userName")?;
    let merchant = s.merchants.get(login)?;
    (form.get("password") == Some(&merchant.password)).then(|| login.clone())
}

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable().body("the simulated bank is unavailable")
}

async fn register(state: web::Data<Shared>, form: Form) -> HttpResponse {
    let mut s = lock(&state);
    if s.unavailable {
        return unavailable();
    }
    let Some(merchant) = authenticate(&s, &form) else {
        return answer_error("5", "Access denied");
    };
    let Some(number) = form.get("orderNumber").filter(|n| !n.is_empty()) else {
        return answer_error("4", "Order number is empty");
    };
    let Some(amount) = form
        .get("amount")
        .and_then(|a| a.parse::<i64>().ok())
        .filter(|a| *a > 0)
    else {
        return answer_error("4", "Amount is invalid");
    };
    if s.orders
        .values()
        .any(|o| o.merchant == merchant && &o.order_number == number)
    {
        return answer_error("1", "Order with this number was already processed");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let order = SimOrder {
        bank_order_id: id.clone(),
        order_number: number.clone(),
        merchant,
        amount_kopecks: amount,
        status: 0,
        refunded_kopecks: 0,
        return_url: form.get("returnUrl").cloned().unwrap_or_default(),
    };
    s.orders.insert(id.clone(), order);
    let form_url = format!("{}/payment?mdOrder={id}", s.base);
    HttpResponse::Ok().json(json!({ "orderId": id, "formUrl": form_url }))
}

async fn order_status(state: web::Data<Shared>, form: Form) -> HttpResponse {
    let mut s = lock(&state);
    if s.unavailable {
        return unavailable();
    }
    let Some(merchant) = authenticate(&s, &form) else {
        return answer_error("5", "Access denied");
    };
    s.status_queries += 1;
    let Some(o) = form
        .get("orderId")
        .and_then(|id| s.orders.get(id))
        .filter(|o| o.merchant == merchant)
    else {
        return answer_error("6", "Order not found");
    };
    let deposited = if matches!(o.status, 2 | 4) {
        o.amount_kopecks
    } else {
        0
    };
    HttpResponse::Ok().json(json!({
        "errorCode": "0",
        "errorMessage": "Успешно",
        "orderNumber": o.order_number,
        "orderStatus": o.status,
        "actionCode": if o.status == 6 { -2007 } else { 0 },
        "amount": o.amount_kopecks,
        "currency": "643",
        "paymentAmountInfo": {
            "approvedAmount": if matches!(o.status, 1 | 2 | 4) { o.amount_kopecks } else { 0 },
            "depositedAmount": deposited,
            "refundedAmount": o.refunded_kopecks,
        },
    }))
}

async fn refund(state: web::Data<Shared>, form: Form) -> HttpResponse {
    let mut s = lock(&state);
    if s.unavailable {
        return unavailable();
    }
    let Some(merchant) = authenticate(&s, &form) else {
        return answer_error("5", "Access denied");
    };
    let amount = form.get("amount").and_then(|a| a.parse::<i64>().ok());
    let Some(o) = form
        .get("orderId")
        .cloned()
        .and_then(|id| s.orders.get_mut(&id))
        .filter(|o| o.merchant == merchant)
    else {
        return answer_error("6", "Order not found");
    };
    if o.status != 2 {
        return answer_error("7", "Payment must be in a correct state");
    }
    match amount {
        Some(a) if a > 0 && o.refunded_kopecks + a <= o.amount_kopecks => {
            o.refunded_kopecks += a;
            if o.refunded_kopecks == o.amount_kopecks {
                o.status = 4;
            }
            HttpResponse::Ok().json(json!({ "errorCode": "0", "errorMessage": "Успешно" }))
        }
        _ => answer_error("5", "Invalid amount"),
    }
}

async fn payment_page(
    state: web::Data<Shared>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let id = query.get("mdOrder").cloned().unwrap_or_default();
    let known = lock(&state).orders.contains_key(&id);
    if !known {
        return HttpResponse::NotFound().body("no such order");
    }
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(format!(
        "Simulated payment page of order {id}.\nPOST /sim/orders/{id}/pay to pay, /decline to decline, \
         then /callback?operation=deposited&status=1 to notify the merchant.\n"
    ))
}

async fn control_pay(state: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    control_set(&state, &path, 2)
}

async fn control_decline(state: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    control_set(&state, &path, 6)
}

fn control_set(state: &Shared, order: &str, code: i64) -> HttpResponse {
    match lock(state).order_mut(order) {
        Some(o) => {
            o.status = code;
            HttpResponse::Ok().json(json!({ "order": o.bank_order_id, "orderStatus": code }))
        }
        None => HttpResponse::NotFound().json(json!({ "error": "no such order" })),
    }
}

#[derive(Debug, Deserialize)]
struct CallbackControl {
    operation: String,
    status: u8,
    #[serde(default)]
    forged: bool,
}

async fn control_callback(
    state: web::Data<Shared>,
    path: web::Path<String>,
    query: web::Query<CallbackControl>,
) -> HttpResponse {
    let mode = if query.forged {
        Checksum::Forged
    } else {
        Checksum::Correct
    };
    match deliver_callback(&state, &path, &query.operation, query.status, mode).await {
        Ok(status) => HttpResponse::Ok().json(json!({ "merchant_answered": status })),
        Err(e) => HttpResponse::BadGateway().json(json!({ "error": e })),
    }
}

async fn control_stats(state: web::Data<Shared>) -> HttpResponse {
    let s = lock(&state);
    HttpResponse::Ok().json(json!({
        "orders": s.orders.len(),
        "status_queries": s.status_queries,
        "unavailable": s.unavailable,
    }))
}
