//! Parents: the menu for their child, orders two weeks ahead until the lock,
//! the shortfall against the balance and credit, and confirmation.

use actix_web::{web, HttpResponse};
use chrono::{Duration, NaiveDate};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use storage::DbConnection;
use utoipa::{IntoParams, ToSchema};

use super::MealPrice;
use super::{local_now, meal_kind, resource};
use crate::domain::orders::{check_choice, ExtraKind};
use crate::domain::{self, OrderRefusal};
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    let s = "/api/meals/students/{account}";
    cfg.service(resource(data, &format!("{s}/menu")).route(web::get().to(menu)))
        .service(resource(data, &format!("{s}/orders")).route(web::get().to(list_orders)))
        .service(resource(data, &format!("{s}/orders/confirm")).route(web::post().to(confirm)))
        .service(
            resource(data, &format!("{s}/orders/{{date}}/{{meal_kind}}"))
                .route(web::put().to(put_order))
                .route(web::delete().to(delete_order)),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(menu, list_orders, put_order, delete_order, confirm),
    components(schemas(MenuDay, MenuMeal, OfferedComplex, OfferedExtra, OrderBody, ExtraChoice, OrderLine, OrderSummary, MealPrice)),
    tags((name = "meals-parents", description = "The menu, orders two weeks ahead, confirmation"))
)]
pub struct OrdersApi;

/// The student, if the caller is their parent (or the Operator). Anyone else
/// gets 404, the same as for a student that does not exist.
pub(crate) async fn own_child(
    ctx: &ServiceContext,
    caller: &Caller,
    account: &str,
) -> Result<(store::Student, store::School, store::Class), Problem> {
    let allowed = caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::Parent) && caller.may_see_child(account));
    let missing = || Problem::not_found(format!("you have no child with account {account}"));
    if !allowed {
        return Err(missing());
    }
    let a = account.to_string();
    let found = ctx
        .db
        .read(
            move |c| -> Result<
                Option<(store::Student, store::School, store::Class)>,
                storage::StorageError,
            > {
                let Some(st) = store::student(c, &a)? else {
                    return Ok(None);
                };
                let Some(school) = store::school(c, &st.school_id)? else {
                    return Ok(None);
                };
                let Some(class) = store::class(c, &st.class_id)? else {
                    return Ok(None);
                };
                Ok(Some((st, school, class)))
            },
        )
        .await?;
    found.ok_or_else(missing)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// First day, `YYYY-MM-DD`; tomorrow by default.
    pub from: Option<String>,
    /// Last day; two weeks ahead by default.
    pub to: Option<String>,
}

