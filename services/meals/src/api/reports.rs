//! Reports: the organizer's procurement (orders two weeks ahead) and printable
//! menus; for meal admins, municipal officers and ДОН balances by
//! school/class/student, money flow, subsidy (ПЧВР) spending per category,
//! school–organizer links; the day-close status. JSON, CSV or XLSX.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{Duration, NaiveDate};
use platform::export::Cell;
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use storage::{DbConnection, StorageError};
use utoipa::{IntoParams, ToSchema};

use super::{local_now, resource, tyumen};
use crate::domain;
use crate::domain::close::WriteOffStatus;
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(data, "/api/meals/organizers/{organizer}/procurement")
            .route(web::get().to(procurement)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/menus/print").route(web::get().to(print_menu)),
    )
    .service(resource(data, "/api/meals/reports/balances").route(web::get().to(balances_report)))
    .service(resource(data, "/api/meals/reports/money-flow").route(web::get().to(money_flow)))
    .service(resource(data, "/api/meals/reports/subsidies").route(web::get().to(subsidies)))
    .service(resource(data, "/api/meals/reports/links").route(web::get().to(links)))
    .service(resource(data, "/api/meals/day-closes").route(web::get().to(day_close_status)));
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(procurement, print_menu, balances_report, money_flow, subsidies, links, day_close_status),
    components(schemas(Table, DayCloseStatus)),
    tags((name = "meals-reports", description = "Procurement, balances, money flow, subsidies, links, day closes"))
)]
pub struct ReportsApi;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub school: Option<String>,
    pub municipality: Option<String>,
    /// `YYYY-MM-DD`
    pub from: Option<String>,
    pub to: Option<String>,
    pub date: Option<String>,
    /// json (default), csv or xlsx.
    pub format: Option<String>,
}

/// A report as a table: headings and rows (money as "1250.50").
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Table {
    pub title: String,
    pub headings: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

fn answer(
    format: Option<&str>,
    name: &str,
    title: &str,
    headings: &[&str],
    rows: Vec<Vec<Cell>>,
) -> Result<HttpResponse, Problem> {
    match format.unwrap_or("json") {
        "json" => {
            let rows = rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|c| match c {
                            Cell::Text(t) => serde_json::Value::String(t),
                            Cell::Money(m) => serde_json::Value::String(m.to_string()),
                            Cell::Int(n) => serde_json::Value::from(n),
                        })
                        .collect()
                })
                .collect();
            Ok(HttpResponse::Ok().json(Table {
                title: title.into(),
                headings: headings.iter().map(|h| h.to_string()).collect(),
                rows,
            }))
        }
        f @ ("csv" | "xlsx") => platform::export::file_response(f, name, headings, &rows),
        other => Err(Problem::invalid(
            "format",
            format!("{other:?} is not json, csv or xlsx"),
        )),
    }
}

fn period(q: &Scope, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Problem> {
    super::span(
        q.from.as_deref(),
        q.to.as_deref(),
        (today - Duration::days(30), today),
        400,
    )
}

/// The schools a report may cover for the caller: one school (its meal admin,
/// the municipality's officer, the Operator) or a municipality's schools (its
/// officer, the Operator; ДОН staff hold the region's municipalities).
async fn schools_in_scope(
    ctx: &ServiceContext,
    caller: &Caller,
    q: &Scope,
) -> Result<Vec<store::School>, Problem> {
    match (&q.school, &q.municipality) {
        (Some(id), _) => {
            let s = super::load_school(ctx, id).await?;
            let ok = caller.has_role(Role::OperatorAdmin)
                || (caller.has_role(Role::MealAdmin) && caller.may_see_school(&s.id))
                || (caller.has_role(Role::MunicipalOfficer)
                    && caller.may_see_municipality(&s.municipality));
            if ok {
                Ok(vec![s])
            } else {
                Err(Problem::forbidden(format!(
                    "school {id} is not yours to report on"
                )))
            }
        }
        (None, Some(m)) => {
            super::require_municipal(caller, m)?;
            let m = m.clone();
            Ok(ctx
                .db
                .read(move |c| store::reports::schools_of(c, &m))
                .await?)
        }
        (None, None) => Err(Problem::invalid(
            "school",
            "give `school` or `municipality`",
        )),
    }
}

/// Balances by school, class and student (as payments last reported them).
/// Class teachers may ask for their school and see their own classes.
#[utoipa::path(get, path = "/api/meals/reports/balances", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = Table), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn balances_report(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let teacher_classes: Option<Vec<String>> = if caller.has_role(Role::ClassTeacher)
        && !caller.has_role(Role::MealAdmin)
        && !caller.has_role(Role::MunicipalOfficer)
        && !caller.has_role(Role::OperatorAdmin)
    {
        Some(caller.classes.iter().cloned().collect())
    } else {
        None
    };
    let list = match (&teacher_classes, &q.school) {
        (Some(_), Some(id)) => vec![super::load_school(&ctx, id).await?],
        _ => schools_in_scope(&ctx, &caller, &q).await?,
    };
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<(String, String, String, String, Option<i64>)> = ctx
        .db
        .read(move |c| store::reports::balances_in(c, &ids, teacher_classes.as_deref()))
        .await?;
    let cells = rows
        .into_iter()
        .map(|(s, k, a, n, b)| {
            vec![
                Cell::Text(s),
                Cell::Text(k),
                Cell::Text(a),
                Cell::Text(n),
                Cell::Money(Money::from_kopecks(b.unwrap_or(0))),
            ]
        })
        .collect();
    answer(
        q.format.as_deref(),
        "balances",
        "Балансы лицевых счетов",
        &["Школа", "Класс", "Лицевой счёт", "Ученик", "Баланс"],
        cells,
    )
}

