//! Class teachers: attendance marks, today's meal request (заявка на питание)
//! formed no later than an hour before the meal, exclusion by credit, the
//! actual confirmation of who ate until 23:00, the printable request. The
//! organizer's view of today's requests.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use platform::export::Cell;
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use storage::DbConnection;
use utoipa::{IntoParams, ToSchema};

use super::MealPrice;
use super::{local_now, resource, tyumen};
use crate::domain;
use crate::domain::requests::{self, LineSource};
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(data, "/api/meals/classes/{class}/attendance").route(web::post().to(mark)),
    )
    .service(
        resource(data, "/api/meals/classes/{class}/requests")
            .route(web::post().to(form))
            .route(web::get().to(class_requests)),
    )
    .service(resource(data, "/api/meals/requests/{id}").route(web::get().to(get_request)))
    .service(resource(data, "/api/meals/requests/{id}/print").route(web::get().to(print)))
    .service(resource(data, "/api/meals/requests/{id}/actual").route(web::put().to(actual)))
    .service(
        resource(data, "/api/meals/organizers/{organizer}/requests")
            .route(web::get().to(organizer_requests)),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(mark, form, class_requests, get_request, print, actual, organizer_requests),
    components(schemas(Attendance, Mark, FormRequest, RequestView, RequestLineView, Actual)),
    tags((name = "meals-requests", description = "Attendance, daily meal requests, confirmation of who ate"))
)]
pub struct RequestsApi;

fn teacher_of(caller: &Caller, class: &str) -> bool {
    caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::ClassTeacher) && caller.may_see_class(class))
}

async fn load_class(
    ctx: &ServiceContext,
    id: &str,
) -> Result<(store::Class, store::School), Problem> {
    let id = id.to_string();
    ctx.db
        .read(
            move |c| -> Result<Option<(store::Class, store::School)>, storage::StorageError> {
                let Some(k) = store::class(c, &id)? else {
                    return Ok(None);
                };
                let Some(s) = store::school(c, &k.school_id)? else {
                    return Ok(None);
                };
                Ok(Some((k, s)))
            },
        )
        .await?
        .ok_or_else(|| Problem::not_found("no such class"))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    pub account: String,
    pub present: bool,
}

/// The first lesson's attendance marks (the Electronic school sends them; they
/// also come over the bus as `school.attendance.marked.v1`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attendance {
    pub date: String,
    pub marks: Vec<Mark>,
}

