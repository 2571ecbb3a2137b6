//! The municipality's dictionaries: menu types, age categories, ПЧВР categories
//! with their rates.

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, ServiceContext};
use primitives::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use storage::StorageError;
use utoipa::ToSchema;

use super::Col;
use super::{meal_kind, non_negative, require_municipal, required, resource, valid_id};
use crate::domain::RateKind;
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    let m = "/api/meals/municipalities/{municipality}";
    cfg.service(
        resource(data, &format!("{m}/menu-types/{{code}}")).route(web::put().to(put_menu_type)),
    )
    .service(
        resource(data, &format!("{m}/age-categories/{{code}}"))
            .route(web::put().to(put_age_category)),
    )
    .service(
        resource(data, &format!("{m}/pchvr-categories/{{code}}"))
            .route(web::put().to(put_category)),
    )
    .service(resource(data, &format!("{m}/dictionaries")).route(web::get().to(get_dictionaries)));
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_menu_type, put_age_category, put_category, get_dictionaries),
    components(schemas(Named, AgeCategory, Category, CategoryRate, RateKind, Dictionaries)),
    tags((name = "meals-reference", description = "Dictionaries, schools, classes, students, meal times, links"))
)]
pub struct DictionariesApi;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub name: String,
}

/// A «Виды меню» entry.
#[utoipa::path(put, path = "/api/meals/municipalities/{municipality}/menu-types/{code}", tag = "meals-reference",
    request_body = Named, security(("bearer" = [])),
    responses((status = 200, body = Named), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_menu_type(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<Named>,
) -> Result<HttpResponse, Problem> {
    let (m, code) = path.into_inner();
    require_municipal(&caller, &m)?;
    valid_id("code", &code)?;
    required("name", &body.name)?;
    let body = body.into_inner();
    let name = body.name.clone();
    ctx.db
        .write(move |c| store::dictionaries::save_menu_type(c, &m, &code, &name))
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// A «Возрастные категории» entry: ages in full years, both ends included.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeCategory {
    pub name: String,
    pub min_age: i32,
    pub max_age: i32,
}

#[utoipa::path(put, path = "/api/meals/municipalities/{municipality}/age-categories/{code}", tag = "meals-reference",
    request_body = AgeCategory, security(("bearer" = [])),
    responses((status = 200, body = AgeCategory), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_age_category(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<AgeCategory>,
) -> Result<HttpResponse, Problem> {
    let (m, code) = path.into_inner();
    require_municipal(&caller, &m)?;
    valid_id("code", &code)?;
    required("name", &body.name)?;
    if body.min_age < 0 || body.max_age < body.min_age || body.max_age > 25 {
        return Err(Problem::invalid(
            "max_age",
            "ages must satisfy 0 ≤ min_age ≤ max_age ≤ 25",
        ));
    }
    let body = body.into_inner();
    let (name, lo, hi) = (body.name.clone(), body.min_age, body.max_age);
    ctx.db
        .write(move |c| store::dictionaries::save_age_category(c, &m, &code, &name, lo, hi))
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// A «Категории ПЧВР» entry: full or partial reimbursement of meals, per meal
/// kind a percentage of the complex price or a fixed sum, and who funds it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    /// The budget that pays: e.g. `regional`, `municipal`.
    pub funder: String,
    pub kind: RateKind,
    pub rates: Vec<CategoryRate>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRate {
    pub meal_kind: String,
    /// For `percent`: 0–100, up to two decimals ("50", "33.33").
    #[schema(value_type = Option<String>, example = "50")]
    pub percent: Option<Decimal>,
    /// For `fixed`: rubles per meal.
    #[schema(value_type = Option<String>, example = "80.50")]
    pub amount: Option<Money>,
}

#[utoipa::path(put, path = "/api/meals/municipalities/{municipality}/pchvr-categories/{code}", tag = "meals-reference",
    request_body = Category, security(("bearer" = [])),
    responses((status = 200, body = Category), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_category(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<Category>,
) -> Result<HttpResponse, Problem> {
    let (m, code) = path.into_inner();
    require_municipal(&caller, &m)?;
    valid_id("code", &code)?;
    required("name", &body.name)?;
    required("funder", &body.funder)?;
    let mut values = Vec::new();
    for (i, r) in body.rates.iter().enumerate() {
        meal_kind(&format!("rates[{i}].meal_kind"), &r.meal_kind)?;
        let v = match (body.kind, r.percent, r.amount) {
            (RateKind::Percent, Some(p), None) => {
                if p < Decimal::ZERO || p > Decimal::from(100) || p.scale() > 2 {
                    return Err(Problem::invalid(
                        &format!("rates[{i}].percent"),
                        "must be 0–100 with at most two decimals",
                    ));
                }
                rust_decimal::prelude::ToPrimitive::to_i64(&(p * Decimal::from(100)).round())
                    .unwrap_or(0)
            }
            (RateKind::Fixed, None, Some(a)) => {
                non_negative(&format!("rates[{i}].amount"), a)?;
                a.kopecks()
            }
            (RateKind::Percent, _, _) => {
                return Err(Problem::invalid(
                    &format!("rates[{i}]"),
                    "a percent category takes `percent` only",
                ))
            }
            (RateKind::Fixed, _, _) => {
                return Err(Problem::invalid(
                    &format!("rates[{i}]"),
                    "a fixed category takes `amount` only",
                ))
            }
        };
        if values
            .iter()
            .any(|(k, _): &(String, i64)| *k == r.meal_kind)
        {
            return Err(Problem::invalid(
                &format!("rates[{i}].meal_kind"),
                "given twice",
            ));
        }
        values.push((r.meal_kind.clone(), v));
    }
    let body = body.into_inner();
    let (name, funder, kind) = (body.name.clone(), body.funder.clone(), body.kind.as_str());
    ctx.db
        .write(move |c| {
            store::dictionaries::save_category(c, &m, &code, (&name, &funder, kind), &values)
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn menu_type_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text])
}

fn age_category_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int, Col::Int])
}

fn category_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Text, Col::Text])
}

fn rate_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int])
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Dictionaries {
    /// code → name
    #[schema(schema_with = menu_type_rows)]
    pub menu_types: Vec<(String, String)>,
    /// code, name, min_age, max_age
    #[schema(schema_with = age_category_rows)]
    pub age_categories: Vec<(String, String, i32, i32)>,
    /// code, name, funder, kind
    #[schema(schema_with = category_rows)]
    pub pchvr_categories: Vec<(String, String, String, String)>,
    /// category, meal kind, value (basis points or kopecks)
    #[schema(schema_with = rate_rows)]
    pub pchvr_rates: Vec<(String, String, i64)>,
}

/// The municipality's dictionaries (any signed-in user may read them).
#[utoipa::path(get, path = "/api/meals/municipalities/{municipality}/dictionaries", tag = "meals-reference",
    security(("bearer" = [])), responses((status = 200, body = Dictionaries)))]
async fn get_dictionaries(
    ctx: web::Data<ServiceContext>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let m = path.into_inner();
    let d = ctx
        .db
        .read(move |c| -> Result<Dictionaries, StorageError> {
            Ok(Dictionaries {
                menu_types: store::dictionaries::menu_types_of(c, &m)?,
                age_categories: store::dictionaries::age_categories_of(c, &m)?,
                pchvr_categories: store::dictionaries::categories_of(c, &m)?,
                pchvr_rates: store::dictionaries::rates_of(c, &m)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(d))
}
