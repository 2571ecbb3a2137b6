//! The verified caller and the access checks made against it.

use std::collections::BTreeSet;

use crate::{AuthError, Claims, Role};

/// The verified caller, built from a token that passed [`crate::Verifier::verify`].
///
/// Access checks deny by default: an empty scope set grants nothing. Scope checks
/// compare ids literally; hierarchy (a municipality's schools, a caterer's
/// schools) is for the back end to resolve from its own data.
///
/// [`Role::OperatorAdmin`] passes every scope check (`may_*`, `is_*`), because the
/// Operator administers the whole region. It does not pass [`Principal::require_any`]
/// unless listed there, so each endpoint states explicitly whether the Operator may
/// use it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// `sub` of the token.
    pub subject: String,
    /// Roles held; never empty for a verified token.
    pub roles: BTreeSet<Role>,
    /// School ids.
    pub schools: BTreeSet<String>,
    /// Class ids.
    pub classes: BTreeSet<String>,
    /// Meal organizer (caterer) ids.
    pub organizers: BTreeSet<String>,
    /// Municipality ids.
    pub municipalities: BTreeSet<String>,
    /// Bank ids.
    pub banks: BTreeSet<String>,
    /// Student account ids a parent may see.
    pub children: BTreeSet<String>,
    /// Participant code of an external information system.
    pub participant: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

