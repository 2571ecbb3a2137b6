//! The organizer's catalogue: dishes, complexes (versioned once chosen), the
//! additional menu, the schools' day menus with the «комплекс дня», bulk upload
//! from the organizer's accounting system, and notices of incomplete menus.

use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use platform::{Caller, Problem, ServiceContext};
use primitives::Money;
use serde::{Deserialize, Serialize};
use storage::{DbConnection, StorageError};
use utoipa::ToSchema;

use super::{
    load_school, meal_kind, non_negative, require_organizer, required, resource, valid_id,
};
use crate::domain::catalog::{complex_change, ComplexChange};
use crate::domain::orders::ExtraKind;
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    let o = "/api/meals/organizers/{organizer}";
    cfg.service(resource(data, &format!("{o}/dishes/{{id}}")).route(web::put().to(put_dish)))
        .service(
            resource(data, &format!("{o}/complexes/{{code}}")).route(web::put().to(put_complex)),
        )
        .service(resource(data, &format!("{o}/extras/{{id}}")).route(web::put().to(put_extra)))
        .service(
            resource(data, &format!("{o}/catalog"))
                .route(web::post().to(upload))
                .route(web::get().to(get_catalog)),
        )
        .service(resource(data, &format!("{o}/notices")).route(web::get().to(notices)))
        .service(
            resource(data, "/api/meals/schools/{school}/menus/{date}/{meal_kind}")
                .route(web::put().to(put_day_menu)),
        );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_dish, put_complex, put_extra, upload, get_catalog, notices, put_day_menu),
    components(schemas(Dish, ComplexBody, ComplexView, ExtraBody, CatalogUpload, Catalog, DayMenu, Notice)),
    tags((name = "meals-catalog", description = "Dishes, complexes, the additional menu, day menus"))
)]
pub struct CatalogApi;

/// A dish (блюдо).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dish {
    /// Set in bulk uploads; taken from the path otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// Weight / yield, grams.
    pub yield_grams: i32,
    #[schema(value_type = String, example = "45.00")]
    pub price: Money,
    #[serde(default)]
    pub allergens: Vec<String>,
}

/// A complex (комплекс питания) for a menu type, age category and meal kind.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplexBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub name: String,
    pub menu_type: String,
    pub age_category: String,
    pub meal_kind: String,
    #[schema(value_type = String, example = "150.00")]
    pub price: Money,
    /// Dish ids.
    pub dishes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ComplexView {
    /// `<code>.v<version>`: what orders refer to.
    pub id: String,
    pub code: String,
    pub version: i32,
    pub name: String,
    pub menu_type: String,
    pub age_category: String,
    pub meal_kind: String,
    #[schema(value_type = String)]
    pub price: Money,
    pub dishes: Vec<String>,
}

impl From<store::Complex> for ComplexView {
    fn from(c: store::Complex) -> Self {
        ComplexView {
            dishes: serde_json::from_str(&c.dishes).unwrap_or_default(),
            id: c.id,
            code: c.code,
            version: c.version,
            name: c.name,
            menu_type: c.menu_type,
            age_category: c.age_category,
            meal_kind: c.meal_kind,
            price: Money::from_kopecks(c.price_kopecks),
        }
    }
}

/// An item of the additional menu: `supplement` (only with a complex) or `home`
/// (products for home-schooled students).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub kind: String,
    #[schema(value_type = String, example = "25.00")]
    pub price: Money,
}

