//! The connection procedure over REST (`operator_admin`): a participant's
//! application, the steps the operator records, the review's deadline on the
//! production calendar, the overdue list and the act of connection
//! (Приложение 3) as a document. Rights follow the state: none before testing,
//! the production contour only after the act.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use platform::export::Cell;
use platform::{Caller, Problem, ServiceContext};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{audit_row, missing, operator};
use crate::domain::connection::{self as rules, State, Step};
use crate::domain::participant::Kind;
use crate::store::{self, ConnectionRow, ParticipantRow, StepRow};

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/connections/overdue", web::get().to(overdue))
        .route("/participants/{code}/connection", web::post().to(start))
        .route("/participants/{code}/connection", web::get().to(get))
        .route(
            "/participants/{code}/connection/steps",
            web::post().to(step),
        )
        .route("/participants/{code}/connection/act", web::get().to(act))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The day the application (Приложение 2) arrived, YYYY-MM-DD; today if absent.
    pub received_on: Option<NaiveDate>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// shortcomings, resubmitted, approved, declined, requirements_sent, testing, act, production.
    #[schema(value_type = String)]
    pub step: Step,
    /// The day it happened, YYYY-MM-DD; today if absent; not in the future.
    pub on: Option<NaiveDate>,
    #[serde(default)]
    pub note: String,
    /// The act's number (step `act`).
    pub act_number: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub step: String,
    pub on: NaiveDate,
    pub at: String,
    pub actor: String,
    pub note: String,
    /// Working days after the review's deadline the application was answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_days: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    pub participant: String,
    /// review, shortcomings, declined, approved, requirements_sent, testing, connected, production.
    pub state: String,
    pub received_on: NaiveDate,
    /// The review's deadline: 10 working days after the application (5 for a bank or a caterer).
    pub review_due: NaiveDate,
    /// While in review past its deadline: how many working days late it is today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_on: Option<NaiveDate>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OverdueView {
    pub participant: String,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub received_on: NaiveDate,
    pub review_due: NaiveDate,
    pub working_days_late: i64,
}

fn changed_meanwhile() -> Problem {
    Problem::conflict(
        "connection-changed",
        "another step was recorded meanwhile; read the connection and decide again",
    )
}

fn calendar_problem(e: calendar::CalendarError) -> Problem {
    Problem::unavailable(format!("the production calendar cannot answer: {e}"))
}

fn late(ctx: &ServiceContext, due: NaiveDate, on: NaiveDate) -> Result<i64, Problem> {
    let mut failed = None;
    let n = rules::days_late(due, on, |a, b| {
        ctx.calendar.working_days_between(a, b).unwrap_or_else(|e| {
            failed = Some(e);
            0
        })
    });
    match failed {
        Some(e) => Err(calendar_problem(e)),
        None => Ok(n),
    }
}

fn kind_of(p: &ParticipantRow) -> Kind {
    Kind::parse(&p.kind).unwrap_or(Kind::Agency)
}

fn state_of(row: &ConnectionRow) -> Result<State, Problem> {
    State::parse(&row.state)
        .ok_or_else(|| Problem::internal(format!("unknown state {}", row.state)))
}

fn view(
    ctx: &ServiceContext,
    row: ConnectionRow,
    steps: Vec<StepRow>,
) -> Result<ConnectionView, Problem> {
    let today = ctx.clock.today();
    let overdue_days = if state_of(&row)? == State::Review && today > row.review_due {
        Some(late(ctx, row.review_due, today)?)
    } else {
        None
    };
    Ok(ConnectionView {
        participant: row.participant,
        state: row.state,
        received_on: row.received_on,
        review_due: row.review_due,
        overdue_days,
        act_number: row.act_number,
        act_on: row.act_on,
        steps: steps
            .into_iter()
            .map(|s| StepView {
                step: s.step,
                on: s.on_date,
                at: calendar::tyumen_iso(s.at),
                actor: s.actor,
                note: s.note,
                late_days: s.late_days,
            })
            .collect(),
    })
}

