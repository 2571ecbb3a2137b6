//! Schools with their buildings, classes and meal times, the school–organizer
//! link and the school's credit limit.

use actix_web::{web, HttpResponse};
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Col;
use super::{
    load_school, meal_kind, non_negative, require_admin, require_municipal, required, resource,
    valid_id,
};
use crate::domain;
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    cfg.service(
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
        resource(data, "/api/meals/schools/{school}/organizer").route(web::put().to(put_organizer)),
    )
    .service(
        resource(data, "/api/meals/schools/{school}/credit-limit").route(web::put().to(put_credit)),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_school, get_school, put_building, put_class, put_meal_time, put_organizer, put_credit),
    components(schemas(SchoolBody, SchoolView, BuildingBody, ClassBody, MealTimeBody, OrganizerLink, CreditLimit)),
    tags((name = "meals-reference", description = "Dictionaries, schools, classes, students, meal times, links"))
)]
pub struct SchoolsApi;

fn building_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Text, Col::OptText])
}

fn class_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int, Col::OptText])
}

fn meal_time_rows() -> utoipa::openapi::schema::Array {
    super::rows_of(&[Col::Text, Col::Text, Col::Int, Col::Text])
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
                    store::school_setup::rename_school(c, &sid, &body.name)?;
                    Ok(())
                }
                None => {
                    store::school_setup::insert_school(
                        c,
                        &store::School {
                            id: sid.clone(),
                            municipality: body.municipality,
                            name: body.name,
                            credit_limit_kopecks: 0,
                            organizer: None,
                            created_at: now,
                        },
                    )?;
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
                buildings: store::school_setup::buildings_of(c, &id)?,
                classes: store::school_setup::classes_of(c, &id)?,
                meal_times: store::school_setup::meal_times_of(c, &id)?,
                students: store::school_setup::student_count(c, &id)?,
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
    let (school, _) = super::readable_school(&ctx, &caller, &path).await?;
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
            match store::school_setup::building_owner(c, &bid)? {
                Some(o) if o != sid => Err(super::elsewhere(
                    sees_all,
                    "building-elsewhere",
                    format!("building {bid} is not one of school {sid}'s"),
                    format!("building {bid} belongs to school {o}"),
                )),
                Some(_) => {
                    store::school_setup::update_building(c, &bid, &body.name, &body.address)?;
                    Ok(())
                }
                None => {
                    store::school_setup::insert_building(c, &bid, &sid, &body.name, &body.address)?;
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
                let owner = store::school_setup::building_owner(c, b)?;
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
                    store::school_setup::update_class(c, &row)?;
                    Ok(())
                }
                None => {
                    store::school_setup::insert_class(c, &row)?;
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
        .write(move |c| store::school_setup::save_meal_time(c, &row))
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
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
                    if !store::school_setup::link_building(c, &s.id, b, &body.organizer)? {
                        return Err(Problem::invalid(
                            "building",
                            format!("school {} has no building {b}", s.id),
                        ));
                    }
                }
                None => {
                    store::school_setup::link_school(c, &s.id, &body.organizer)?;
                }
            }
            // Payments learns every student's (possibly new) organizer.
            let fresh = store::school(c, &s.id)?.unwrap_or(s.clone());
            let accounts = store::school_setup::accounts_of(c, &s.id)?;
            let mut events = Vec::new();
            for a in accounts {
                events.extend(store::account_opened(c, &fresh, &a)?);
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
        .write(move |c| store::school_setup::set_credit_limit(c, &id, k))
        .await?;
    Ok(HttpResponse::Ok().json(school_view(&ctx, &school.id).await?))
}