/// Money flow: per school and day, the meals written off, what parents paid,
/// what the budget reimbursed, and payments' answers.
#[utoipa::path(get, path = "/api/meals/reports/money-flow", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = Table), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn money_flow(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let list = schools_in_scope(&ctx, &caller, &q).await?;
    let (from, to) = period(&q, local_now(&ctx).date())?;
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<(String, NaiveDate, String, i64, i64)> = ctx
        .db
        .read(move |c| store::reports::write_offs_in(c, &ids, from, to))
        .await?;
    let mut acc: BTreeMap<(String, NaiveDate), [i64; 6]> = BTreeMap::new();
    for (s, d, status, amount, reimbursed) in rows {
        let e = acc.entry((s, d)).or_default();
        e[0] += 1;
        e[1] += amount;
        e[2] += reimbursed;
        match WriteOffStatus::parse(&status) {
            Some(WriteOffStatus::Accepted) => e[3] += 1,
            Some(WriteOffStatus::Refused) => e[4] += 1,
            _ => e[5] += 1,
        }
    }
    let cells = acc
        .into_iter()
        .map(|((s, d), v)| {
            vec![
                Cell::Text(s),
                Cell::Text(d.to_string()),
                Cell::Int(v[0]),
                Cell::Money(Money::from_kopecks(v[1])),
                Cell::Money(Money::from_kopecks(v[2])),
                Cell::Money(Money::from_kopecks(v[1] + v[2])),
                Cell::Int(v[3]),
                Cell::Int(v[4]),
                Cell::Int(v[5]),
            ]
        })
        .collect();
    answer(
        q.format.as_deref(),
        "money-flow",
        "Движение средств за питание",
        &[
            "Школа",
            "Дата",
            "Питаний",
            "Оплачено родителями",
            "Возмещено бюджетом",
            "Всего",
            "Списано",
            "Отказано",
            "Ожидает ответа",
        ],
        cells,
    )
}

/// Subsidy spending: per ПЧВР category and funder, meals and the reimbursed sum.
#[utoipa::path(get, path = "/api/meals/reports/subsidies", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = Table), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn subsidies(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let list = schools_in_scope(&ctx, &caller, &q).await?;
    let (from, to) = period(&q, local_now(&ctx).date())?;
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<(Option<String>, Option<String>, i64)> = ctx
        .db
        .read(move |c| store::reports::reimbursements_in(c, &ids, from, to))
        .await?;
    let mut acc: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (cat, funder, k) in rows {
        let e = acc
            .entry((cat.unwrap_or_default(), funder.unwrap_or_default()))
            .or_default();
        e.0 += 1;
        e.1 += k;
    }
    let cells = acc
        .into_iter()
        .map(|((cat, funder), (n, k))| {
            vec![
                Cell::Text(cat),
                Cell::Text(funder),
                Cell::Int(n),
                Cell::Money(Money::from_kopecks(k)),
            ]
        })
        .collect();
    answer(
        q.format.as_deref(),
        "subsidies",
        "Расходы на возмещение (ПЧВР)",
        &["Категория ПЧВР", "Источник", "Питаний", "Возмещено"],
        cells,
    )
}

/// School–organizer links (whole schools and buildings with their own).
#[utoipa::path(get, path = "/api/meals/reports/links", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = Table), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn links(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let list = schools_in_scope(&ctx, &caller, &q).await?;
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let bs: Vec<(String, String, String, Option<String>)> = ctx
        .db
        .read(move |c| store::reports::buildings_in(c, &ids))
        .await?;
    let mut cells = Vec::new();
    for s in &list {
        cells.push(vec![
            Cell::Text(s.id.clone()),
            Cell::Text(s.name.clone()),
            Cell::Text("—".into()),
            Cell::Text(s.organizer.clone().unwrap_or_default()),
        ]);
        for (_, bid, bname, org) in bs.iter().filter(|b| b.0 == s.id) {
            cells.push(vec![
                Cell::Text(s.id.clone()),
                Cell::Text(s.name.clone()),
                Cell::Text(format!("{bid} {bname}")),
                Cell::Text(
                    org.clone()
                        .or_else(|| s.organizer.clone())
                        .unwrap_or_default(),
                ),
            ]);
        }
    }
    answer(
        q.format.as_deref(),
        "links",
        "Привязка школ к организаторам питания",
        &["Школа", "Название", "Корпус", "Организатор питания"],
        cells,
    )
}