async fn load(
    ctx: &ServiceContext,
    code: &str,
) -> Result<(ParticipantRow, Option<ConnectionRow>), Problem> {
    let c = code.to_string();
    let (p, conn) = ctx
        .db
        .read(move |db| -> Result<_, storage::StorageError> {
            Ok((store::participant(db, &c)?, store::connection(db, &c)?))
        })
        .await?;
    Ok((p.ok_or_else(|| missing(code))?, conn))
}

/// The state a participant's connection gives it, if it has one: what its
/// rights and contour may be.
pub async fn state_for(ctx: &ServiceContext, code: &str) -> Result<Option<State>, Problem> {
    let c = code.to_string();
    let row = ctx.db.read(move |db| store::connection(db, &c)).await?;
    row.as_ref().map(state_of).transpose()
}

/// Start the connection procedure: the participant's application (Приложение
/// 2: the participant as registered) arrived; the review's deadline is set.
#[utoipa::path(post, path = "/api/gateway/participants/{code}/connection", tag = "gateway", request_body = StartBody,
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 201, body = ConnectionView), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "A procedure is under way, or the participant is in production already")))]
async fn start(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<StartBody>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let code = path.into_inner();
    let (participant, existing) = load(&ctx, &code).await?;
    if let Some(e) = &existing {
        if state_of(e)? != State::Declined {
            return Err(Problem::conflict(
                "connection-under-way",
                format!(
                    "participant {code}'s connection is at {}; record its next step instead",
                    e.state
                ),
            ));
        }
    }
    if participant.contour == "production" {
        return Err(Problem::conflict(
            "already-in-production",
            format!("participant {code} works in the production contour already"),
        ));
    }
    let today = ctx.clock.today();
    let received_on = body.received_on.unwrap_or(today);
    if received_on > today {
        return Err(Problem::invalid("received_on", "must not be in the future"));
    }
    let row = ConnectionRow {
        participant: code.clone(),
        state: State::Review.as_str().into(),
        received_on,
        review_due: review_due(&ctx, &participant, received_on)?,
        act_number: None,
        act_on: None,
        updated_at: ctx.clock.now().naive_utc(),
    };
    let taken = Taken {
        step: "received",
        on: received_on,
        note: body.into_inner().note,
        late_days: None,
        effect: None,
    };
    let from = existing.map(|e| e.state);
    Ok(HttpResponse::Created().json(record(&ctx, &caller, row, from, taken).await?))
}

/// The connection procedure of a participant, with its steps.
#[utoipa::path(get, path = "/api/gateway/participants/{code}/connection", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 200, body = ConnectionView), (status = 404, body = Problem)))]
async fn get(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let code = path.into_inner();
    let (_, row) = load(&ctx, &code).await?;
    let row = row.ok_or_else(|| {
        Problem::not_found(format!("participant {code} has no connection procedure"))
    })?;
    let c = code.clone();
    let steps = ctx.db.read(move |db| store::steps_of(db, &c)).await?;
    Ok(HttpResponse::Ok().json(view(&ctx, row, steps)?))
}

