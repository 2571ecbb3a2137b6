//! Reports on the personal accounts: balances per school and class (for the
//! organizer, the school's meal admin, the municipality and the operator), the
//! daily turnover of an organizer's accounts, and totals per municipality. Each
//! caller sees only their own scope.

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{file_response, ApiError};
use crate::export::Cell;
use crate::store::reports::{self, Filter};

pub fn scope(ctx: &ServiceContext) -> actix_web::Scope {
    web::scope("/api/payments/reports")
        .app_data(web::Data::new(ctx.clone()))
        .route("/balances", web::get().to(balances))
        .route("/turnover", web::get().to(turnover))
        .route("/municipalities", web::get().to(municipalities))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(balances, turnover, municipalities),
    components(schemas(BalancesPage, BalanceRow, TurnoverReport, TurnoverRow, MunicipalityRow)),
    tags((name = "reports", description = "Balances, turnover and municipal totals of personal accounts"))
)]
pub struct ReportsApi;

/// The accounts a caller may report on; deny by default.
fn filter_of(caller: &Caller) -> Result<Filter, Problem> {
    if caller.has_role(Role::OperatorAdmin) {
        return Ok(Filter::default());
    }
    let mut f = Filter::default();
    if caller.has_role(Role::MealOrganizer) && !caller.organizers.is_empty() {
        f.organizers = caller.organizers.iter().cloned().collect();
    } else if caller.has_role(Role::MealAdmin) && !caller.schools.is_empty() {
        f.schools = caller.schools.iter().cloned().collect();
    } else if caller.has_role(Role::MunicipalOfficer) && !caller.municipalities.is_empty() {
        f.municipalities = caller.municipalities.iter().cloned().collect();
    } else {
        return Err(Problem::forbidden(
            "reports are for organizers, schools' meal admins, municipalities and the operator",
        ));
    }
    Ok(f)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BalancesQuery {
    pub school: Option<String>,
    pub class_name: Option<String>,
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub per_page: Option<i64>,
    /// json (default), csv or xlsx; the files hold every matching account.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BalanceRow {
    pub account: String,
    pub student_name: String,
    pub school: String,
    pub class_name: String,
    pub organizer: String,
    pub municipality: String,
    #[schema(value_type = String)]
    pub balance: Money,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BalancesPage {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    #[schema(value_type = String)]
    pub sum: Money,
    pub items: Vec<BalanceRow>,
}

/// Balances of personal accounts, by school, class and name.
#[utoipa::path(get, path = "/api/payments/reports/balances", tag = "reports", params(BalancesQuery),
    security(("bearer" = [])), responses((status = 200, body = BalancesPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn balances(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<BalancesQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut filter = filter_of(&caller)?;
    let q = query.into_inner();
    let format = q.format.unwrap_or_else(|| "json".into());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return Err(Problem::invalid("format", "json, csv or xlsx").into());
    }
    let paging = platform::Page::parse(q.page, q.per_page, 100, 1000)?;
    let (page, per_page) = (paging.page, paging.per_page);
    filter.school = q.school;
    filter.class_name = q.class_name;
    let whole = format != "json";
    let (offset, limit) = if whole {
        (0, i64::MAX)
    } else {
        (paging.offset(), per_page)
    };
    let (lines, total) = ctx
        .db
        .read(move |conn| reports::balances(conn, &filter, offset, limit))
        .await?;
    let rows: Vec<BalanceRow> = lines
        .into_iter()
        .map(|l| BalanceRow {
            account: l.account,
            student_name: l.student_name,
            school: l.school,
            class_name: l.class_name,
            organizer: l.organizer,
            municipality: l.municipality,
            balance: Money::from_kopecks(l.balance_kopecks),
        })
        .collect();
    if whole {
        let headings = [
            "Лицевой счёт",
            "Ученик",
            "Школа",
            "Класс",
            "Организатор питания",
            "Муниципалитет",
            "Баланс",
        ];
        let cells: Vec<Vec<Cell>> = rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.account.clone()),
                    Cell::Text(r.student_name.clone()),
                    Cell::Text(r.school.clone()),
                    Cell::Text(r.class_name.clone()),
                    Cell::Text(r.organizer.clone()),
                    Cell::Text(r.municipality.clone()),
                    Cell::Money(r.balance),
                ]
            })
            .collect();
        return file_response(&format, "balances", &headings, &cells);
    }
    let sum = rows.iter().map(|r| r.balance).sum();
    Ok(HttpResponse::Ok().json(BalancesPage {
        page,
        per_page,
        total,
        sum,
        items: rows,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TurnoverQuery {
    /// The Tyumen day, YYYY-MM-DD.
    pub date: chrono::NaiveDate,
    /// Required when the caller acts for several organizers, and for the operator.
    pub organizer: Option<String>,
    pub school: Option<String>,
    pub class_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TurnoverRow {
    /// Movement kind: top_up, bank_payment, meal_debit, refund, adjustment, reversal.
    pub kind: String,
    #[schema(value_type = String)]
    pub incoming: Money,
    #[schema(value_type = String)]
    pub outgoing: Money,
    pub postings: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TurnoverReport {
    pub organizer: String,
    pub date: chrono::NaiveDate,
    pub rows: Vec<TurnoverRow>,
    #[schema(value_type = String)]
    pub incoming: Money,
    #[schema(value_type = String)]
    pub outgoing: Money,
}

/// Money into and out of an organizer's personal accounts on one day, by kind.
#[utoipa::path(get, path = "/api/payments/reports/turnover", tag = "reports", params(TurnoverQuery),
    security(("bearer" = [])), responses((status = 200, body = TurnoverReport), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn turnover(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    query: web::Query<TurnoverQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let organizer = if caller.has_role(Role::OperatorAdmin) {
        q.organizer
            .clone()
            .ok_or_else(|| Problem::invalid("organizer", "name the organizer"))?
    } else {
        caller.require(&[Role::MealOrganizer])?;
        match (
            q.organizer.clone(),
            caller.organizers.iter().collect::<Vec<_>>().as_slice(),
        ) {
            (Some(o), _) if caller.may_act_for_organizer(&o) => o,
            (Some(o), _) => {
                return Err(Problem::forbidden(format!("you do not act for organizer {o}")).into())
            }
            (None, [only]) => (*only).clone(),
            (None, _) => return Err(Problem::invalid("organizer", "name the organizer").into()),
        }
    };
    let start = q
        .date
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| Problem::invalid("date", "not a day"))?;
    let from = calendar::local_to_utc(start).naive_utc();
    let to = calendar::local_to_utc(start + chrono::Duration::days(1)).naive_utc();
    let org = organizer.clone();
    let lines = ctx
        .db
        .read(move |conn| {
            reports::turnover(
                conn,
                &org,
                q.school.as_deref(),
                q.class_name.as_deref(),
                from,
                to,
            )
        })
        .await?;
    let rows: Vec<TurnoverRow> = lines
        .into_iter()
        .map(|l| TurnoverRow {
            kind: l.kind,
            incoming: Money::from_kopecks(l.incoming),
            outgoing: Money::from_kopecks(l.outgoing),
            postings: l.postings,
        })
        .collect();
    let incoming = rows.iter().map(|r| r.incoming).sum();
    let outgoing = rows.iter().map(|r| r.outgoing).sum();
    Ok(HttpResponse::Ok().json(TurnoverReport {
        organizer,
        date: q.date,
        rows,
        incoming,
        outgoing,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MunicipalityRow {
    pub municipality: String,
    pub accounts: i64,
    /// Sum of all balances.
    #[schema(value_type = String)]
    pub balance: Money,
    /// Accounts below zero (in credit).
    pub in_debt: i64,
    /// Sum of the negative balances.
    #[schema(value_type = String)]
    pub debt: Money,
}

/// Totals of personal accounts per municipality (a municipal officer sees their own).
#[utoipa::path(get, path = "/api/payments/reports/municipalities", tag = "reports",
    security(("bearer" = [])), responses((status = 200, body = [MunicipalityRow]), (status = 403, body = Problem)))]
async fn municipalities(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::MunicipalOfficer, Role::OperatorAdmin])?;
    let lines = ctx.db.read(reports::municipalities).await?;
    let rows: Vec<MunicipalityRow> = lines
        .into_iter()
        .filter(|l| caller.may_see_municipality(&l.municipality))
        .map(|l| MunicipalityRow {
            municipality: l.municipality,
            accounts: l.accounts,
            balance: Money::from_kopecks(l.balance),
            in_debt: l.in_debt,
            debt: Money::from_kopecks(l.debt),
        })
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}
