//! Reference data: the municipality's dictionaries, schools with their
//! buildings, classes, meal times and students, the meal admin's per-student
//! settings, the school–organizer links and the credit limit.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use storage::{DbConnection, StorageError};
use utoipa::ToSchema;

use super::Col;
use super::{
    load_school, meal_kind, non_negative, require_admin, require_municipal, required, resource,
    valid_id,
};
use crate::domain::{self, RateKind};
use crate::store::{
    self, age_categories, buildings, classes, meal_times, menu_types, pchvr_categories,
    pchvr_rates, schools, students,
};

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
    .service(resource(data, &format!("{m}/dictionaries")).route(web::get().to(get_dictionaries)))
    .service(
        resource(data, "/api/meals/schools/{school}")
            .route(web::put().to(put_school))
            .route(web::get().to(get_school)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/buildings/{building}")
            .route(web::put().to(put_building)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/classes/{class}")
            .route(web::put().to(put_class)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/meal-times/{code}")
            .route(web::put().to(put_meal_time)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/students/{account}")
            .route(web::put().to(put_student)),
    )
    .service(
        resource(
            data,
            "/api/meals/schools/{school}/students/{account}/settings",
        )
        .route(web::put().to(put_settings)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/organizer").route(web::put().to(put_organizer)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/credit-limit").route(web::put().to(put_credit)),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_menu_type, put_age_category, put_category, get_dictionaries, put_school, get_school,
          put_building, put_class, put_meal_time, put_student, put_settings, put_organizer, put_credit),
    components(schemas(Named, AgeCategory, Category, CategoryRate, RateKind, Dictionaries, SchoolBody,
        SchoolView, BuildingBody, ClassBody, MealTimeBody, StudentBody, StudentSettings, OrganizerLink, CreditLimit)),
    tags((name = "meals-reference", description = "Dictionaries, schools, classes, students, meal times, links"))
)]
pub struct ReferenceApi;

/// Updates a row, inserting it when there was none.
fn upsert<F, G>(conn: &mut DbConnection, update: F, insert: G) -> Result<(), StorageError>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<usize>,
    G: FnOnce(&mut DbConnection) -> QueryResult<usize>,
{
    if update(conn)? == 0 {
        insert(conn)?;
    }
    Ok(())
}

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
        .write(move |c| {
            upsert(
                c,
                |c| {
                    diesel::update(menu_types::table.find((&m, &code)))
                        .set(menu_types::name.eq(&name))
                        .execute(c)
                },
                |c| {
                    diesel::insert_into(menu_types::table)
                        .values((
                            menu_types::municipality.eq(&m),
                            menu_types::code.eq(&code),
                            menu_types::name.eq(&name),
                        ))
                        .execute(c)
                },
            )
        })
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
        .write(move |c| {
            upsert(
                c,
                |c| {
                    diesel::update(age_categories::table.find((&m, &code)))
                        .set((
                            age_categories::name.eq(&name),
                            age_categories::min_age.eq(lo),
                            age_categories::max_age.eq(hi),
                        ))
                        .execute(c)
                },
                |c| {
                    diesel::insert_into(age_categories::table)
                        .values((
                            age_categories::municipality.eq(&m),
                            age_categories::code.eq(&code),
                            age_categories::name.eq(&name),
                            age_categories::min_age.eq(lo),
                            age_categories::max_age.eq(hi),
                        ))
                        .execute(c)
                },
            )
        })
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
        .write(move |c| -> Result<(), StorageError> {
            upsert(
                c,
                |c| {
                    diesel::update(pchvr_categories::table.find((&m, &code)))
                        .set((
                            pchvr_categories::name.eq(&name),
                            pchvr_categories::funder.eq(&funder),
                            pchvr_categories::kind.eq(kind),
                        ))
                        .execute(c)
                },
                |c| {
                    diesel::insert_into(pchvr_categories::table)
                        .values((
                            pchvr_categories::municipality.eq(&m),
                            pchvr_categories::code.eq(&code),
                            pchvr_categories::name.eq(&name),
                            pchvr_categories::funder.eq(&funder),
                            pchvr_categories::kind.eq(kind),
                        ))
                        .execute(c)
                },
            )?;
            diesel::delete(
                pchvr_rates::table
                    .filter(pchvr_rates::municipality.eq(&m))
                    .filter(pchvr_rates::category.eq(&code)),
            )
            .execute(c)?;
            for (k, v) in values {
                diesel::insert_into(pchvr_rates::table)
                    .values((
                        pchvr_rates::municipality.eq(&m),
                        pchvr_rates::category.eq(&code),
                        pchvr_rates::meal_kind.eq(k),
                        pchvr_rates::value.eq(v),
                    ))
                    .execute(c)?;
            }
            Ok(())
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

fn building_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Text, Col::OptText])
}

fn class_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int, Col::OptText])
}