/// Record a step of the procedure. Ending a review records how many working
/// days late it was; `resubmitted` starts a new review; `declined` deactivates
/// the participant and revokes its rights; `act` needs the act's number;
/// `production` moves the participant to the production contour.
#[utoipa::path(post, path = "/api/gateway/participants/{code}/connection/steps", tag = "gateway", request_body = StepBody,
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 200, body = ConnectionView), (status = 400, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "The step cannot follow the current state; the problem lists those that can")))]
async fn step(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<StepBody>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let code = path.into_inner();
    let b = body.into_inner();
    let (participant, row) = load(&ctx, &code).await?;
    let mut row = row.ok_or_else(|| {
        Problem::not_found(format!(
            "participant {code} has no connection procedure; start it first"
        ))
    })?;
    let state = state_of(&row)?;
    let next = rules::next(state, b.step)
        .map_err(|e| Problem::conflict("step-out-of-order", e.to_string()))?;
    let today = ctx.clock.today();
    let on = b.on.unwrap_or(today);
    if on > today {
        return Err(Problem::invalid("on", "must not be in the future"));
    }
    if on < row.received_on {
        return Err(Problem::invalid(
            "on",
            format!(
                "must not be before the application arrived ({})",
                row.received_on
            ),
        ));
    }
    let late_days = if b.step.ends_review() {
        Some(late(&ctx, row.review_due, on)?)
    } else {
        None
    };
    match b.step {
        Step::Resubmitted => {
            row.received_on = on;
            row.review_due = review_due(&ctx, &participant, on)?;
        }
        Step::Act => {
            let number = b
                .act_number
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    Problem::invalid("act_number", "the act of connection's number is required")
                })?;
            row.act_number = Some(number.to_string());
            row.act_on = Some(on);
        }
        _ => {}
    }
    row.state = next.as_str().into();
    row.updated_at = ctx.clock.now().naive_utc();
    let taken = Taken {
        step: b.step.as_str(),
        on,
        note: b.note,
        late_days,
        effect: Some(b.step),
    };
    let from = Some(state.as_str().to_string());
    Ok(HttpResponse::Ok().json(record(&ctx, &caller, row, from, taken).await?))
}

/// The review's deadline for an application of `p` that arrived `on`.
fn review_due(
    ctx: &ServiceContext,
    p: &ParticipantRow,
    on: NaiveDate,
) -> Result<NaiveDate, Problem> {
    ctx.calendar
        .add_working_days(on, rules::review_days(kind_of(p)))
        .map_err(calendar_problem)
}

/// A step as recorded.
struct Taken {
    step: &'static str,
    on: NaiveDate,
    note: String,
    late_days: Option<i64>,
    /// What the step does to the participant (production, declined).
    effect: Option<Step>,
}

/// Saves `row` (if the procedure is still at `from`) with the step, applies
/// the step's effect on the participant and audits it, in one transaction;
/// the procedure as it now stands.
async fn record(
    ctx: &ServiceContext,
    caller: &Caller,
    row: ConnectionRow,
    from: Option<String>,
    taken: Taken,
) -> Result<ConnectionView, Problem> {
    let now = row.updated_at;
    let code = row.participant.clone();
    let step = StepRow {
        id: uuid::Uuid::now_v7().to_string(),
        participant: code.clone(),
        step: taken.step.into(),
        on_date: taken.on,
        at: now,
        actor: caller.subject.clone(),
        note: taken.note,
        late_days: taken.late_days,
    };
    let audit = audit_row(
        caller,
        "connection",
        &code,
        taken.step,
        from.clone(),
        Some(row.state.clone()),
        now,
    );
    let saved = row.clone();
    let steps = ctx
        .db
        .write(move |db| -> Result<_, storage::StorageError> {
            if !store::save_connection(db, &saved, &step, from.as_deref())? {
                return Ok(None);
            }
            match taken.effect {
                Some(Step::Production) => store::set_contour(db, &code, "production", true, now)?,
                Some(Step::Declined) => {
                    store::revoke_all(db, &code)?;
                    store::set_contour(db, &code, "test", false, now)?;
                }
                _ => {}
            }
            store::audit(db, &audit)?;
            store::steps_of(db, &code).map(Some)
        })
        .await?
        .ok_or_else(changed_meanwhile)?;
    view(ctx, row, steps)
}

/// Applications not answered within their deadline, with how many working
/// days late each is today.
#[utoipa::path(get, path = "/api/gateway/connections/overdue", tag = "gateway",
    security(("bearer" = [])), responses((status = 200, body = [OverdueView])))]
