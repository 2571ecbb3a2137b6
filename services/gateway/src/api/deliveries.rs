//! The operator's view of outbound deliveries: what waits, what was
//! delivered, what was parked after its last attempt, and replaying a parked
//! one (from its first attempt, with the same MessageId).

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, ServiceContext};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{audit_row, operator};
use crate::store::{self, DeliveryRow};

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/deliveries", web::get().to(list))
        .route("/deliveries/{id}/replay", web::post().to(replay))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, delivered or parked.
    pub status: Option<String>,
    pub participant: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The MessageId sent.
    pub id: String,
    pub participant: String,
    pub operation: String,
    /// pending, delivered or parked.
    pub status: String,
    pub attempts: i32,
    /// When it is tried next (pending).
    pub next_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

fn view(d: DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id,
        participant: d.participant,
        operation: d.operation,
        status: d.status,
        attempts: d.attempts,
        next_at: calendar::tyumen_iso(d.next_at),
        last_error: d.last_error,
        created_at: calendar::tyumen_iso(d.created_at),
        delivered_at: d.delivered_at.map(calendar::tyumen_iso),
    }
}

/// Outbound deliveries, newest first (at most 500).
#[utoipa::path(get, path = "/api/gateway/deliveries", tag = "gateway", params(DeliveryQuery),
    security(("bearer" = [])), responses((status = 200, body = [DeliveryView]), (status = 400, body = Problem)))]
async fn list(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let q = q.into_inner();
    if let Some(s) = q.status.as_deref() {
        if ![store::PENDING, store::DELIVERED, store::PARKED].contains(&s) {
            return Err(Problem::invalid("status", "pending, delivered or parked"));
        }
    }
    let rows = ctx
        .db
        .read(move |c| {
            store::list_deliveries(c, q.status.as_deref(), q.participant.as_deref(), 500)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(view).collect::<Vec<_>>()))
}

/// Sends a parked delivery again, from its first attempt.
#[utoipa::path(post, path = "/api/gateway/deliveries/{id}/replay", tag = "gateway",
    params(("id" = String, Path, description = "The delivery (its MessageId)")),
    security(("bearer" = [])), responses((status = 200, body = DeliveryView), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Not parked: pending or delivered already")))]
async fn replay(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let id = path.into_inner();
    // Scheduled on the machine's clock, as the sender reads it.
    let now = storage::now_naive();
    let at = ctx.clock.now().naive_utc();
    let i = id.clone();
    let (replayed, row) = ctx
        .db
        .write(move |c| -> Result<_, storage::StorageError> {
            let replayed = store::replay_delivery(c, &i, now)?;
            let row = store::delivery(c, &i)?;
            if let (true, Some(r)) = (replayed, &row) {
                store::audit(
                    c,
                    &audit_row(
                        &caller,
                        "delivery",
                        &r.participant,
                        "replay",
                        Some(i.clone()),
                        None,
                        at,
                    ),
                )?;
            }
            Ok((replayed, row))
        })
        .await?;
    let row = row.ok_or_else(|| Problem::not_found(format!("delivery {id} does not exist")))?;
    if !replayed {
        return Err(Problem::conflict(
            "not-parked",
            format!(
                "delivery {id} is {}; only a parked one is replayed",
                row.status
            ),
        ));
    }
    Ok(HttpResponse::Ok().json(view(row)))
}