fn meal_time_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int, Col::Text])
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
                menu_types: menu_types::table
                    .filter(menu_types::municipality.eq(&m))
                    .order(menu_types::code)
                    .select((menu_types::code, menu_types::name))
                    .load(c)?,
                age_categories: age_categories::table
                    .filter(age_categories::municipality.eq(&m))
                    .order(age_categories::code)
                    .select((
                        age_categories::code,
                        age_categories::name,
                        age_categories::min_age,
                        age_categories::max_age,
                    ))
                    .load(c)?,
                pchvr_categories: pchvr_categories::table
                    .filter(pchvr_categories::municipality.eq(&m))
                    .order(pchvr_categories::code)
                    .select((
                        pchvr_categories::code,
                        pchvr_categories::name,
                        pchvr_categories::funder,
                        pchvr_categories::kind,
                    ))
                    .load(c)?,
                pchvr_rates: pchvr_rates::table
                    .filter(pchvr_rates::municipality.eq(&m))
                    .order((pchvr_rates::category, pchvr_rates::meal_kind))
                    .select((
                        pchvr_rates::category,
                        pchvr_rates::meal_kind,
                        pchvr_rates::value,
                    ))
                    .load(c)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(d))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolBody {
    pub municipality: String,
    pub name: String,
}

/// Register (or rename) a school of the municipality.
#[utoipa::path(put, path = "/api/meals/schools/{school}", tag = "meals-reference",
    request_body = SchoolBody, security(("bearer" = [])),
    responses((status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn put_school(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<SchoolBody>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    valid_id("school", &id)?;
    let body = body.into_inner();
    valid_id("municipality", &body.municipality)?;
    required("name", &body.name)?;
    require_municipal(&caller, &body.municipality)?;
    let sees_all = caller.has_role(Role::OperatorAdmin);
    let now = ctx.clock.now().naive_utc();
    let sid = id.clone();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            match store::school(c, &sid)? {
                Some(s) if s.municipality != body.municipality => Err(super::elsewhere(
                    sees_all,
                    "school-elsewhere",
                    format!(
                        "school {sid} is not one of municipality {}'s",
                        body.municipality
                    ),
                    format!("school {sid} belongs to municipality {}", s.municipality),
                )),
                Some(_) => {
                    diesel::update(schools::table.find(&sid))
                        .set(schools::name.eq(&body.name))
                        .execute(c)?;
                    Ok(())
                }
                None => {
                    diesel::insert_into(schools::table)
                        .values(&store::School {
                            id: sid.clone(),
                            municipality: body.municipality,
                            name: body.name,
                            credit_limit_kopecks: 0,
                            organizer: None,
                            created_at: now,
                        })
                        .execute(c)?;
                    Ok(())
                }
            }
        })
        .await?;
    school_view(&ctx, &id)
        .await
        .map(|v| HttpResponse::Ok().json(v))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SchoolView {
    pub id: String,
    pub municipality: String,
    pub name: String,
    /// Maximum credit per student, rubles (0 = no credit).
    #[schema(value_type = String)]
    pub credit_limit: Money,
    pub organizer: Option<String>,
    /// id, name, address, own organizer
    #[schema(schema_with = building_rows)]
    pub buildings: Vec<(String, String, String, Option<String>)>,
    /// id, name, shift, building
    #[schema(schema_with = class_rows)]
    pub classes: Vec<(String, String, i32, Option<String>)>,
    /// code, kind, shift, starts_at
    #[schema(schema_with = meal_time_rows)]
    pub meal_times: Vec<(String, String, i32, String)>,
    pub students: i64,
}

async fn school_view(ctx: &ServiceContext, id: &str) -> Result<SchoolView, Problem> {
    let id = id.to_string();
    ctx.db
        .read(move |c| -> Result<SchoolView, Problem> {
            let s = store::school(c, &id)?.ok_or_else(|| Problem::not_found("no such school"))?;
            Ok(SchoolView {
                buildings: buildings::table
                    .filter(buildings::school_id.eq(&id))
                    .order(buildings::id)
                    .select((
                        buildings::id,
                        buildings::name,
                        buildings::address,
                        buildings::organizer,
                    ))
                    .load(c)?,
                classes: classes::table
                    .filter(classes::school_id.eq(&id))
                    .order(classes::id)
                    .select((
                        classes::id,
                        classes::name,
                        classes::shift,
                        classes::building_id,
                    ))
                    .load(c)?,
                meal_times: meal_times::table
                    .filter(meal_times::school_id.eq(&id))
                    .order(meal_times::starts_at)
                    .select((
                        meal_times::code,
                        meal_times::kind,
                        meal_times::shift,
                        meal_times::starts_at,
                    ))
                    .load(c)?,
                students: students::table
                    .filter(students::school_id.eq(&id))
                    .count()
                    .get_result(c)?,
                id: s.id,
                municipality: s.municipality,
                name: s.name,
                credit_limit: Money::from_kopecks(s.credit_limit_kopecks),
                organizer: s.organizer,
            })
        })
        .await
}

#[utoipa::path(get, path = "/api/meals/schools/{school}", tag = "meals-reference", security(("bearer" = [])),
    responses((status = 200, body = SchoolView), (status = 404, body = Problem)))]