async fn overdue(ctx: web::Data<ServiceContext>, caller: Caller) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let rows = ctx
        .db
        .read(|db| -> Result<_, storage::StorageError> {
            let mut out = Vec::new();
            for c in store::connections_in(db, &[State::Review.as_str()])? {
                let p = store::participant(db, &c.participant)?;
                out.push((c, p));
            }
            Ok(out)
        })
        .await?;
    let today = ctx.clock.today();
    let mut out = Vec::new();
    for (c, p) in rows {
        if today <= c.review_due {
            continue;
        }
        let (name, kind) = p.map(|p| (p.name, p.kind)).unwrap_or_default();
        out.push(OverdueView {
            working_days_late: late(&ctx, c.review_due, today)?,
            participant: c.participant,
            name,
            kind,
            state: c.state,
            received_on: c.received_on,
            review_due: c.review_due,
        });
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.working_days_late));
    Ok(HttpResponse::Ok().json(out))
}

/// The act of connection (Приложение 3) as an XLSX document: the participant,
/// its technical specialist, the operations it may call and the procedure's
/// steps, with lines for the signatures. Only once the act is recorded.
#[utoipa::path(get, path = "/api/gateway/participants/{code}/connection/act", tag = "gateway",
    params(("code" = String, Path, description = "The participant's code")),
    security(("bearer" = [])), responses((status = 200, description = "XLSX"), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn act(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    operator(&caller)?;
    let code = path.into_inner();
    let (p, row) = load(&ctx, &code).await?;
    let row = row.ok_or_else(|| {
        Problem::not_found(format!("participant {code} has no connection procedure"))
    })?;
    let (Some(number), Some(on)) = (row.act_number.clone(), row.act_on) else {
        return Err(Problem::conflict(
            "no-act-yet",
            format!(
                "participant {code}'s connection is at {}; the act comes after testing",
                row.state
            ),
        ));
    };
    let c = code.clone();
    let (steps, rights) = ctx
        .db
        .read(move |db| -> Result<_, storage::StorageError> {
            Ok((store::steps_of(db, &c)?, store::rights_of(db, &c)?))
        })
        .await?;
    let contact: serde_json::Value = serde_json::from_str(&p.contacts).unwrap_or_default();
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let title = vec![
        format!("Акт № {number} о подключении Информационной системы к ПУ ТО"),
        format!("Дата: {}", on.format("%d.%m.%Y")),
        format!("Информационная система: {} (код {})", p.name, p.code),
        format!("ИНН {} · ОГРН {} · вид участника: {}", p.inn, p.ogrn, p.kind),
        format!(
            "Технический специалист: {}, тел. {}, {}",
            text(&contact, "name"),
            text(&contact, "phone"),
            text(&contact, "email")
        ),
        format!(
            "Разрешённые операции: {}",
            if rights.is_empty() { "—".to_string() } else { rights.join(", ") }
        ),
        "Подключение и тестирование в тестовом контуре проведены; Информационная система может быть переведена в продуктивный контур.".into(),
    ];
    let rows: Vec<Vec<Cell>> = steps
        .iter()
        .map(|s| {
            vec![
                Cell::Text(s.on_date.format("%d.%m.%Y").to_string()),
                Cell::Text(s.step.clone()),
                Cell::Text(s.actor.clone()),
                Cell::Text(s.note.clone()),
                Cell::Text(s.late_days.map(|d| d.to_string()).unwrap_or_default()),
            ]
        })
        .collect();
    let footer = vec![
        "От Оператора ПУ ТО: ____________________ / ____________________ /".to_string(),
        "От Оператора Информационной системы: ____________________ / ____________________ /"
            .to_string(),
    ];
    let body = platform::export::xlsx_titled(
        "Акт",
        &title,
        &["Дата", "Этап", "Кто", "Примечание", "Просрочка, раб. дней"],
        &rows,
        &footer,
    )
    .map_err(Problem::internal)?;
    Ok(platform::export::download(
        platform::export::XLSX,
        &format!(
            "act-{code}-{}.xlsx",
            number
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '-' })
                .collect::<String>()
        ),
        body,
    ))
}