fn range(q: &Range, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Problem> {
    super::span(
        q.from.as_deref(),
        q.to.as_deref(),
        super::next_two_weeks(today),
        62,
    )
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferedComplex {
    pub code: String,
    /// The version an order would refer to.
    pub id: String,
    pub name: String,
    pub dishes: Vec<String>,
    /// The «комплекс дня».
    pub is_default: bool,
    pub price: MealPrice,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferedExtra {
    pub id: String,
    pub name: String,
    /// supplement (only with a complex) or home (home-schooled students).
    pub kind: String,
    #[schema(value_type = String)]
    pub price: Money,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MenuMeal {
    pub meal_kind: String,
    pub complexes: Vec<OfferedComplex>,
    pub extras: Vec<OfferedExtra>,
    /// Fewer than two complexes: the organizer has been told.
    pub incomplete: bool,
    /// The first day the order can no longer change.
    pub lock_date: String,
    pub locked: bool,
    pub order: Option<OrderLine>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MenuDay {
    pub date: String,
    pub meals: Vec<MenuMeal>,
}

fn order_line(
    c: &mut DbConnection,
    school: &store::School,
    st: &store::Student,
    o: &store::Order,
) -> Result<OrderLine, storage::StorageError> {
    let cx = match &o.complex_id {
        Some(id) => store::complex(c, id)?,
        None => None,
    };
    let choices = store::extras_of(&o.extras);
    let extras_sum = store::extras_total(c, &choices)?;
    let (price, _) = store::price_for(c, school, st, cx.as_ref(), &o.meal_kind, extras_sum)?;
    Ok(OrderLine {
        date: o.date.to_string(),
        meal_kind: o.meal_kind.clone(),
        complex: cx.as_ref().map(|x| x.code.clone()),
        complex_id: o.complex_id.clone(),
        complex_name: cx.map(|x| x.name),
        extras: choices.into_iter().map(ExtraChoice::from).collect(),
        confirmed: o.confirmed,
        price: price.into(),
    })
}

#[utoipa::path(get, path = "/api/meals/students/{account}/menu", tag = "meals-parents", params(Range), security(("bearer" = [])),
    responses((status = 409, body = Problem), (status = 422, body = Problem), (status = 200, body = [MenuDay]), (status = 404, body = Problem)))]
async fn menu(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    q: web::Query<Range>,
) -> Result<HttpResponse, Problem> {
    let (st, school, class) = own_child(&ctx, &caller, &path).await?;
    let today = local_now(&ctx).date();
    let (from, to) = range(&q, today)?;
    let cal = ctx.calendar.clone();
    let days = ctx
        .db
        .read(move |c| -> Result<Vec<MenuDay>, Problem> {
            let Some(org) = store::organizer_of(c, &school, &class)? else {
                return Err(Problem::conflict(
                    "no-organizer",
                    format!("school {} has no meal organizer yet", school.id),
                ));
            };
            let kinds = store::parents::kinds_of(c, &st, &class)?;
            let items = store::parents::active_extras(c, &org)?;
            let items: Vec<OfferedExtra> = items
                .into_iter()
                .filter(|e| {
                    ExtraKind::parse(&e.kind).is_some_and(|k| k.offered_to(st.home_schooled))
                })
                .map(|e| OfferedExtra {
                    id: e.id,
                    name: e.name,
                    kind: e.kind,
                    price: Money::from_kopecks(e.price_kopecks),
                })
                .collect();
            let mut out = Vec::new();
            let mut day = from;
            while day <= to {
                if !cal.is_working_day(day).map_err(|e| {
                    Problem::unprocessable("calendar", "No production calendar", e.to_string())
                })? {
                    day += Duration::days(1);
                    continue;
                }
                let lock = domain::lock_date(&cal, day).map_err(|e| {
                    Problem::unprocessable("calendar", "No production calendar", e.to_string())
                })?;
                let mut meals = Vec::new();
                for kind in &kinds {
                    let offered = store::offered(c, &school, &org, &st, day, kind)?;
                    let mut complexes = Vec::new();
                    for (cx, is_default) in &offered {
                        let (price, _) =
                            store::price_for(c, &school, &st, Some(cx), kind, Money::ZERO)?;
                        complexes.push(OfferedComplex {
                            code: cx.code.clone(),
                            id: cx.id.clone(),
                            name: cx.name.clone(),
                            dishes: serde_json::from_str(&cx.dishes).unwrap_or_default(),
                            is_default: *is_default,
                            price: price.into(),
                        });
                    }
                    let incomplete = complexes.len() < domain::MIN_COMPLEXES;
                    let order = store::parents::order(c, &st.account, day, kind)?;
                    let order = order.map(|o| order_line(c, &school, &st, &o)).transpose()?;
                    meals.push(MenuMeal {
                        meal_kind: kind.clone(),
                        complexes,
                        extras: items
                            .iter()
                            .map(|e| OfferedExtra {
                                id: e.id.clone(),
                                name: e.name.clone(),
                                kind: e.kind.clone(),
                                price: e.price,
                            })
                            .collect(),
                        incomplete,
                        lock_date: lock.to_string(),
                        locked: today >= lock,
                        order,
                    });
                }
                out.push(MenuDay {
                    date: day.to_string(),
                    meals,
                });
                day += Duration::days(1);
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(days))
}

/// An additional item chosen with a complex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraChoice {
    pub item: String,
    /// 1–10; one when not given.
    #[serde(default = "one")]
    pub quantity: i32,
}

fn one() -> i32 {
    1
}

impl From<store::ExtraChoice> for ExtraChoice {
    fn from(e: store::ExtraChoice) -> Self {
        ExtraChoice {
            item: e.item,
            quantity: e.quantity,
        }
    }
}

impl From<&ExtraChoice> for store::ExtraChoice {
    fn from(e: &ExtraChoice) -> Self {
        store::ExtraChoice {
            item: e.item.clone(),
            quantity: e.quantity,
        }
    }
}

/// A parent's choice for a day and meal kind.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// Complex code from the day's menu; none only for a home-schooled student's products.
    pub complex: Option<String>,
    #[serde(default)]
    pub extras: Vec<ExtraChoice>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub date: String,
    pub meal_kind: String,
    pub complex: Option<String>,
    pub complex_id: Option<String>,
    pub complex_name: Option<String>,
    pub extras: Vec<ExtraChoice>,
    pub confirmed: bool,
    pub price: MealPrice,
}

/// All orders from tomorrow on against the money there is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderSummary {
    pub orders: Vec<OrderLine>,
    /// What the orders from tomorrow on cost the parent.
    #[schema(value_type = String)]
    pub ordered: Money,
    /// The balance payments last reported, less meals not yet written off.
    #[schema(value_type = String)]
    pub available: Money,
    #[schema(value_type = String)]
    pub credit_limit: Money,
    /// How much to top up so the orders are covered (0 when they are).
    #[schema(value_type = String)]
    pub shortfall: Money,
}

fn summary(
    c: &mut DbConnection,
    school: &store::School,
    st: &store::Student,
    today: NaiveDate,
    upto: Option<NaiveDate>,
) -> Result<OrderSummary, storage::StorageError> {
    let rows = store::parents::orders_after(c, &st.account, today, upto)?;
    let mut lines = Vec::new();
    let mut total = 0i64;
    for o in &rows {
        let l = order_line(c, school, st, o)?;
        total += l.price.to_pay.kopecks();
        lines.push(l);
    }
    let balance = store::balance(c, &st.account)?;
    let pending = store::pending(c, &st.account, None)?;
    let available = Money::from_kopecks(balance.kopecks() - pending.kopecks());
    let credit = Money::from_kopecks(school.credit_limit_kopecks);
    let ordered = Money::from_kopecks(total);
    Ok(OrderSummary {
        orders: lines,
        ordered,
        available,
        credit_limit: credit,
        shortfall: domain::shortfall(ordered, available, credit),
    })
}

#[utoipa::path(get, path = "/api/meals/students/{account}/orders", tag = "meals-parents", params(Range), security(("bearer" = [])),
    responses((status = 200, body = OrderSummary), (status = 404, body = Problem)))]