async fn get_school(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let school = load_school(&ctx, &path).await?;
    let s2 = school.clone();
    let orgs = ctx
        .db
        .read(move |c| store::organizers_of_school(c, &s2))
        .await?;
    let teacher = caller.has_role(Role::ClassTeacher) && caller.may_see_school(&school.id);
    if !super::may_read_school(&caller, &school, &orgs) && !teacher {
        return Err(Problem::not_found("no such school"));
    }
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}

/// The school's meal admin or the municipality's officer manages the school's structure.
fn require_school_manager(caller: &Caller, school: &store::School) -> Result<(), Problem> {
    if caller.has_role(Role::MunicipalOfficer) && caller.may_see_municipality(&school.municipality)
    {
        return Ok(());
    }
    require_admin(caller, school)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildingBody {
    pub name: String,
    pub address: String,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/buildings/{building}", tag = "meals-reference",
    request_body = BuildingBody, security(("bearer" = [])),
    responses((status = 409, body = Problem), (status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_building(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<BuildingBody>,
) -> Result<HttpResponse, Problem> {
    let (sid, bid) = path.into_inner();
    let school = load_school(&ctx, &sid).await?;
    require_school_manager(&caller, &school)?;
    let sees_all = caller.has_role(Role::OperatorAdmin);
    valid_id("building", &bid)?;
    required("name", &body.name)?;
    let body = body.into_inner();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            let owner: Option<String> = buildings::table
                .find(&bid)
                .select(buildings::school_id)
                .first(c)
                .optional()?;
            match owner {
                Some(o) if o != sid => Err(super::elsewhere(
                    sees_all,
                    "building-elsewhere",
                    format!("building {bid} is not one of school {sid}'s"),
                    format!("building {bid} belongs to school {o}"),
                )),
                Some(_) => {
                    diesel::update(buildings::table.find(&bid))
                        .set((
                            buildings::name.eq(&body.name),
                            buildings::address.eq(&body.address),
                        ))
                        .execute(c)?;
                    Ok(())
                }
                None => {
                    diesel::insert_into(buildings::table)
                        .values((
                            buildings::id.eq(&bid),
                            buildings::school_id.eq(&sid),
                            buildings::name.eq(&body.name),
                            buildings::address.eq(&body.address),
                        ))
                        .execute(c)?;
                    Ok(())
                }
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassBody {
    pub name: String,
    /// 1 or 2.
    pub shift: i32,
    pub building: Option<String>,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/classes/{class}", tag = "meals-reference",
    request_body = ClassBody, security(("bearer" = [])),
    responses((status = 409, body = Problem), (status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_class(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ClassBody>,
) -> Result<HttpResponse, Problem> {
    let (sid, cid) = path.into_inner();
    let school = load_school(&ctx, &sid).await?;
    require_school_manager(&caller, &school)?;
    let sees_all = caller.has_role(Role::OperatorAdmin);
    valid_id("class", &cid)?;
    required("name", &body.name)?;
    if !(1..=2).contains(&body.shift) {
        return Err(Problem::invalid("shift", "must be 1 or 2"));
    }
    let body = body.into_inner();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            if let Some(b) = &body.building {
                let owner: Option<String> = buildings::table
                    .find(b)
                    .select(buildings::school_id)
                    .first(c)
                    .optional()?;
                if owner.as_deref() != Some(sid.as_str()) {
                    return Err(Problem::invalid(
                        "building",
                        format!("school {sid} has no building {b}"),
                    ));
                }
            }
            let row = store::Class {
                id: cid.clone(),
                school_id: sid.clone(),
                building_id: body.building,
                name: body.name,
                shift: body.shift,
            };
            match store::class(c, &cid)? {
                Some(existing) if existing.school_id != sid => Err(super::elsewhere(
                    sees_all,
                    "class-elsewhere",
                    format!("class {cid} is not one of school {sid}'s"),
                    format!("class {cid} belongs to school {}", existing.school_id),
                )),
                Some(_) => {
                    diesel::update(classes::table.find(&cid))
                        .set((
                            classes::name.eq(&row.name),
                            classes::shift.eq(row.shift),
                            classes::building_id.eq(&row.building_id),
                        ))
                        .execute(c)?;
                    Ok(())
                }
                None => {
                    diesel::insert_into(classes::table)
                        .values(&row)
                        .execute(c)?;
                    Ok(())
                }
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MealTimeBody {
    /// breakfast, lunch or snack.
    pub kind: String,
    pub shift: i32,
    /// Local clock time the meal starts, `HH:MM`.
    pub starts_at: String,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/meal-times/{code}", tag = "meals-reference",
    request_body = MealTimeBody, security(("bearer" = [])),
    responses((status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_meal_time(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<MealTimeBody>,
) -> Result<HttpResponse, Problem> {
    let (sid, code) = path.into_inner();
    let school = load_school(&ctx, &sid).await?;
    require_school_manager(&caller, &school)?;
    valid_id("code", &code)?;
    meal_kind("kind", &body.kind)?;
    if !(1..=2).contains(&body.shift) {
        return Err(Problem::invalid("shift", "must be 1 or 2"));
    }
    if domain::parse_clock(&body.starts_at).is_none() {
        return Err(Problem::invalid(
            "starts_at",
            format!("{:?} is not HH:MM", body.starts_at),
        ));
    }
    let row = store::MealTime {
        school_id: sid,
        code,
        kind: body.kind.clone(),
        shift: body.shift,
        starts_at: body.starts_at.clone(),
    };
    ctx.db
        .write(move |c| {
            upsert(
                c,
                |c| {
                    diesel::update(meal_times::table.find((&row.school_id, &row.code)))
                        .set((
                            meal_times::kind.eq(&row.kind),
                            meal_times::shift.eq(row.shift),
                            meal_times::starts_at.eq(&row.starts_at),
                        ))
                        .execute(c)
                },
                |c| {
                    diesel::insert_into(meal_times::table)
                        .values(&row)
                        .execute(c)
                },
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentBody {
    pub class: String,
    pub full_name: String,
    /// `YYYY-MM-DD`
    pub birth_date: String,
    #[serde(default)]
    pub home_schooled: bool,
}

/// The student as payments should know it (sent on every change that matters).
fn account_opened(
    conn: &mut DbConnection,
    school: &store::School,
    account: &str,
) -> Result<Option<bus::Envelope>, store::StoreError> {
    let Some(st) = store::student(conn, account)? else {
        return Ok(None);
    };
    let Some(class) = store::class(conn, &st.class_id)? else {
        return Ok(None);
    };
    let Some(organizer) = store::organizer_of(conn, school, &class)? else {
        return Ok(None);
    };
    let event = contracts::meals::AccountOpened {
        account: st.account,
        student_name: st.full_name,
        school: school.id.clone(),
        class_id: class.id,
        class_name: class.name,
        municipality: school.municipality.clone(),
        organizer,
    };
    Ok(Some(crate::events::account_opened(&event)?))
}

/// Register a student (лицевой счёт = `account`) in a class; payments opens the
/// personal account once the school has an organizer.
#[utoipa::path(put, path = "/api/meals/schools/{school}/students/{account}", tag = "meals-reference",
    request_body = StudentBody, security(("bearer" = [])),
    responses((status = 200, body = StudentSettings), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn put_student(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<StudentBody>,
) -> Result<HttpResponse, Problem> {
    let (sid, account) = path.into_inner();
    let school = load_school(&ctx, &sid).await?;
    super::require_admin_or_school_system(&caller, &school)?;
    let sees_all = caller.has_role(Role::OperatorAdmin);
    valid_id("account", &account)?;
    required("full_name", &body.full_name)?;
    let birth: NaiveDate = super::date("birth_date", &body.birth_date)?;
    let now = ctx.clock.now().naive_utc();
    let body = body.into_inner();
    let sb = ctx.bus.clone();
    let view = ctx
        .db
        .write(move |c| -> Result<StudentSettings, Problem> {
            let class = store::class(c, &body.class)?
                .filter(|k| k.school_id == school.id)
                .ok_or_else(|| {
                    Problem::invalid(
                        "class",
                        format!("school {} has no class {}", school.id, body.class),
                    )
                })?;
            match store::student(c, &account)? {
                Some(st) if st.school_id != school.id => {
                    return Err(super::elsewhere(
                        sees_all,
                        "student-elsewhere",
                        format!("student {account} is not one of school {}'s", school.id),
                        format!("student {account} is registered at school {}", st.school_id),
                    ))
                }
                Some(_) => {
                    diesel::update(students::table.find(&account))
                        .set((
                            students::class_id.eq(&class.id),
                            students::full_name.eq(&body.full_name),
                            students::birth_date.eq(birth),
                            students::home_schooled.eq(i32::from(body.home_schooled)),
                        ))
                        .execute(c)?;
                }
                None => {
                    diesel::insert_into(students::table)
                        .values(&store::Student {
                            account: account.clone(),
                            school_id: school.id.clone(),
                            class_id: class.id.clone(),
                            full_name: body.full_name.clone(),
                            birth_date: birth,
                            category: None,
                            meal_kinds: "breakfast,lunch".into(),
                            menu_type: None,
                            home_schooled: i32::from(body.home_schooled),
                            active: 1,
                            created_at: now,
                        })
                        .execute(c)?;
                }
            }
            if let Some(e) = account_opened(c, &school, &account)? {
                bus::store::enqueue(c, &e)?;
            }
            settings_view(c, &account)
        })
        .await?;
    sb.wake_relay();
    Ok(HttpResponse::Ok().json(view))
}

/// The meal admin's settings of a student: ПЧВР category, meal kinds (вид
/// питания), menu type.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentSettings {
    #[serde(default)]
    pub account: Option<String>,
    /// ПЧВР category code, or none (the parent pays in full).
    pub category: Option<String>,
    /// e.g. ["breakfast", "lunch"]
    pub meal_kinds: Vec<String>,
    /// «Вид меню» code.
    pub menu_type: Option<String>,
}

fn settings_view(c: &mut DbConnection, account: &str) -> Result<StudentSettings, Problem> {
    let st = store::student(c, account)?.ok_or_else(|| Problem::not_found("no such student"))?;
    Ok(StudentSettings {
        account: Some(st.account.clone()),
        meal_kinds: st
            .meal_kinds
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        category: st.category,
        menu_type: st.menu_type,
    })
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/students/{account}/settings", tag = "meals-reference",
    request_body = StudentSettings, security(("bearer" = [])),
    responses((status = 200, body = StudentSettings), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn put_settings(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<StudentSettings>,
) -> Result<HttpResponse, Problem> {
    let (sid, account) = path.into_inner();
    let school = load_school(&ctx, &sid).await?;
    require_admin(&caller, &school)?;
    let body = body.into_inner();
    for (i, k) in body.meal_kinds.iter().enumerate() {
        meal_kind(&format!("meal_kinds[{i}]"), k)?;
    }
    let view = ctx
        .db
        .write(move |c| -> Result<StudentSettings, Problem> {
            let st = store::student(c, &account)?
                .filter(|s| s.school_id == school.id)
                .ok_or_else(|| {
                    Problem::not_found(format!("school {} has no student {account}", school.id))
                })?;
            if let Some(cat) = &body.category {
                let known: i64 = pchvr_categories::table
                    .find((&school.municipality, cat))
                    .count()
                    .get_result(c)?;
                if known == 0 {
                    return Err(Problem::invalid(
                        "category",
                        format!(
                            "municipality {} has no ПЧВР category {cat}",
                            school.municipality
                        ),
                    ));
                }
            }
            if let Some(t) = &body.menu_type {
                let known: i64 = menu_types::table
                    .find((&school.municipality, t))
                    .count()
                    .get_result(c)?;
                if known == 0 {
                    return Err(Problem::invalid(
                        "menu_type",
                        format!("municipality {} has no menu type {t}", school.municipality),
                    ));
                }
            }
            diesel::update(students::table.find(&st.account))
                .set((
                    students::category.eq(&body.category),
                    students::meal_kinds.eq(body.meal_kinds.join(",")),
                    students::menu_type.eq(&body.menu_type),
                ))
                .execute(c)?;
            settings_view(c, &st.account)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Link the school (or one of its buildings) to a meal organizer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizerLink {
    pub organizer: String,
    /// A building with an organizer of its own; none links the whole school.
    pub building: Option<String>,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/organizer", tag = "meals-reference",
    request_body = OrganizerLink, security(("bearer" = [])),
    responses((status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_organizer(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<OrganizerLink>,
) -> Result<HttpResponse, Problem> {
    let school = load_school(&ctx, &path).await?;
    require_admin(&caller, &school)?;
    valid_id("organizer", &body.organizer)?;
    let body = body.into_inner();
    let s = school.clone();
    ctx.db
        .write(move |c| -> Result<(), Problem> {
            match &body.building {
                Some(b) => {
                    let n = diesel::update(
                        buildings::table
                            .find(b)
                            .filter(buildings::school_id.eq(&s.id)),
                    )
                    .set(buildings::organizer.eq(&body.organizer))
                    .execute(c)?;
                    if n == 0 {
                        return Err(Problem::invalid(
                            "building",
                            format!("school {} has no building {b}", s.id),
                        ));
                    }
                }
                None => {
                    diesel::update(schools::table.find(&s.id))
                        .set(schools::organizer.eq(&body.organizer))
                        .execute(c)?;
                }
            }
            // Payments learns every student's (possibly new) organizer.
            let fresh = store::school(c, &s.id)?.unwrap_or(s.clone());
            let accounts: Vec<String> = students::table
                .filter(students::school_id.eq(&s.id))
                .select(students::account)
                .load(c)?;
            let mut events = Vec::new();
            for a in accounts {
                events.extend(account_opened(c, &fresh, &a)?);
            }
            bus::store::enqueue_all(c, &events)?;
            Ok(())
        })
        .await?;
    ctx.bus.wake_relay();
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimit {
    /// Maximum cost of meals on credit per student, rubles; 0 = no credit.
    #[schema(value_type = String, example = "300.00")]
    pub amount: Money,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/credit-limit", tag = "meals-reference",
    request_body = CreditLimit, security(("bearer" = [])),
    responses((status = 200, body = SchoolView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_credit(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<CreditLimit>,
) -> Result<HttpResponse, Problem> {
    let school = load_school(&ctx, &path).await?;
    require_admin(&caller, &school)?;
    non_negative("amount", body.amount)?;
    let (id, k) = (school.id.clone(), body.amount.kopecks());
    ctx.db
        .write(move |c| {
            diesel::update(schools::table.find(&id))
                .set(schools::credit_limit_kopecks.eq(k))
                .execute(c)
                .map_err(StorageError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}
