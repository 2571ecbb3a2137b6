//! Students (лицевой счёт = the account), the meal admin's per-student
//! settings, and the account payments opens for each.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use platform::{Caller, Problem, Role, ServiceContext};
use serde::{Deserialize, Serialize};
use storage::DbConnection;
use utoipa::ToSchema;

use super::{load_school, meal_kind, require_admin, required, resource, valid_id};
use crate::store;

pub fn routes(data: &web::Data<ServiceContext>, cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(data, "/api/meals/schools/{school}/students/{account}")
            .route(web::put().to(put_student)),
    )
    .service(
        resource(
            data,
            "/api/meals/schools/{school}/students/{account}/settings",
        )
        .route(web::put().to(put_settings)),
    );
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(put_student, put_settings),
    components(schemas(StudentBody, StudentSettings)),
    tags((name = "meals-reference", description = "Dictionaries, schools, classes, students, meal times, links"))
)]
pub struct StudentsApi;

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
                    store::registration::update_student(
                        c,
                        &account,
                        &class.id,
                        &body.full_name,
                        birth,
                        body.home_schooled,
                    )?;
                }
                None => {
                    store::registration::insert_student(
                        c,
                        &store::Student {
                            account: account.clone(),
                            school_id: school.id.clone(),
                            class_id: class.id.clone(),
                            full_name: body.full_name.clone(),
                            birth_date: birth,
                            category: None,
                            meal_kinds: "breakfast,lunch".into(),
                            menu_type: None,
                            home_schooled: body.home_schooled,
                            active: true,
                            created_at: now,
                        },
                    )?;
                }
            }
            if let Some(e) = store::account_opened(c, &school, &account)? {
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
                if !store::registration::category_exists(c, &school.municipality, cat)? {
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
                if !store::registration::menu_type_exists(c, &school.municipality, t)? {
                    return Err(Problem::invalid(
                        "menu_type",
                        format!("municipality {} has no menu type {t}", school.municipality),
                    ));
                }
            }
            store::registration::set_settings(
                c,
                &st.account,
                body.category.as_deref(),
                &body.meal_kinds.join(","),
                body.menu_type.as_deref(),
            )?;
            settings_view(c, &st.account)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
