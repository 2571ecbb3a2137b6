//! Who gets a line in a class's meal request, what they eat and who is
//! excluded (seed 003): a student present at the first lesson eats the complex
//! the parent ordered, or else the day's «комплекс дня»; one whose balance would
//! fall below the school's credit limit is listed as excluded, with the reason.

use primitives::Money;

/// Where a request line's complex came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSource {
    /// The parent's order for the day.
    Order,
    /// No order: the menu's «комплекс дня».
    Default,
    /// Nothing: the student is excluded.
    None,
}

impl LineSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LineSource::Order => "order",
            LineSource::Default => "default",
            LineSource::None => "none",
        }
    }
}

/// Why a student is listed in the request without a meal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exclusion {
    #[error("absent at the first lesson")]
    Absent,
    #[error("no attendance mark")]
    Unmarked,
    #[error("no complex: no order and no «комплекс дня» on the menu")]
    NoComplex,
    /// The balance would fall below the credit limit; the text names the sums.
    #[error("{0}")]
    Credit(String),
}

/// A student eats only when marked present at the first lesson.
pub fn attendance(present: Option<bool>) -> Result<(), Exclusion> {
    match present {
        Some(true) => Ok(()),
        Some(false) => Err(Exclusion::Absent),
        None => Err(Exclusion::Unmarked),
    }
}

/// The complex a present student eats: the ordered one when there is an order
/// (`Some(complex)`, the complex `None` when the order holds none), else the
/// «комплекс дня», looked up only then.
pub fn complex_served<C, E>(
    order: Option<Option<C>>,
    default: impl FnOnce() -> Result<Option<C>, E>,
) -> Result<Result<(C, LineSource), Exclusion>, E> {
    let (complex, source) = match order {
        Some(ordered) => (ordered, LineSource::Order),
        None => (default()?, LineSource::Default),
    };
    Ok(complex.map(|c| (c, source)).ok_or(Exclusion::NoComplex))
}

/// A meal costing the parent `to_pay` is served while the balance less what
/// is already requested stays at or above minus the credit limit.
pub fn within_credit(
    balance: Money,
    pending: Money,
    to_pay: Money,
    credit: Money,
) -> Result<(), Exclusion> {
    match super::credit_exclusion(balance, pending, to_pay, credit) {
        Some(reason) => Err(Exclusion::Credit(reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn no_default() -> Result<Option<&'static str>, ()> {
        Ok(None)
    }

    #[test]
    fn only_a_student_marked_present_eats() {
        assert_eq!(attendance(Some(true)), Ok(()));
        assert_eq!(attendance(Some(false)), Err(Exclusion::Absent));
        assert_eq!(attendance(None), Err(Exclusion::Unmarked));
        assert_eq!(Exclusion::Absent.to_string(), "absent at the first lesson");
    }

    #[test]
    fn an_order_wins_over_the_complex_of_the_day() {
        let mut asked = false;
        let served = complex_served(Some(Some("c2")), || {
            asked = true;
            Ok::<_, ()>(Some("c1"))
        });
        assert_eq!(served, Ok(Ok(("c2", LineSource::Order))));
        assert!(!asked, "the menu is not read when there is an order");
    }

    #[test]
    fn without_an_order_the_student_eats_the_complex_of_the_day() {
        let served = complex_served(None, || Ok::<_, ()>(Some("c1")));
        assert_eq!(served, Ok(Ok(("c1", LineSource::Default))));
    }

    #[test]
    fn no_order_and_no_complex_of_the_day_excludes() {
        assert_eq!(
            complex_served(None, no_default),
            Ok(Err(Exclusion::NoComplex))
        );
        assert_eq!(
            complex_served(Some(None), no_default),
            Ok(Err(Exclusion::NoComplex))
        );
    }

    #[test]
    fn the_credit_limit_is_reached_exactly_and_not_passed() {
        assert_eq!(
            within_credit(m("10.00"), m("0.00"), m("110.00"), m("100.00")),
            Ok(())
        );
        let refused = within_credit(m("10.00"), m("0.01"), m("110.00"), m("100.00"));
        assert!(matches!(refused, Err(Exclusion::Credit(_))), "{refused:?}");
        assert_eq!(
            within_credit(m("-500.00"), m("0.00"), m("0.00"), m("100.00")),
            Ok(())
        );
    }
}
