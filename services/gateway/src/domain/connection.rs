//! The connection procedure of a participant (000 §3, 003 §4.2), without I/O:
//! its states, the steps between them, the review deadline in working days and
//! what a state allows (rights, the production contour).
//!
//! application received → review (10 working days; 5 for a bank's application
//! and for a caterer's staff access, 003 §4.2) → shortcomings sent back (the
//! applicant resubmits: a new review) or declined, or approved by the owner →
//! technical requirements sent → testing in the test contour → act of
//! connection (Приложение 3) → production.

use serde::{Deserialize, Serialize};

use super::participant::Kind;

/// Where a participant's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The application is being reviewed (deadline: `review_due`).
    Review,
    /// Shortcomings were sent back; waiting for the applicant.
    Shortcomings,
    /// The owner declined the connection.
    Declined,
    /// The owner approved it.
    Approved,
    /// The technical requirements were sent.
    RequirementsSent,
    /// Testing in the test contour.
    Testing,
    /// The act of connection is signed.
    Connected,
    /// Working in the production contour.
    Production,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Review,
        State::Shortcomings,
        State::Declined,
        State::Approved,
        State::RequirementsSent,
        State::Testing,
        State::Connected,
        State::Production,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Review => "review",
            State::Shortcomings => "shortcomings",
            State::Declined => "declined",
            State::Approved => "approved",
            State::RequirementsSent => "requirements_sent",
            State::Testing => "testing",
            State::Connected => "connected",
            State::Production => "production",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Rights may be granted for testing in the test contour and after.
    pub fn allows_rights(self) -> bool {
        matches!(self, State::Testing | State::Connected | State::Production)
    }

    /// The production contour only after the act of connection.
    pub fn allows_production(self) -> bool {
        matches!(self, State::Connected | State::Production)
    }
}

/// What the operator records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Shortcomings sent back to the applicant (ends a review).
    Shortcomings,
    /// The applicant sent the corrected application (a new review starts).
    Resubmitted,
    /// The owner approved the connection (ends a review).
    Approved,
    /// The owner declined it (ends a review).
    Declined,
    /// The technical requirements were sent.
    RequirementsSent,
    /// Testing in the test contour began.
    Testing,
    /// The act of connection was signed (its number is given).
    Act,
    /// Moved to the production contour.
    Production,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Shortcomings => "shortcomings",
            Step::Resubmitted => "resubmitted",
            Step::Approved => "approved",
            Step::Declined => "declined",
            Step::RequirementsSent => "requirements_sent",
            Step::Testing => "testing",
            Step::Act => "act",
            Step::Production => "production",
        }
    }

    /// Whether the step answers the application (ends a review).
    pub fn ends_review(self) -> bool {
        matches!(self, Step::Shortcomings | Step::Approved | Step::Declined)
    }
}

/// A step that cannot be taken from the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfOrder {
    pub state: State,
    pub step: Step,
    /// The steps that can be taken now.
    pub possible: Vec<Step>,
}

impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let possible: Vec<&str> = self.possible.iter().map(|s| s.as_str()).collect();
        write!(
            f,
            "the connection is at {}; {} cannot follow it (possible: {})",
            self.state.as_str(),
            self.step.as_str(),
            if possible.is_empty() {
                "none, the procedure has ended".to_string()
            } else {
                possible.join(", ")
            }
        )
    }
}

const STEPS: [Step; 8] = [
    Step::Shortcomings,
    Step::Resubmitted,
    Step::Approved,
    Step::Declined,
    Step::RequirementsSent,
    Step::Testing,
    Step::Act,
    Step::Production,
];

fn target(state: State, step: Step) -> Option<State> {
    use State as S;
    use Step as T;
    Some(match (state, step) {
        (S::Review, T::Shortcomings) => S::Shortcomings,
        (S::Review, T::Approved) => S::Approved,
        (S::Review, T::Declined) => S::Declined,
        (S::Shortcomings, T::Resubmitted) => S::Review,
        (S::Shortcomings, T::Declined) => S::Declined,
        (S::Approved, T::RequirementsSent) => S::RequirementsSent,
        (S::RequirementsSent, T::Testing) => S::Testing,
        (S::Testing, T::Act) => S::Connected,
        (S::Connected, T::Production) => S::Production,
        _ => return None,
    })
}

/// The state `step` leads to from `state`.
pub fn next(state: State, step: Step) -> Result<State, OutOfOrder> {
    target(state, step).ok_or_else(|| OutOfOrder {
        state,
        step,
        possible: STEPS
            .into_iter()
            .filter(|s| target(state, *s).is_some())
            .collect(),
    })
}

/// Working days the operator has to answer an application of `kind`: 10
/// (000 §3.3); 5 for a bank's application and for setting up a caterer's
/// staff access (003 §4.2).
pub fn review_days(kind: Kind) -> i32 {
    match kind {
        Kind::Bank | Kind::Caterer => 5,
        Kind::Agency | Kind::Terminal => 10,
    }
}

/// How many working days after `due` the day `on` is: the working days in
/// `(due, on]` (0 when `on` is not after `due`). `working_days` counts the
/// working days in a half-open interval `[from, to)`.
pub fn days_late(
    due: chrono::NaiveDate,
    on: chrono::NaiveDate,
    working_days: impl FnOnce(chrono::NaiveDate, chrono::NaiveDate) -> i64,
) -> i64 {
    if on <= due {
        return 0;
    }
    working_days(
        due + chrono::Duration::days(1),
        on + chrono::Duration::days(1),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn the_procedure_goes_in_order_and_says_what_can_follow() {
        let mut s = State::Review;
        for step in [
            Step::Shortcomings,
            Step::Resubmitted,
            Step::Approved,
            Step::RequirementsSent,
            Step::Testing,
            Step::Act,
            Step::Production,
        ] {
            s = next(s, step).unwrap();
        }
        assert_eq!(s, State::Production);
        let e = next(State::Approved, Step::Act).unwrap_err();
        assert_eq!(e.possible, vec![Step::RequirementsSent]);
        assert!(e.to_string().contains("possible: requirements_sent"), "{e}");
        assert!(next(State::Declined, Step::Resubmitted).is_err());
        assert!(next(State::Production, Step::Production).is_err());
    }

    #[test]
    fn rights_from_testing_production_only_after_the_act() {
        for s in State::ALL {
            assert_eq!(
                s.allows_rights(),
                s >= State::Testing && s != State::Declined,
                "{s:?}"
            );
            assert_eq!(s.allows_production(), s >= State::Connected, "{s:?}");
        }
    }

    #[test]
    fn a_bank_and_a_caterer_are_answered_in_five_working_days_others_in_ten() {
        assert_eq!(review_days(Kind::Bank), 5);
        assert_eq!(review_days(Kind::Caterer), 5);
        assert_eq!(review_days(Kind::Agency), 10);
    }

    #[test]
    fn lateness_counts_working_days_after_the_due_day() {
        // Every day a working day except Sundays.
        let working = |from: NaiveDate, to: NaiveDate| {
            from.iter_days()
                .take_while(|x| *x < to)
                .filter(|x| x.format("%u").to_string() != "7")
                .count() as i64
        };
        assert_eq!(days_late(d(5, 15), d(5, 15), working), 0);
        assert_eq!(days_late(d(5, 15), d(5, 14), working), 0);
        assert_eq!(days_late(d(5, 15), d(5, 16), working), 1);
        // 15 May 2026 is a Friday: Saturday counts, Sunday does not.
        assert_eq!(days_late(d(5, 15), d(5, 18), working), 2);
    }
}
