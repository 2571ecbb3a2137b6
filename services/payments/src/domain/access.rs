//! Who may see and move what in the payments service. Deny by default.

use platform::{Principal, Role};

/// Whose an account is, as far as access goes (the domain knows no table
/// rows: the store hands out this view of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountScope<'a> {
    pub id: &'a str,
    pub organizer: &'a str,
    pub school: &'a str,
    pub class_id: &'a str,
    pub municipality: &'a str,
}

/// Whether `who` may see `account`'s balance and history: a parent only their own
/// children's accounts, the organizer only its own contracts' accounts, the school's
/// meal admin and class teacher their school/class, the municipal officer their
/// municipality, the operator everything.
pub fn may_view_account(who: &Principal, account: &AccountScope<'_>) -> bool {
    (who.has_role(Role::OperatorAdmin))
        || (who.has_role(Role::Parent) && who.may_see_child(account.id))
        || (who.has_role(Role::MealOrganizer)
            && !account.organizer.is_empty()
            && who.may_act_for_organizer(account.organizer))
        || (who.has_role(Role::MealAdmin)
            && !account.school.is_empty()
            && who.may_see_school(account.school))
        || (who.has_role(Role::ClassTeacher)
            && !account.class_id.is_empty()
            && who.may_see_class(account.class_id))
        || (who.has_role(Role::MunicipalOfficer)
            && !account.municipality.is_empty()
            && who.may_see_municipality(account.municipality))
}

/// Whether `who` may open a personal account over REST: the operator only. A
/// personal account is the student's id in the meal module (003 §1), and the
/// meal module opens it over the bus when a school registers the student, in
/// the school and with the organizer it links; a caterer opening accounts here
/// would reach schools it is not linked to.
pub fn may_open_account(who: &Principal) -> bool {
    who.has_role(Role::OperatorAdmin)
}