/// The organizer's procurement: per school, day, meal kind and complex, the
/// confirmed orders and the students expected on the «комплекс дня».
#[utoipa::path(get, path = "/api/meals/organizers/{organizer}/procurement", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = Table), (status = 403, body = Problem)))]
async fn procurement(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let org = path.into_inner();
    super::require_organizer(&caller, &org)?;
    let (from, to) = super::span(
        q.from.as_deref(),
        q.to.as_deref(),
        super::next_two_weeks(local_now(&ctx).date()),
        62,
    )?;
    let cells = ctx
        .db
        .read(move |c| procurement_rows(c, &org, from, to))
        .await?;
    answer(
        q.format.as_deref(),
        "procurement",
        "Заказы на две недели",
        &[
            "Школа",
            "Дата",
            "Приём пищи",
            "Комплекс",
            "Подтверждённых заказов",
            "По комплексу дня (без заказа)",
            "Всего",
        ],
        cells,
    )
}

pub(super) fn procurement_rows(
    c: &mut DbConnection,
    org: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Vec<Cell>>, StorageError> {
    let all = store::reports::all_schools(c)?;
    let mut out = Vec::new();
    for s in all {
        let class_rows = store::classes_of_school(c, &s.id)?;
        let mut served = Vec::new();
        for k in &class_rows {
            if store::organizer_of(c, &s, k)?.as_deref() == Some(org) {
                served.push(k.id.clone());
            }
        }
        if served.is_empty() {
            continue;
        }
        let pupils = store::reports::active_students_in(c, &served)?;
        let accounts: Vec<String> = pupils.iter().map(|p| p.account.clone()).collect();
        let ords = store::reports::orders_in(c, &accounts, from, to)?;
        let menus = store::reports::menus_in(c, &s.id, from, to)?;
        let mut acc: BTreeMap<(NaiveDate, String, String), (i64, i64)> = BTreeMap::new();
        for (_, d, kind, cid, confirmed) in &ords {
            if *confirmed {
                let code = cid
                    .as_deref()
                    .and_then(|id| id.rsplit_once(".v").map(|(code, _)| code.to_string()))
                    .unwrap_or_else(|| "—".into());
                acc.entry((*d, kind.clone(), code)).or_default().0 += 1;
            }
        }
        for (d, kind, code, is_default) in &menus {
            if !*is_default {
                continue;
            }
            let without = pupils
                .iter()
                .filter(|p| p.eats(kind) && !p.home_schooled)
                .filter(|p| {
                    !ords
                        .iter()
                        .any(|(a, od, ok, _, _)| *a == p.account && od == d && ok == kind)
                })
                .count();
            acc.entry((*d, kind.clone(), code.clone())).or_default().1 +=
                i64::try_from(without).unwrap_or(0);
        }
        for ((d, kind, code), (n, dflt)) in acc {
            out.push(vec![
                Cell::Text(s.id.clone()),
                Cell::Text(d.to_string()),
                Cell::Text(kind),
                Cell::Text(code),
                Cell::Int(n),
                Cell::Int(dflt),
                Cell::Int(n + dflt),
            ]);
        }
    }
    Ok(out)
}

/// The school's menu for a period as a printable XLSX: per day and meal kind
/// the complexes with their dishes and prices; the «комплекс дня» marked.
#[utoipa::path(get, path = "/api/meals/schools/{school}/menus/print", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, description = "XLSX"), (status = 404, body = Problem)))]
async fn print_menu(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let (school, orgs) = super::readable_school(&ctx, &caller, &path).await?;
    let today = local_now(&ctx).date();
    let from = q
        .from
        .as_deref()
        .map(|s| super::date("from", s))
        .transpose()?
        .unwrap_or(today);
    let to =
        q.to.as_deref()
            .map(|s| super::date("to", s))
            .transpose()?
            .unwrap_or(today + Duration::days(domain::ORDER_HORIZON_DAYS));
    let sid = school.id.clone();
    let rows = ctx
        .db
        .read(move |c| -> Result<Vec<Vec<Cell>>, StorageError> {
            let menus = store::reports::menus_in(c, &sid, from, to)?;
            let mut out = Vec::new();
            for (d, kind, code, dflt) in menus {
                let mut cx = None;
                for o in &orgs {
                    if let Some(x) = store::current_complex(c, o, &code)? {
                        cx = Some(x);
                        break;
                    }
                }
                let Some(cx) = cx else { continue };
                let ids: Vec<String> = serde_json::from_str(&cx.dishes).unwrap_or_default();
                let names = store::reports::dish_names(c, &ids)?;
                out.push(vec![
                    Cell::Text(d.to_string()),
                    Cell::Text(kind),
                    Cell::Text(format!("{} {}", cx.code, cx.name)),
                    Cell::Text(names.join(", ")),
                    Cell::Text(format!("{} / {}", cx.menu_type, cx.age_category)),
                    Cell::Money(Money::from_kopecks(cx.price_kopecks)),
                    Cell::Text(if dflt { "комплекс дня" } else { "" }.into()),
                ]);
            }
            Ok(out)
        })
        .await?;
    let title = vec![format!("Меню: {}", school.name), format!("{from} — {to}")];
    let bytes = platform::export::xlsx_titled(
        "Меню",
        &title,
        &[
            "Дата",
            "Приём пищи",
            "Комплекс",
            "Блюда",
            "Вид меню / возраст",
            "Цена",
            "",
        ],
        &rows,
        &[],
    )
    .map_err(Problem::internal)?;
    Ok(platform::export::download(
        platform::export::XLSX,
        &format!("menu-{}-{from}-{to}.xlsx", school.id),
        bytes,
    ))
}

/// Whether (and how) a school's day closed, and what payments answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayCloseStatus {
    pub school: String,
    pub date: String,
    /// Tyumen time of the close; none while the day is open.
    pub closed_at: Option<String>,
    /// Closed by catch-up after the service was down at the close time.
    pub late: bool,
    pub debits: i64,
    /// The parents' part of the debits written off or still waiting for
    /// payments' answer (refused ones are not counted).
    #[schema(value_type = String)]
    pub to_pay: Money,
    /// The budget's part (ПЧВР) of the same debits.
    #[schema(value_type = String)]
    pub reimbursed: Money,
    /// Both parts of the debits payments refused (the credit limit).
    #[schema(value_type = String)]
    pub refused_amount: Money,
    pub accepted: i64,
    pub refused: i64,
    /// Sent, no answer from payments yet.
    pub waiting: i64,
}