async fn list_orders(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (st, school, _) = own_child(&ctx, &caller, &path).await?;
    let today = local_now(&ctx).date();
    let s = ctx
        .db
        .read(move |c| summary(c, &school, &st, today, None))
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

fn refusal(r: OrderRefusal) -> Problem {
    match r {
        OrderRefusal::Locked { lock, .. } => {
            Problem::conflict("order-locked", r.to_string()).field("lock_date", lock.to_string())
        }
        OrderRefusal::Calendar(_) => {
            Problem::unprocessable("calendar", "No production calendar", r.to_string())
        }
        _ => Problem::invalid("date", r.to_string()),
    }
}

/// Order (or change the order of) a day and meal kind; answers with all the
/// orders from tomorrow on and the shortfall against balance plus credit.
#[utoipa::path(put, path = "/api/meals/students/{account}/orders/{date}/{meal_kind}", tag = "meals-parents",
    request_body = OrderBody, security(("bearer" = [])),
    responses((status = 200, body = OrderSummary), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn put_order(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Json<OrderBody>,
) -> Result<HttpResponse, Problem> {
    let (account, day, kind) = path.into_inner();
    let (st, school, class) = own_child(&ctx, &caller, &account).await?;
    let day = super::date("date", &day)?;
    meal_kind("meal_kind", &kind)?;
    let today = local_now(&ctx).date();
    domain::may_order(&ctx.calendar, today, day).map_err(refusal)?;
    let body = body.into_inner();
    for (i, e) in body.extras.iter().enumerate() {
        if !(1..=10).contains(&e.quantity) {
            return Err(Problem::invalid(
                &format!("extras[{i}].quantity"),
                "must be 1–10",
            ));
        }
    }
    let who = caller.subject.clone();
    let now = ctx.clock.now().naive_utc();
    let s = ctx
        .db
        .write(move |c| -> Result<OrderSummary, Problem> {
            let org = store::organizer_of(c, &school, &class)?
                .ok_or_else(|| Problem::conflict("no-organizer", format!("school {} has no meal organizer yet", school.id)))?;
            if !store::parents::kinds_of(c, &st, &class)?.contains(&kind) {
                return Err(Problem::invalid("meal_kind", format!("the student does not have {kind} at school")));
            }
            let offered = store::offered(c, &school, &org, &st, day, &kind)?;
            if offered.len() < domain::MIN_COMPLEXES {
                store::record_menu_notice(c, &school.id, day, &kind, &org, offered.len(), now)?;
                return Err(Problem::conflict(
                    "menu-incomplete",
                    format!("the menu for {day} offers {} complex(es), fewer than two; the organizer has been told", offered.len()),
                ));
            }
            let complex_id = match &body.complex {
                Some(code) => Some(
                    offered
                        .iter()
                        .find(|(cx, _)| &cx.code == code)
                        .map(|(cx, _)| cx.id.clone())
                        .ok_or_else(|| Problem::invalid("complex", format!("complex {code} is not on the menu for {day} {kind}")))?,
                ),
                None => None,
            };
            let mut kinds = Vec::with_capacity(body.extras.len());
            for (i, e) in body.extras.iter().enumerate() {
                let item = store::parents::extra(c, &e.item)?;
                let kind = item
                    .filter(|x| x.organizer == org && x.active)
                    .and_then(|x| ExtraKind::parse(&x.kind))
                    .ok_or_else(|| Problem::invalid(&format!("extras[{i}].item"), format!("{} is not on the additional menu", e.item)))?;
                kinds.push(kind);
            }
            check_choice(complex_id.is_some(), st.home_schooled, &kinds)
                .map_err(|r| Problem::invalid(&r.field(), r.to_string()))?;
            let chosen: Vec<store::ExtraChoice> = body.extras.iter().map(store::ExtraChoice::from).collect();
            let extras_json = serde_json::to_string(&chosen).map_err(Problem::internal)?;
            let row = store::Order { account: st.account.clone(), date: day, meal_kind: kind.clone(), complex_id, extras: extras_json, confirmed: false, updated_by: who, updated_at: now };
            store::save_order(c, &row)?;
            Ok(summary(c, &school, &st, today, None)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Withdraw an order before its lock; the day falls back to the «комплекс дня».
#[utoipa::path(delete, path = "/api/meals/students/{account}/orders/{date}/{meal_kind}", tag = "meals-parents", security(("bearer" = [])),
    responses((status = 200, body = OrderSummary), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_order(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    let (account, day, kind) = path.into_inner();
    let (st, school, _) = own_child(&ctx, &caller, &account).await?;
    let day = super::date("date", &day)?;
    let today = local_now(&ctx).date();
    domain::may_order(&ctx.calendar, today, day).map_err(refusal)?;
    let s = ctx
        .db
        .write(move |c| -> Result<OrderSummary, Problem> {
            if !store::parents::delete_order(c, &st.account, day, &kind)? {
                return Err(Problem::not_found(format!("no order for {day} {kind}")));
            }
            Ok(summary(c, &school, &st, today, None)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

/// Confirm every order from tomorrow on; confirmed orders show in the
/// organizer's procurement view. A later change needs confirming again.
#[utoipa::path(post, path = "/api/meals/students/{account}/orders/confirm", tag = "meals-parents", security(("bearer" = [])),
    responses((status = 200, body = OrderSummary), (status = 404, body = Problem)))]
async fn confirm(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (st, school, _) = own_child(&ctx, &caller, &path).await?;
    let today = local_now(&ctx).date();
    let s = ctx
        .db
        .write(move |c| -> Result<OrderSummary, Problem> {
            store::parents::confirm_orders_after(c, &st.account, today)?;
            Ok(summary(c, &school, &st, today, None)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}
