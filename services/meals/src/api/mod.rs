//! REST handlers of the meals service: parse, authorize against role and scope,
//! apply the domain rules, answer problem+json on bad input (changing nothing).

pub mod catalog;
pub mod dictionaries;
pub mod gateway;
pub mod orders;
pub mod reports;
pub mod requests;
pub mod schools;
pub mod students;

use actix_web::web;
use chrono::NaiveDate;
use platform::{Caller, Problem, Role, ServiceContext};
use primitives::Money;

use crate::domain::RateKind;
use crate::store;

platform::string_enum_schema!(RateKind: Percent, Fixed; "How a ПЧВР category reimburses a meal: a share of the price, or a fixed sum.");

/// What one meal costs: the complex's full price, the reimbursed part, the
/// additional items (always at full price), and what the parent pays.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct MealPrice {
    #[schema(value_type = String, example = "150.00")]
    pub price: Money,
    #[schema(value_type = String, example = "75.00")]
    pub reimbursed: Money,
    #[schema(value_type = String, example = "20.00")]
    pub extras: Money,
    #[schema(value_type = String, example = "95.00")]
    pub to_pay: Money,
}

impl From<crate::domain::MealPrice> for MealPrice {
    fn from(p: crate::domain::MealPrice) -> Self {
        MealPrice {
            price: p.price,
            reimbursed: p.reimbursed,
            extras: p.extras,
            to_pay: p.to_pay,
        }
    }
}

pub fn routes(ctx: &ServiceContext, cfg: &mut web::ServiceConfig) {
    let data = web::Data::new(ctx.clone());
    dictionaries::routes(&data, cfg);
    schools::routes(&data, cfg);
    students::routes(&data, cfg);
    catalog::routes(&data, cfg);
    orders::routes(&data, cfg);
    requests::routes(&data, cfg);
    reports::routes(&data, cfg);
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = <dictionaries::DictionariesApi as utoipa::OpenApi>::openapi();
    doc.merge(<schools::SchoolsApi as utoipa::OpenApi>::openapi());
    doc.merge(<students::StudentsApi as utoipa::OpenApi>::openapi());
    doc.merge(<catalog::CatalogApi as utoipa::OpenApi>::openapi());
    doc.merge(<orders::OrdersApi as utoipa::OpenApi>::openapi());
    doc.merge(<requests::RequestsApi as utoipa::OpenApi>::openapi());
    doc.merge(<reports::ReportsApi as utoipa::OpenApi>::openapi());
    doc
}

/// A resource under the service's context.
pub(crate) fn resource(data: &web::Data<ServiceContext>, path: &str) -> actix_web::Resource {
    web::resource(path).app_data(data.clone())
}

/// Ids in paths and bodies: 1–64 latin letters, digits, '-', '_', '.'.
pub(crate) fn valid_id(field: &str, id: &str) -> Result<(), Problem> {
    Problem::require_plain_id(field, id)
}

/// A column of a row answered as a JSON array (`["1a", "1А", 1, null]`).
#[derive(Clone, Copy)]
pub(crate) enum Col {
    Text,
    Int,
    OptText,
}

/// The OpenAPI schema of a list of rows answered as JSON arrays of fixed
/// columns: each row an array of exactly `columns.len()` values of the
/// columns' types (the order is in the field's description). Tuple schemas
/// (`prefixItems`) are left out: stock clients still read 3.1 documents with
/// 3.0 tooling that rejects them.
pub(crate) fn rows_of(columns: &[Col]) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{
        ArrayBuilder, ArrayItems, ObjectBuilder, Schema, SchemaType, Type,
    };
    let mut types = Vec::new();
    for c in columns {
        let more: &[Type] = match c {
            Col::Text => &[Type::String],
            Col::Int => &[Type::Integer],
            Col::OptText => &[Type::String, Type::Null],
        };
        for t in more {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
    }
    let value = ObjectBuilder::new().schema_type(SchemaType::from_iter(types));
    let row = ArrayBuilder::new()
        .items(value)
        .min_items(Some(columns.len()))
        .max_items(Some(columns.len()))
        .build();
    ArrayBuilder::new()
        .items(ArrayItems::RefOrSchema(Box::new(Schema::Array(row).into())))
        .build()
}

pub(crate) fn required(field: &str, value: &str) -> Result<(), Problem> {
    Problem::require_text(field, value)
}