fn save_dish(
    c: &mut DbConnection,
    org: &str,
    id: &str,
    d: &Dish,
    at: NaiveDateTime,
    f: &str,
) -> Result<(), Problem> {
    valid_id(&format!("{f}id"), id)?;
    required(&format!("{f}name"), &d.name)?;
    non_negative(&format!("{f}price"), d.price)?;
    if d.yield_grams <= 0 {
        return Err(Problem::invalid(
            &format!("{f}yield_grams"),
            "must be positive",
        ));
    }
    let allergens = d.allergens.join(", ");
    let row = store::catalog::DishRow {
        id,
        organizer: org,
        name: &d.name,
        yield_grams: d.yield_grams,
        price_kopecks: d.price.kopecks(),
        allergens: &allergens,
    };
    match store::catalog::dish_owner(c, id)? {
        Some(o) if o != org => Err(Problem::conflict(
            "dish-elsewhere",
            format!("dish {id} belongs to another organizer"),
        )),
        Some(_) => {
            store::catalog::update_dish(c, &row)?;
            Ok(())
        }
        None => {
            store::catalog::insert_dish(c, &row, at)?;
            Ok(())
        }
    }
}

/// Saves a complex: in place while no parent chose it, as a new version after.
fn save_complex(
    c: &mut DbConnection,
    org: &str,
    code: &str,
    b: &ComplexBody,
    at: NaiveDateTime,
    f: &str,
) -> Result<store::Complex, Problem> {
    valid_id(&format!("{f}code"), code)?;
    required(&format!("{f}name"), &b.name)?;
    meal_kind(&format!("{f}meal_kind"), &b.meal_kind)?;
    non_negative(&format!("{f}price"), b.price)?;
    if b.dishes.is_empty() {
        return Err(Problem::invalid(
            &format!("{f}dishes"),
            "a complex needs at least one dish",
        ));
    }
    for (i, d) in b.dishes.iter().enumerate() {
        if store::catalog::dish_owner(c, d)?.as_deref() != Some(org) {
            return Err(Problem::invalid(
                &format!("{f}dishes[{i}]"),
                format!("organizer {org} has no dish {d}"),
            ));
        }
    }
    if !store::catalog::menu_type_known(c, &b.menu_type)? {
        return Err(Problem::invalid(
            &format!("{f}menu_type"),
            format!("no municipality has menu type {}", b.menu_type),
        ));
    }
    if !store::catalog::age_category_known(c, &b.age_category)? {
        return Err(Problem::invalid(
            &format!("{f}age_category"),
            format!("no municipality has age category {}", b.age_category),
        ));
    }
    let dishes_json = serde_json::to_string(&b.dishes).map_err(Problem::internal)?;
    let current = store::current_complex(c, org, code)?;
    let fresh = |version: i32| store::Complex {
        id: format!("{code}.v{version}"),
        organizer: org.to_string(),
        code: code.to_string(),
        version,
        name: b.name.clone(),
        menu_type: b.menu_type.clone(),
        age_category: b.age_category.clone(),
        meal_kind: b.meal_kind.clone(),
        price_kopecks: b.price.kopecks(),
        dishes: dishes_json.clone(),
        current: true,
        created_at: at,
    };
    let chosen = match &current {
        Some(cur) => Some((cur.version, store::catalog::complex_chosen(c, &cur.id)?)),
        None => None,
    };
    match (complex_change(chosen), current) {
        (ComplexChange::InPlace { .. }, Some(cur)) => {
            let row = store::Complex {
                id: cur.id.clone(),
                version: cur.version,
                created_at: cur.created_at,
                ..fresh(cur.version)
            };
            store::catalog::correct_complex(c, &row)?;
            Ok(row)
        }
        (ComplexChange::NewVersion { version }, Some(cur)) => {
            store::catalog::retire_complex(c, &cur.id)?;
            let row = fresh(version);
            store::catalog::insert_complex(c, &row)?;
            Ok(row)
        }
        _ => {
            if store::catalog::complex_exists(c, &format!("{code}.v1"))? {
                return Err(Problem::conflict(
                    "complex-elsewhere",
                    format!("complex code {code} belongs to another organizer"),
                ));
            }
            let row = fresh(1);
            store::catalog::insert_complex(c, &row)?;
            Ok(row)
        }
    }
}