/// The day close per school (for the operator at 23:05): closed or not, when,
/// how many debits, and how payments answered them.
#[utoipa::path(get, path = "/api/meals/day-closes", tag = "meals-reports", params(Scope), security(("bearer" = [])),
    responses((status = 200, body = [DayCloseStatus]), (status = 403, body = Problem)))]
async fn day_close_status(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    q: web::Query<Scope>,
) -> Result<HttpResponse, Problem> {
    let today = local_now(&ctx).date();
    let day = q
        .date
        .as_deref()
        .map(|s| super::date("date", s))
        .transpose()?
        .unwrap_or(today);
    let list = if q.school.is_none() && q.municipality.is_none() {
        caller.require(&[Role::OperatorAdmin])?;
        ctx.db.read(store::reports::all_schools).await?
    } else {
        schools_in_scope(&ctx, &caller, &q).await?
    };
    let out = ctx
        .db
        .read(move |c| -> Result<Vec<DayCloseStatus>, StorageError> {
            let mut out = Vec::new();
            for s in list {
                let row = store::reports::day_close(c, &s.id, day)?;
                let offs = store::reports::write_offs_of_day(c, &s.id, day)?;
                let count =
                    |w: &str| i64::try_from(offs.iter().filter(|x| x.0 == w).count()).unwrap_or(0);
                // A refused debit moved no money: neither the parent's part nor
                // the budget's is counted as written off or reimbursed.
                let sum = |refused: bool, part: fn(&(String, i64, i64)) -> i64| {
                    Money::from_kopecks(
                        offs.iter()
                            .filter(|x| (x.0 == WriteOffStatus::Refused.as_str()) == refused)
                            .map(part)
                            .sum(),
                    )
                };
                out.push(DayCloseStatus {
                    school: s.id,
                    date: day.to_string(),
                    closed_at: row.as_ref().map(|r| tyumen(r.closed_at)),
                    late: row.as_ref().is_some_and(|r| r.late),
                    debits: row.as_ref().map_or(0, |r| i64::from(r.debits)),
                    to_pay: sum(false, |x| x.1),
                    reimbursed: sum(false, |x| x.2),
                    refused_amount: sum(true, |x| x.1 + x.2),
                    accepted: count("accepted"),
                    refused: count(WriteOffStatus::Refused.as_str()),
                    waiting: count(WriteOffStatus::Sent.as_str()),
                });
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}