pub(crate) fn date(field: &str, s: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Problem::invalid(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

/// The days `from`–`to` of a query, each defaulting to its side of `default`;
/// 400 unless the range runs forwards and spans at most `max_days`.
pub(crate) fn span(
    from: Option<&str>,
    to: Option<&str>,
    default: (NaiveDate, NaiveDate),
    max_days: i64,
) -> Result<(NaiveDate, NaiveDate), Problem> {
    let from = from
        .map(|s| date("from", s))
        .transpose()?
        .unwrap_or(default.0);
    let to = to.map(|s| date("to", s)).transpose()?.unwrap_or(default.1);
    if to < from || (to - from).num_days() > max_days {
        return Err(Problem::invalid(
            "to",
            format!("the range must run forwards and span at most {max_days} days"),
        ));
    }
    Ok((from, to))
}

/// The next two weeks, the ordering window: tomorrow to 14 days ahead.
pub(crate) fn next_two_weeks(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        today + chrono::Duration::days(1),
        today + chrono::Duration::days(crate::domain::ORDER_HORIZON_DAYS),
    )
}

pub(crate) fn non_negative(field: &str, m: Money) -> Result<(), Problem> {
    if m.kopecks() < 0 {
        Err(Problem::invalid(field, format!("{m} is negative")))
    } else {
        Ok(())
    }
}

pub(crate) fn meal_kind(field: &str, kind: &str) -> Result<crate::domain::MealKind, Problem> {
    crate::domain::MealKind::parse(kind).ok_or_else(|| {
        Problem::invalid(
            field,
            format!("{kind:?} is not one of breakfast, lunch, snack"),
        )
    })
}

fn forbidden(what: impl Into<String>) -> Problem {
    Problem::forbidden(what)
}

/// The caller is the municipality's officer (or the Operator).
pub(crate) fn require_municipal(caller: &Caller, municipality: &str) -> Result<(), Problem> {
    caller.require(&[Role::MunicipalOfficer, Role::OperatorAdmin])?;
    if caller.may_see_municipality(municipality) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "you do not act for municipality {municipality}"
        )))
    }
}

/// The caller administers the school's meals (or is the Operator).
pub(crate) fn require_admin(caller: &Caller, school: &store::School) -> Result<(), Problem> {
    caller.require(&[Role::MealAdmin, Role::OperatorAdmin])?;
    if caller.may_see_school(&school.id) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "you do not administer meals of school {}",
            school.id
        )))
    }
}

/// The school's meal admin, or the school's own information system (the
/// Electronic school that registers its students and marks attendance): an ИС
/// reaches only the schools its token names, and any other school does not
/// exist for it.
pub(crate) fn require_admin_or_school_system(
    caller: &Caller,
    school: &store::School,
) -> Result<(), Problem> {
    if caller.has_role(Role::InformationSystem) && !caller.has_role(Role::OperatorAdmin) {
        return if caller.may_see_school(&school.id) {
            Ok(())
        } else {
            Err(Problem::not_found("no such school"))
        };
    }
    require_admin(caller, school)
}

/// An id taken by another tenant (a school of another municipality, a class
/// of another school): the operator, who sees both, gets 409 naming the
/// owner; anyone else 404 naming only what they asked for, so ids of schools,
/// classes and municipalities they may not see are not told.
pub(crate) fn elsewhere(sees_all: bool, kind: &str, theirs: String, owner: String) -> Problem {
    if sees_all {
        Problem::conflict(kind, owner)
    } else {
        Problem::not_found(theirs)
    }
}

pub(crate) fn require_organizer(caller: &Caller, organizer: &str) -> Result<(), Problem> {
    caller.require(&[Role::MealOrganizer, Role::OperatorAdmin])?;
    if caller.may_act_for_organizer(organizer) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "you do not act for organizer {organizer}"
        )))
    }
}

/// Whether the caller may read about `school`: its meal admin, its class
/// teachers (own classes are checked by the caller), a linked organizer, the
/// municipality's officer, the Operator.
/// The school and its organizers, if the caller may read it (its staff,
/// officers, linked organizers, the operator, and class teachers of the
/// school); 404 otherwise.
pub(crate) async fn readable_school(
    ctx: &ServiceContext,
    caller: &Caller,
    id: &str,
) -> Result<(store::School, Vec<String>), Problem> {
    let school = load_school(ctx, id).await?;
    let s2 = school.clone();
    let orgs = ctx
        .db
        .read(move |c| store::organizers_of_school(c, &s2))
        .await?;
    let teacher = caller.has_role(Role::ClassTeacher) && caller.may_see_school(&school.id);
    if !may_read_school(caller, &school, &orgs) && !teacher {
        return Err(Problem::not_found("no such school"));
    }
    Ok((school, orgs))
}

pub(crate) fn may_read_school(
    caller: &Caller,
    school: &store::School,
    organizers: &[String],
) -> bool {
    caller.has_role(Role::OperatorAdmin)
        || (caller.has_role(Role::MealAdmin) && caller.may_see_school(&school.id))
        || (caller.has_role(Role::MunicipalOfficer)
            && caller.may_see_municipality(&school.municipality))
        || (caller.has_role(Role::MealOrganizer)
            && organizers.iter().any(|o| caller.may_act_for_organizer(o)))
}

pub(crate) async fn load_school(ctx: &ServiceContext, id: &str) -> Result<store::School, Problem> {
    let id = id.to_string();
    ctx.db
        .read(move |c| store::school(c, &id))
        .await?
        .ok_or_else(|| Problem::not_found("no such school"))
}

pub(crate) use crate::close::local_now;
/// A stored UTC timestamp as Tyumen local time with its offset.
pub(crate) use calendar::tyumen_iso as tyumen;