impl Principal {
    /// A principal with the given roles and no scopes (mainly for tests of
    /// callers of this crate).
    pub fn new(subject: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Principal {
            subject: subject.into(),
            roles: roles.into_iter().collect(),
            ..Principal::default()
        }
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `Ok` if the caller holds at least one of `roles`; otherwise `Forbidden`
    /// naming the roles required. An empty `roles` list admits nobody.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AuthError> {
        if roles.iter().any(|role| self.has_role(*role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(AuthError::Forbidden(if names.is_empty() {
            "no role is allowed here".to_owned()
        } else {
            format!("requires one of the roles: {}", names.join(", "))
        }))
    }

    fn is_operator(&self) -> bool {
        self.has_role(Role::OperatorAdmin)
    }

    fn in_scope(&self, set: &BTreeSet<String>, id: &str) -> bool {
        self.is_operator() || set.contains(id)
    }

    /// Whether the school `school_id` is in the caller's scope.
    pub fn may_see_school(&self, school_id: &str) -> bool {
        self.in_scope(&self.schools, school_id)
    }

    /// Whether the class `class_id` is in the caller's scope.
    pub fn may_see_class(&self, class_id: &str) -> bool {
        self.in_scope(&self.classes, class_id)
    }

    /// Whether the caller may act for the meal organizer `organizer_id`.
    pub fn may_act_for_organizer(&self, organizer_id: &str) -> bool {
        self.in_scope(&self.organizers, organizer_id)
    }

    /// Whether the municipality `municipality_id` is in the caller's scope.
    pub fn may_see_municipality(&self, municipality_id: &str) -> bool {
        self.in_scope(&self.municipalities, municipality_id)
    }

    /// Whether the caller is the bank `bank_id`: holds [`Role::Bank`] and has
    /// `bank_id` in its bank scope.
    pub fn is_bank(&self, bank_id: &str) -> bool {
        self.is_operator() || (self.has_role(Role::Bank) && self.banks.contains(bank_id))
    }

    /// Whether the caller is the information system with participant code `code`:
    /// holds [`Role::InformationSystem`] and carries that `participant` claim.
    pub fn is_participant(&self, code: &str) -> bool {
        self.is_operator()
            || (self.has_role(Role::InformationSystem) && self.participant.as_deref() == Some(code))
    }

    /// Whether the student account `child_id` is among the caller's children.
    /// The back end must also check its own parent-to-child links.
    pub fn may_see_child(&self, child_id: &str) -> bool {
        self.in_scope(&self.children, child_id)
    }
}

impl TryFrom<Claims> for Principal {
    type Error = AuthError;

    /// Fails with `NoRoles` when the claims carry no roles.
    fn try_from(claims: Claims) -> Result<Self, Self::Error> {
        if claims.roles.is_empty() {
            return Err(AuthError::NoRoles);
        }
        Ok(Principal {
            subject: claims.sub,
            roles: claims.roles.into_iter().collect(),
            schools: claims.schools.into_iter().collect(),
            classes: claims.classes.into_iter().collect(),
            organizers: claims.organizers.into_iter().collect(),
            municipalities: claims.municipalities.into_iter().collect(),
            banks: claims.banks.into_iter().collect(),
            children: claims.children.into_iter().collect(),
            participant: claims.participant,
            name: claims.name,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn empty_scopes_deny_everything() {
        let p = Principal::new("u1", [Role::MealAdmin]);
        assert!(!p.may_see_school("s1"));
        assert!(!p.may_see_school(""));
        assert!(!p.may_see_class("c1"));
        assert!(!p.may_act_for_organizer("o1"));
        assert!(!p.may_see_municipality("m1"));
        assert!(!p.is_bank("b1"));
        assert!(!p.is_participant("is1"));
        assert!(!p.may_see_child("ch1"));
    }

    #[test]
    fn scopes_grant_exactly_their_ids() {
        let mut p = Principal::new("u1", [Role::ClassTeacher, Role::Parent]);
        p.schools = set(&["s1"]);
        p.classes = set(&["c1", "c2"]);
        p.children = set(&["ch1"]);
        assert!(p.may_see_school("s1") && !p.may_see_school("s2"));
        assert!(p.may_see_class("c2") && !p.may_see_class("c3"));
        assert!(p.may_see_child("ch1") && !p.may_see_child("ch2"));
    }

    #[test]
    fn bank_and_participant_checks_need_the_role_too() {
        let mut p = Principal::new("u1", [Role::Parent]);
        p.banks = set(&["b1"]);
        p.participant = Some("is1".into());
        assert!(!p.is_bank("b1"));
        assert!(!p.is_participant("is1"));
        p.roles.insert(Role::Bank);
        p.roles.insert(Role::InformationSystem);
        assert!(p.is_bank("b1") && !p.is_bank("b2"));
        assert!(p.is_participant("is1") && !p.is_participant("is2"));
    }

    #[test]
    fn operator_admin_passes_scope_checks_but_not_role_checks() {
        let p = Principal::new("op", [Role::OperatorAdmin]);
        assert!(p.may_see_school("any"));
        assert!(p.may_see_class("any"));
        assert!(p.may_act_for_organizer("any"));
        assert!(p.may_see_municipality("any"));
        assert!(p.is_bank("any"));
        assert!(p.is_participant("any"));
        assert!(p.may_see_child("any"));
        assert!(p.require_any(&[Role::OperatorAdmin]).is_ok());
        assert!(p.require_any(&[Role::Bank]).is_err());
    }

    #[test]
    fn require_any_names_the_required_roles() {
        let p = Principal::new("u1", [Role::Parent]);
        assert!(p.require_any(&[Role::MealAdmin, Role::Parent]).is_ok());
        let err = p
            .require_any(&[Role::MealAdmin, Role::OperatorAdmin])
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::Forbidden("requires one of the roles: meal_admin, operator_admin".into())
        );
        assert_eq!(err.status(), 403);
        assert!(matches!(p.require_any(&[]), Err(AuthError::Forbidden(_))));
    }

    #[test]
    fn claims_without_roles_are_refused() {
        let claims = Claims {
            sub: "s".into(),
            iss: "i".into(),
            aud: None,
            exp: 2,
            iat: 1,
            nbf: None,
            jti: None,
            roles: vec![],
            schools: vec!["s1".into()],
            classes: vec![],
            organizers: vec![],
            municipalities: vec![],
            banks: vec![],
            children: vec![],
            participant: None,
            name: None,
        };
        assert_eq!(Principal::try_from(claims), Err(AuthError::NoRoles));
    }
}
