//! What a caterer's accounting system asks through the XML gateway
//! (`caterers.*`): the functions the REST handlers call, in the responder's
//! transaction, for the organizer the calling participant is mapped to.

use contracts::gateway::ServiceCall;
use platform::export::Cell;
use platform::Problem;
use serde::Deserialize;
use storage::DbConnection;

use super::catalog::{self, CatalogUpload, DayMenu};

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(v).map_err(Problem::internal)
}

pub fn gateway_call(
    c: &mut DbConnection,
    call: &ServiceCall,
    clock: &dyn calendar::Clock,
) -> Result<serde_json::Value, Problem> {
    let org = call
        .caller
        .organizer
        .as_deref()
        .ok_or_else(|| Problem::forbidden("the participant is not mapped to an organizer"))?;
    let (now, today) = (clock.now().naive_utc(), clock.today());
    match call.operation.as_str() {
        "caterers.UploadCatalog" => {
            let upload: CatalogUpload = platform::calls::body(call)?;
            to_json(&catalog::upload_catalog(c, org, &upload, now)?)
        }
        "caterers.SetDayMenu" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct SetMenu {
                school: String,
                date: String,
                meal_kind: String,
                #[serde(default)]
                complexes: Vec<String>,
                default: String,
            }
            let m: SetMenu = platform::calls::body(call)?;
            let day = super::date("date", &m.date)?;
            let menu = DayMenu {
                complexes: m.complexes,
                default: m.default,
            };
            to_json(&catalog::set_day_menu(
                c,
                org,
                &m.school,
                day,
                &m.meal_kind,
                &menu,
                today,
                now,
            )?)
        }
        "caterers.Procurement" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Period {
                from: Option<String>,
                to: Option<String>,
            }
            let p: Period = platform::calls::body(call)?;
            let (from, to) = super::span(
                p.from.as_deref(),
                p.to.as_deref(),
                super::next_two_weeks(today),
                62,
            )?;
            let rows = super::reports::procurement_rows(c, org, from, to)?;
            let text = |cell: &Cell| match cell {
                Cell::Text(t) => serde_json::Value::from(t.clone()),
                Cell::Int(n) => serde_json::Value::from(*n),
                Cell::Money(m) => serde_json::Value::from(m.to_string()),
            };
            let keys = [
                "school",
                "date",
                "meal_kind",
                "complex",
                "confirmed",
                "by_default",
                "total",
            ];
            let lines: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        keys.iter()
                            .zip(row)
                            .map(|(k, cell)| (k.to_string(), text(cell)))
                            .collect(),
                    )
                })
                .collect();
            Ok(serde_json::json!({ "lines": lines }))
        }
        "caterers.ClassRequests" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Day {
                date: Option<String>,
                school: Option<String>,
            }
            let d: Day = platform::calls::body(call)?;
            let day = d
                .date
                .as_deref()
                .map(|s| super::date("date", s))
                .transpose()?
                .unwrap_or(today);
            let requests =
                super::requests::requests_of_organizer(c, org, day, d.school.as_deref())?;
            Ok(serde_json::json!({ "requests": requests }))
        }
        _ => Err(platform::calls::unknown(call)),
    }
}