fn save_extra(
    c: &mut DbConnection,
    org: &str,
    id: &str,
    b: &ExtraBody,
    at: NaiveDateTime,
    f: &str,
) -> Result<(), Problem> {
    valid_id(&format!("{f}id"), id)?;
    required(&format!("{f}name"), &b.name)?;
    non_negative(&format!("{f}price"), b.price)?;
    if ExtraKind::parse(&b.kind).is_none() {
        return Err(Problem::invalid(
            &format!("{f}kind"),
            "must be `supplement` or `home`",
        ));
    }
    match store::catalog::extra_owner(c, id)? {
        Some(o) if o != org => Err(Problem::conflict(
            "extra-elsewhere",
            format!("item {id} belongs to another organizer"),
        )),
        Some(_) => {
            store::catalog::update_extra(c, id, &b.name, &b.kind, b.price.kopecks())?;
            Ok(())
        }
        None => {
            store::catalog::insert_extra(
                c,
                &store::Extra {
                    id: id.into(),
                    organizer: org.into(),
                    name: b.name.clone(),
                    kind: b.kind.clone(),
                    price_kopecks: b.price.kopecks(),
                    active: true,
                    created_at: at,
                },
            )?;
            Ok(())
        }
    }
}

#[utoipa::path(put, path = "/api/meals/organizers/{organizer}/dishes/{id}", tag = "meals-catalog",
    request_body = Dish, security(("bearer" = [])),
    responses((status = 409, body = Problem, description = "The id is a dish of another organizer"), (status = 200, body = Dish), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_dish(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<Dish>,
) -> Result<HttpResponse, Problem> {
    let (org, id) = path.into_inner();
    require_organizer(&caller, &org)?;
    let at = ctx.clock.now().naive_utc();
    let mut d = body.into_inner();
    d.id = Some(id.clone());
    let d2 = d.clone();
    ctx.db
        .write(move |c| save_dish(c, &org, &id, &d2, at, ""))
        .await?;
    Ok(HttpResponse::Ok().json(d))
}

/// Create or change a complex. Once a parent chose it, a change makes a new
/// version (the answer's `id`); orders keep the version they chose.
#[utoipa::path(put, path = "/api/meals/organizers/{organizer}/complexes/{code}", tag = "meals-catalog",
    request_body = ComplexBody, security(("bearer" = [])),
    responses((status = 200, body = ComplexView), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_complex(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ComplexBody>,
) -> Result<HttpResponse, Problem> {
    let (org, code) = path.into_inner();
    require_organizer(&caller, &org)?;
    let at = ctx.clock.now().naive_utc();
    let b = body.into_inner();
    let row = ctx
        .db
        .write(move |c| save_complex(c, &org, &code, &b, at, ""))
        .await?;
    Ok(HttpResponse::Ok().json(ComplexView::from(row)))
}

#[utoipa::path(put, path = "/api/meals/organizers/{organizer}/extras/{id}", tag = "meals-catalog",
    request_body = ExtraBody, security(("bearer" = [])),
    responses((status = 200, body = ExtraBody), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_extra(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ExtraBody>,
) -> Result<HttpResponse, Problem> {
    let (org, id) = path.into_inner();
    require_organizer(&caller, &org)?;
    let at = ctx.clock.now().naive_utc();
    let mut b = body.into_inner();
    b.id = Some(id.clone());
    let b2 = b.clone();
    ctx.db
        .write(move |c| save_extra(c, &org, &id, &b2, at, ""))
        .await?;
    Ok(HttpResponse::Ok().json(b))
}

/// A bulk upload from the organizer's accounting system: all of it or nothing.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogUpload {
    #[serde(default)]
    pub dishes: Vec<Dish>,
    #[serde(default)]
    pub complexes: Vec<ComplexBody>,
    #[serde(default)]
    pub extras: Vec<ExtraBody>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Catalog {
    pub dishes: Vec<Dish>,
    /// Current versions.
    pub complexes: Vec<ComplexView>,
    pub extras: Vec<ExtraBody>,
}

fn catalog_of(c: &mut DbConnection, org: &str) -> Result<Catalog, StorageError> {
    let ds = store::catalog::dishes_of(c, org)?;
    let cs = store::catalog::current_complexes(c, org)?;
    let es = store::catalog::extras_of_organizer(c, org)?;
    Ok(Catalog {
        dishes: ds
            .into_iter()
            .map(|(id, name, y, p, a)| Dish {
                id: Some(id),
                name,
                yield_grams: y,
                price: Money::from_kopecks(p),
                allergens: a
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
            .collect(),
        complexes: cs.into_iter().map(ComplexView::from).collect(),
        extras: es
            .into_iter()
            .map(|e| ExtraBody {
                id: Some(e.id),
                name: e.name,
                kind: e.kind,
                price: Money::from_kopecks(e.price_kopecks),
            })
            .collect(),
    })
}

/// Saves an upload of `org`'s catalogue, all or nothing (the caller's
/// transaction rolls back on the first item refused, which the error names:
/// `dishes[2].price`). The REST and the SOAP door both call it.
pub(crate) fn upload_catalog(
    c: &mut DbConnection,
    org: &str,
    b: &CatalogUpload,
    at: NaiveDateTime,
) -> Result<Catalog, Problem> {
    for (i, d) in b.dishes.iter().enumerate() {
        let id =
            d.id.clone()
                .ok_or_else(|| Problem::invalid(&format!("dishes[{i}].id"), "required"))?;
        save_dish(c, org, &id, d, at, &format!("dishes[{i}]."))?;
    }
    for (i, x) in b.complexes.iter().enumerate() {
        let code = x
            .code
            .clone()
            .ok_or_else(|| Problem::invalid(&format!("complexes[{i}].code"), "required"))?;
        save_complex(c, org, &code, x, at, &format!("complexes[{i}]."))?;
    }
    for (i, e) in b.extras.iter().enumerate() {
        let id =
            e.id.clone()
                .ok_or_else(|| Problem::invalid(&format!("extras[{i}].id"), "required"))?;
        save_extra(c, org, &id, e, at, &format!("extras[{i}]."))?;
    }
    Ok(catalog_of(c, org)?)
}

#[utoipa::path(post, path = "/api/meals/organizers/{organizer}/catalog", tag = "meals-catalog",
    request_body = CatalogUpload, security(("bearer" = [])),
    responses((status = 200, body = Catalog), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "A dish id of the upload is another organizer's; nothing was saved")))]
async fn upload(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<CatalogUpload>,
) -> Result<HttpResponse, Problem> {
    let org = path.into_inner();
    require_organizer(&caller, &org)?;
    let at = ctx.clock.now().naive_utc();
    let b = body.into_inner();
    let cat = ctx
        .db
        .write(move |c| upload_catalog(c, &org, &b, at))
        .await?;
    Ok(HttpResponse::Ok().json(cat))
}

#[utoipa::path(get, path = "/api/meals/organizers/{organizer}/catalog", tag = "meals-catalog", security(("bearer" = [])),
    responses((status = 200, body = Catalog), (status = 403, body = Problem)))]
