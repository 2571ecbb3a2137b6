//! Roles named in the portal's regulations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role a caller holds, as carried in the token's `roles` claim.
///
/// The wire form is snake_case (`"meal_admin"`), the same as [`Role::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Родитель (parent or legal guardian of a pupil).
    Parent,
    /// Классный руководитель (class teacher, the form tutor of a class).
    ClassTeacher,
    /// Администратор питания школы (school meal administrator).
    MealAdmin,
    /// Организатор питания (meal organizer, the caterer serving a school).
    MealOrganizer,
    /// Сотрудник ОМСУ, муниципальный служащий (municipal officer of a local
    /// self-government body).
    MunicipalOfficer,
    /// Администратор Оператора, ГКУ ТО ЦИТТО (administrator of the Operator, the
    /// regional state IT centre that runs the portal).
    OperatorAdmin,
    /// Кредитная организация (bank that takes meal payments).
    Bank,
    /// Внешняя ИС ведомства (an agency's external information system calling
    /// the API machine-to-machine).
    InformationSystem,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 8] = [
        Role::Parent,
        Role::ClassTeacher,
        Role::MealAdmin,
        Role::MealOrganizer,
        Role::MunicipalOfficer,
        Role::OperatorAdmin,
        Role::Bank,
        Role::InformationSystem,
    ];

    /// The wire name, as used in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Parent => "parent",
            Role::ClassTeacher => "class_teacher",
            Role::MealAdmin => "meal_admin",
            Role::MealOrganizer => "meal_organizer",
            Role::MunicipalOfficer => "municipal_officer",
            Role::OperatorAdmin => "operator_admin",
            Role::Bank => "bank",
            Role::InformationSystem => "information_system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_from_str() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!(
            "superuser".parse::<Role>(),
            Err(UnknownRole("superuser".into()))
        );
        // Case matters: the wire form is exactly snake_case.
        assert!("Parent".parse::<Role>().is_err());
        assert!(serde_json::from_str::<Role>("\"admin\"").is_err());
    }
}