#[utoipa::path(post, path = "/api/meals/classes/{class}/attendance", tag = "meals-requests", request_body = Attendance,
    security(("bearer" = [])), responses((status = 409, body = Problem), (status = 204), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn mark(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Attendance>,
) -> Result<HttpResponse, Problem> {
    let (class, school) = load_class(&ctx, &path.into_inner()).await?;
    // The class teacher, or the school's own information system.
    let school_system =
        caller.has_role(Role::InformationSystem) && caller.may_see_school(&school.id);
    if !(teacher_of(&caller, &class.id) || school_system) {
        return Err(Problem::not_found("no such class"));
    }
    let day = super::date("date", &body.date)?;
    let now = local_now(&ctx);
    if day != now.date() {
        return Err(Problem::invalid(
            "date",
            format!("attendance is marked for today, {}", now.date()),
        ));
    }
    let marks: Vec<(String, bool)> = body
        .marks
        .iter()
        .map(|m| (m.account.clone(), m.present))
        .collect();
    let at = ctx.clock.now().naive_utc();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            let unknown =
                store::requests::mark_attendance(c, &class.id, day, &marks, "teacher", at)?;
            if !unknown.is_empty() {
                // Rolls the whole batch back: nothing is recorded.
                return Err(Problem::invalid(
                    "marks",
                    format!("not in class {}: {}", class.id, unknown.join(", ")),
                ));
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormRequest {
    /// The school's meal time code (e.g. `lunch-1`).
    pub meal_time: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestLineView {
    pub account: String,
    pub student: String,
    pub complex: Option<String>,
    /// order, default (the «комплекс дня») or none.
    pub source: String,
    pub price: MealPrice,
    #[schema(value_type = String)]
    pub balance: Money,
    pub included: bool,
    /// Why the student is not in the request.
    pub reason: Option<String>,
    /// The teacher's confirmation of who ate (absent: as requested).
    pub ate: Option<bool>,
    pub category: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub school: String,
    pub class: String,
    pub class_name: String,
    pub date: String,
    pub meal_time: String,
    pub meal_kind: String,
    pub formed_by: String,
    pub formed_at: String,
    pub confirmed_at: Option<String>,
    /// The day closed: nothing changes any more.
    pub closed: bool,
    pub included: usize,
    pub excluded: usize,
    pub lines: Vec<RequestLineView>,
}

pub(crate) fn view(
    c: &mut DbConnection,
    id: &str,
) -> Result<Option<RequestView>, storage::StorageError> {
    let Some(r) = store::requests::request(c, id)? else {
        return Ok(None);
    };
    let rows = store::requests::lines_with_names(c, id)?;
    let class_name = store::class(c, &r.class_id)?
        .map(|k| k.name)
        .unwrap_or_default();
    let mut lines = Vec::new();
    for (l, name) in rows {
        let code = match &l.complex_id {
            Some(cid) => store::complex(c, cid)?.map(|x| x.code),
            None => None,
        };
        lines.push(RequestLineView {
            account: l.account,
            student: name,
            complex: code,
            source: l.source,
            price: MealPrice {
                price: Money::from_kopecks(l.price_kopecks),
                reimbursed: Money::from_kopecks(l.reimbursed_kopecks),
                extras: Money::from_kopecks(l.extras_kopecks),
                to_pay: Money::from_kopecks(l.to_pay_kopecks),
            },
            balance: Money::from_kopecks(l.balance_kopecks),
            included: l.included,
            reason: l.reason,
            ate: l.ate,
            category: l.category,
        });
    }
    let included = lines.iter().filter(|l| l.included).count();
    Ok(Some(RequestView {
        excluded: lines.len() - included,
        included,
        lines,
        id: r.id,
        school: r.school_id,
        class: r.class_id,
        class_name,
        date: r.date.to_string(),
        meal_time: r.meal_time,
        meal_kind: r.meal_kind,
        formed_by: r.formed_by,
        formed_at: tyumen(r.formed_at),
        confirmed_at: r.confirmed_at.map(tyumen),
        closed: r.closed,
    }))
}

/// Forms the request of `class` for `meal_time` today (the rules in [`domain`]).
pub fn form_request(
    c: &mut DbConnection,
    school: &store::School,
    class: &store::Class,
    meal_time: &store::MealTime,
    day: NaiveDate,
    who: &str,
    at: chrono::NaiveDateTime,
) -> Result<String, Problem> {
    if store::requests::request_exists(c, &class.id, day, &meal_time.code)? {
        return Err(Problem::conflict(
            "request-exists",
            format!(
                "class {} has a request for {day} {} already",
                class.id, meal_time.code
            ),
        ));
    }
    let org = store::organizer_of(c, school, class)?.ok_or_else(|| {
        Problem::conflict(
            "no-organizer",
            format!("school {} has no meal organizer yet", school.id),
        )
    })?;
    let kind = meal_time.kind.clone();
    let pupils = store::requests::pupils_of(c, &class.id)?;
    let id = uuid::Uuid::now_v7().to_string();
    let request = store::MealRequest {
        id: id.clone(),
        school_id: school.id.clone(),
        class_id: class.id.clone(),
        date: day,
        meal_time: meal_time.code.clone(),
        meal_kind: kind.clone(),
        closed: false,
        formed_by: who.to_string(),
        formed_at: at,
        confirmed_by: None,
        confirmed_at: None,
    };
    let credit = Money::from_kopecks(school.credit_limit_kopecks);
    let mut lines = Vec::new();
    for st in pupils.iter().filter(|s| s.eats(&kind)) {
        let present = store::requests::present(c, &st.account, day)?;
        let balance = store::balance(c, &st.account)?;
        let mut line = store::RequestLine {
            request_id: id.clone(),
            account: st.account.clone(),
            complex_id: None,
            source: LineSource::None.as_str().into(),
            price_kopecks: 0,
            reimbursed_kopecks: 0,
            extras_kopecks: 0,
            to_pay_kopecks: 0,
            balance_kopecks: balance.kopecks(),
            included: false,
            reason: None,
            ate: None,
            category: None,
            funder: None,
        };
        if let Err(why) = requests::attendance(present) {
            line.reason = Some(why.to_string());
            lines.push(line);
            continue;
        }
        let order = store::parents::order(c, &st.account, day, &kind)?;
        let ordered = match order {
            Some(o) => Some((
                o.complex_id
                    .as_deref()
                    .map(|id| store::complex(c, id))
                    .transpose()?
                    .flatten(),
                o.extras,
            )),
            None => None,
        };
        let chosen = ordered
            .as_ref()
            .map(|(_, e)| store::extras_of(e))
            .unwrap_or_default();
        let served = requests::complex_served(ordered.map(|(cx, _)| cx), || {
            Ok::<_, storage::StorageError>(
                store::offered(c, school, &org, st, day, &kind)?
                    .into_iter()
                    .find(|(_, d)| *d)
                    .map(|(x, _)| x),
            )
        })?;
        let (complex, source) = match served {
            Ok(s) => s,
            Err(why) => {
                line.reason = Some(why.to_string());
                lines.push(line);
                continue;
            }
        };
        let extras = store::extras_total(c, &chosen)?;
        let (price, rate) = store::price_for(c, school, st, Some(&complex), &kind, extras)?;
        let pending = store::pending(c, &st.account, Some(&id))?;
        line.complex_id = Some(complex.id);
        line.source = source.as_str().into();
        line.price_kopecks = price.price.kopecks();
        line.reimbursed_kopecks = price.reimbursed.kopecks();
        line.extras_kopecks = price.extras.kopecks();
        line.to_pay_kopecks = price.to_pay.kopecks();
        line.category = rate.as_ref().map(|r| r.category.clone());
        line.funder = rate.map(|r| r.funder);
        match requests::within_credit(balance, pending, price.to_pay, credit) {
            Err(why) => line.reason = Some(why.to_string()),
            Ok(()) => line.included = true,
        }
        lines.push(line);
    }
    store::requests::insert_request(c, &request, &lines)?;
    Ok(id)
}

/// Form today's request for the class and a meal time, no later than an hour
/// before it. Absent students and those whose balance would go below the
/// credit limit are listed as excluded, with the reason.
#[utoipa::path(post, path = "/api/meals/classes/{class}/requests", tag = "meals-requests", request_body = FormRequest,
    security(("bearer" = [])),
    responses((status = 422, body = Problem), (status = 201, body = RequestView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn form(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<FormRequest>,
) -> Result<HttpResponse, Problem> {
    let class = path.into_inner();
    if !teacher_of(&caller, &class) {
        return Err(Problem::not_found("no such class"));
    }
    let (class, school) = load_class(&ctx, &class).await?;
    let now = local_now(&ctx);
    let day = now.date();
    if !ctx
        .calendar
        .is_working_day(day)
        .map_err(|e| Problem::unprocessable("calendar", "No production calendar", e.to_string()))?
    {
        return Err(Problem::invalid(
            "date",
            format!("{day} is not a school day"),
        ));
    }
    let code = body.into_inner().meal_time;
    let who = caller.subject.clone();
    let at = ctx.clock.now().naive_utc();
    let id = ctx
        .db
        .write(move |c| -> Result<String, Problem> {
            let mt = store::requests::meal_time(c, &school.id, &code)?
                .filter(|m| m.shift == class.shift)
                .ok_or_else(|| Problem::invalid("meal_time", format!("school {} has no meal time {code} for shift {}", school.id, class.shift)))?;
            let starts = domain::parse_clock(&mt.starts_at).ok_or_else(|| Problem::internal("bad meal time"))?;
            let deadline = domain::request_deadline(day, starts);
            if now > deadline {
                return Err(Problem::conflict(
                    "request-frozen",
                    format!("the request for {code} had to be formed by {} (an hour before the meal); the organizer works from what there is", deadline.format("%H:%M")),
                ));
            }
            let id = form_request(c, &school, &class, &mt, day, &who, at)?;
            // The organizer's accounting system hears of it (through the gateway).
            if let Some(event) = crate::events::class_request_ready(c, &id, "formed")
                .map_err(|e| Problem::internal(e.to_string()))?
            {
                bus::store::enqueue(c, &event)?;
            }
            Ok(id)
        })
        .await?;
    ctx.bus.wake_relay();
    let v = ctx
        .db
        .read(move |c| view(c, &id))
        .await?
        .ok_or_else(|| Problem::internal("request vanished"))?;
    Ok(HttpResponse::Created().json(v))
}

/// Whether the caller may see a request: the class's teacher, the school's meal
/// admin, the organizer serving the school, the municipality's officer.
async fn visible(
    ctx: &ServiceContext,
    caller: &Caller,
    id: &str,
) -> Result<(RequestView, store::School), Problem> {
    let id = id.to_string();
    let found = ctx
        .db
        .read(
            move |c| -> Result<
                Option<(RequestView, store::School, Vec<String>)>,
                storage::StorageError,
            > {
                let Some(v) = view(c, &id)? else {
                    return Ok(None);
                };
                let Some(s) = store::school(c, &v.school)? else {
                    return Ok(None);
                };
                let orgs = store::organizers_of_school(c, &s)?;
                Ok(Some((v, s, orgs)))
            },
        )
        .await?;
    match found {
        Some((v, s, orgs))
            if teacher_of(caller, &v.class) || super::may_read_school(caller, &s, &orgs) =>
        {
            Ok((v, s))
        }
        _ => Err(Problem::not_found("no such request")),
    }
}

#[utoipa::path(get, path = "/api/meals/requests/{id}", tag = "meals-requests", security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 404, body = Problem)))]
async fn get_request(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (v, _) = visible(&ctx, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The request as a printable XLSX sheet (class, date, meal time, the students
/// with complex and amounts, totals, room for signatures).
#[utoipa::path(get, path = "/api/meals/requests/{id}/print", tag = "meals-requests", security(("bearer" = [])),
    responses((status = 200, description = "XLSX", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404, body = Problem)))]
async fn print(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (v, school) = visible(&ctx, &caller, &path).await?;
    let title = vec![
        "Заявка на питание".to_string(),
        format!("{} — класс {}", school.name, v.class_name),
        format!(
            "Дата: {}   Время питания: {} ({})",
            v.date, v.meal_time, v.meal_kind
        ),
        format!("Сформирована: {} ({})", v.formed_at, v.formed_by),
    ];
    let headings = [
        "№",
        "Лицевой счёт",
        "Ученик",
        "Комплекс",
        "Источник",
        "Цена",
        "Возмещение (ПЧВР)",
        "Доп. меню",
        "К оплате",
        "Баланс",
        "В заявке",
        "Причина исключения",
        "Питался",
    ];
    let mut rows = Vec::new();
    let (mut n, mut sum) = (0i64, 0i64);
    for (i, l) in v.lines.iter().enumerate() {
        if l.included {
            n += 1;
            sum += l.price.to_pay.kopecks();
        }
        rows.push(vec![
            Cell::Int(i64::try_from(i + 1).unwrap_or(0)),
            Cell::Text(l.account.clone()),
            Cell::Text(l.student.clone()),
            Cell::Text(l.complex.clone().unwrap_or_default()),
            Cell::Text(
                match l.source.as_str() {
                    "order" => "заказ",
                    "default" => "комплекс дня",
                    _ => "—",
                }
                .into(),
            ),
            Cell::Money(l.price.price),
            Cell::Money(l.price.reimbursed),
            Cell::Money(l.price.extras),
            Cell::Money(l.price.to_pay),
            Cell::Money(l.balance),
            Cell::Text(if l.included { "да" } else { "нет" }.into()),
            Cell::Text(l.reason.clone().unwrap_or_default()),
            Cell::Text(
                match l.ate {
                    Some(true) => "да",
                    Some(false) => "нет",
                    None => "",
                }
                .into(),
            ),
        ]);
    }
    let footer = vec![
        format!(
            "Итого в заявке: {n} уч., к оплате {}",
            Money::from_kopecks(sum)
        ),
        "Классный руководитель: ____________________".to_string(),
        "Представитель организатора питания: ____________________".to_string(),
    ];
    let bytes = platform::export::xlsx_titled("Заявка", &title, &headings, &rows, &footer)
        .map_err(Problem::internal)?;
    Ok(platform::export::download(
        platform::export::XLSX,
        &format!("zayavka-{}-{}-{}.xlsx", v.class, v.date, v.meal_time),
        bytes,
    ))
}

/// Who actually ate: the accounts of the request's students who did.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actual {
    pub ate: Vec<String>,
}

#[utoipa::path(put, path = "/api/meals/requests/{id}/actual", tag = "meals-requests", request_body = Actual, security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The day closed, or a student the request left out for credit would still be over the credit limit (`over-credit-limit`, naming the student); nothing was changed")))]
async fn actual(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<Actual>,
) -> Result<HttpResponse, Problem> {
    let (v, _) = visible(&ctx, &caller, &path).await?;
    if !teacher_of(&caller, &v.class) {
        return Err(Problem::forbidden(
            "only the class teacher confirms who ate",
        ));
    }
    let day = super::date("date", &v.date)?;
    let now = local_now(&ctx);
    let close = domain::close_moment(day, ctx.settings.meals.close_at);
    if v.closed || now >= close {
        return Err(Problem::conflict(
            "day-closed",
            format!(
                "the day {day} closed at {}; nothing can change",
                close.format("%H:%M")
            ),
        ));
    }
    let known: std::collections::BTreeSet<&str> =
        v.lines.iter().map(|l| l.account.as_str()).collect();
    let strangers: Vec<&str> = body
        .ate
        .iter()
        .map(String::as_str)
        .filter(|a| !known.contains(a))
        .collect();
    if !strangers.is_empty() {
        return Err(Problem::invalid(
            "ate",
            format!("not in this request: {}", strangers.join(", ")),
        ));
    }
    let ate: std::collections::BTreeSet<String> = body.into_inner().ate.into_iter().collect();
    let (id, who, at) = (
        v.id.clone(),
        caller.subject.clone(),
        ctx.clock.now().naive_utc(),
    );
    let school_id = v.school.clone();
    let id2 = id.clone();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            // The closer may have taken the day meanwhile.
            if store::requests::is_closed(c, &id)? {
                return Err(Problem::conflict(
                    "day-closed",
                    "the day closed; nothing can change",
                ));
            }
            let lines = store::requests::line_states(c, &id)?;
            let credit = store::school(c, &school_id)?
                .map(|s| Money::from_kopecks(s.credit_limit_kopecks))
                .ok_or_else(|| Problem::internal("the request's school vanished"))?;
            for store::requests::LineState {
                account,
                complex_id: complex,
                included,
                to_pay_kopecks: to_pay,
            } in lines
            {
                let did = ate.contains(&account);
                if did && complex.is_none() {
                    return Err(Problem::invalid(
                        "ate",
                        format!("{account} has no complex in this request"),
                    ));
                }
                // 003 §3.2.2: the teacher changes the request when the credit
                // is exceeded, and the school's credit is the most a student
                // may eat on credit. A student the request left out for credit
                // is confirmed only if the money now allows it (a parent
                // topped up since); then the line counts like any other.
                let now_included = if did && !included {
                    let balance = store::balance(c, &account)?;
                    let pending = store::pending(c, &account, Some(&id))?;
                    if let Some(reason) = domain::credit_exclusion(
                        balance,
                        pending,
                        Money::from_kopecks(to_pay),
                        credit,
                    ) {
                        return Err(Problem::conflict(
                            "over-credit-limit",
                            format!("{account}: {reason}; nothing was changed"),
                        )
                        .field("ate", format!("{account} is over the credit limit")));
                    }
                    true
                } else {
                    included
                };
                store::requests::set_ate(c, &id, &account, did, now_included)?;
            }
            store::requests::confirm(c, &id, &who, at)?;
            Ok(())
        })
        .await?;
    let v = ctx
        .db
        .read(move |c| view(c, &id2))
        .await?
        .ok_or_else(|| Problem::internal("request vanished"))?;
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    /// `YYYY-MM-DD`; today by default.
    pub date: Option<String>,
}

#[utoipa::path(get, path = "/api/meals/classes/{class}/requests", tag = "meals-requests", params(DayQuery), security(("bearer" = [])),
    responses((status = 200, body = [RequestView]), (status = 404, body = Problem)))]
async fn class_requests(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    q: web::Query<DayQuery>,
) -> Result<HttpResponse, Problem> {
    let class = path.into_inner();
    if !teacher_of(&caller, &class) {
        return Err(Problem::not_found("no such class"));
    }
    let day = q
        .date
        .as_deref()
        .map(|d| super::date("date", d))
        .transpose()?
        .unwrap_or(local_now(&ctx).date());
    let out = ctx
        .db
        .read(
            move |c| -> Result<Vec<RequestView>, storage::StorageError> {
                let ids = store::requests::class_request_ids(c, &class, day)?;
                let mut out = Vec::new();
                for id in ids {
                    out.extend(view(c, &id)?);
                }
                Ok(out)
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The organizer's canteen view: today's requests of the schools it serves,
/// per class.
#[utoipa::path(get, path = "/api/meals/organizers/{organizer}/requests", tag = "meals-requests", params(DayQuery), security(("bearer" = [])),
    responses((status = 200, body = [RequestView]), (status = 403, body = Problem)))]
async fn organizer_requests(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    q: web::Query<DayQuery>,
) -> Result<HttpResponse, Problem> {
    let org = path.into_inner();
    super::require_organizer(&caller, &org)?;
    let day = q
        .date
        .as_deref()
        .map(|d| super::date("date", d))
        .transpose()?
        .unwrap_or(local_now(&ctx).date());
    let out = ctx
        .db
        .read(move |c| requests_of_organizer(c, &org, day, None))
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The requests of `day` of the schools `org` serves (only `school`'s when
/// given), per class. The REST and the SOAP door both call it.
pub(super) fn requests_of_organizer(
    c: &mut DbConnection,
    org: &str,
    day: chrono::NaiveDate,
    school: Option<&str>,
) -> Result<Vec<RequestView>, storage::StorageError> {
    let reqs = store::requests::requests_of_day(c, day)?;
    let mut out = Vec::new();
    for r in reqs {
        if school.is_some_and(|s| s != r.school_id) {
            continue;
        }
        let (Some(s), Some(k)) = (
            store::school(c, &r.school_id)?,
            store::class(c, &r.class_id)?,
        ) else {
            continue;
        };
        if store::organizer_of(c, &s, &k)?.as_deref() == Some(org) {
            out.extend(view(c, &r.id)?);
        }
    }
    Ok(out)
}