async fn get_catalog(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let org = path.into_inner();
    require_organizer(&caller, &org)?;
    let cat = ctx.db.read(move |c| catalog_of(c, &org)).await?;
    Ok(HttpResponse::Ok().json(cat))
}

/// The complexes a school is offered on a day and meal kind, and which of them
/// is the «комплекс дня» (what a student without an order gets).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayMenu {
    /// Complex codes.
    pub complexes: Vec<String>,
    /// The «комплекс дня»: one of `complexes`.
    pub default: String,
}

#[utoipa::path(put, path = "/api/meals/schools/{school}/menus/{date}/{meal_kind}", tag = "meals-catalog",
    request_body = DayMenu, security(("bearer" = [])),
    responses((status = 200, body = DayMenu), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn put_day_menu(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Json<DayMenu>,
) -> Result<HttpResponse, Problem> {
    let (sid, day, kind) = path.into_inner();
    let day = super::date("date", &day)?;
    meal_kind("meal_kind", &kind)?;
    let school = load_school(&ctx, &sid).await?;
    let s2 = school.clone();
    let orgs = ctx
        .db
        .read(move |c| store::organizers_of_school(c, &s2))
        .await?;
    let Some(org) = orgs
        .iter()
        .find(|o| caller.may_act_for_organizer(o))
        .cloned()
    else {
        caller.require(&[platform::Role::MealOrganizer, platform::Role::OperatorAdmin])?;
        return Err(Problem::forbidden(format!(
            "school {} is not linked to your organizer",
            school.id
        )));
    };
    caller.require(&[platform::Role::MealOrganizer, platform::Role::OperatorAdmin])?;
    let (today, now) = (super::local_now(&ctx).date(), ctx.clock.now().naive_utc());
    let menu = body.into_inner();
    let saved = ctx
        .db
        .write(move |c| set_day_menu(c, &org, &sid, day, &kind, &menu, today, now))
        .await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// Sets the complexes `school` is offered by `org` on `day` and `kind`, with
/// the «комплекс дня». The REST and the SOAP door both call it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn set_day_menu(
    c: &mut DbConnection,
    org: &str,
    school: &str,
    day: chrono::NaiveDate,
    kind: &str,
    menu: &DayMenu,
    today: chrono::NaiveDate,
    now: NaiveDateTime,
) -> Result<DayMenu, Problem> {
    meal_kind("meal_kind", kind)?;
    let linked = match store::school(c, school)? {
        Some(s) => store::organizers_of_school(c, &s)?.iter().any(|o| o == org),
        None => false,
    };
    if !linked {
        return Err(Problem::not_found(format!(
            "school {school} is not linked to organizer {org}"
        )));
    }
    if day <= today {
        return Err(Problem::invalid(
            "date",
            format!("{day} has begun; menus are set for days ahead"),
        ));
    }
    if !menu.complexes.contains(&menu.default) {
        return Err(Problem::invalid(
            "default",
            "the «комплекс дня» must be one of the complexes",
        ));
    }
    for (i, code) in menu.complexes.iter().enumerate() {
        let cx = store::current_complex(c, org, code)?.ok_or_else(|| {
            Problem::invalid(
                &format!("complexes[{i}]"),
                format!("organizer {org} has no complex {code}"),
            )
        })?;
        if cx.meal_kind != kind {
            return Err(Problem::invalid(
                &format!("complexes[{i}]"),
                format!("complex {code} is for {}, not {kind}", cx.meal_kind),
            ));
        }
    }
    let offered =
        store::catalog::set_day_menu(c, school, day, kind, &menu.complexes, &menu.default)?;
    if offered >= crate::domain::MIN_COMPLEXES {
        store::catalog::clear_menu_notice(c, school, day, kind)?;
    } else {
        store::record_menu_notice(c, school, day, kind, org, offered, now)?;
    }
    Ok(DayMenu {
        complexes: menu.complexes.clone(),
        default: menu.default.clone(),
    })
}

/// A day whose menu offers parents fewer than two complexes: noticed when the
/// menu was set so, or when a parent's order met it (reading a menu records
/// nothing).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Notice {
    pub school: String,
    pub date: String,
    pub meal_kind: String,
    pub offered: i32,
    pub noticed_at: String,
}

#[utoipa::path(get, path = "/api/meals/organizers/{organizer}/notices", tag = "meals-catalog", security(("bearer" = [])),
    responses((status = 200, body = [Notice]), (status = 403, body = Problem)))]
async fn notices(
    ctx: web::Data<ServiceContext>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let org = path.into_inner();
    require_organizer(&caller, &org)?;
    let rows: Vec<(String, chrono::NaiveDate, String, i32, NaiveDateTime)> = ctx
        .db
        .read(move |c| store::catalog::notices_of(c, &org))
        .await?;
    let out: Vec<Notice> = rows
        .into_iter()
        .map(|(school, date, meal_kind, offered, at)| Notice {
            school,
            date: date.to_string(),
            meal_kind,
            offered,
            noticed_at: super::tyumen(at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}
