//! What a parent may put in an order (seed 003): a complex, and additional
//! items only with one, except the products for home that only home-schooled
//! students order, with or without a complex.

/// What an item of the additional menu is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// Eaten at school beside a complex.
    Supplement,
    /// A product taken home: for home-schooled students only.
    Home,
}

impl ExtraKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtraKind::Supplement => "supplement",
            ExtraKind::Home => "home",
        }
    }

    pub fn parse(s: &str) -> Option<ExtraKind> {
        match s {
            "supplement" => Some(ExtraKind::Supplement),
            "home" => Some(ExtraKind::Home),
            _ => None,
        }
    }

    /// Whether a student is offered items of this kind at all.
    pub fn offered_to(self, home_schooled: bool) -> bool {
        self == ExtraKind::Supplement || home_schooled
    }
}

/// Why a choice of complex and additional items cannot be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceRefusal {
    #[error("additional items are ordered only together with a complex")]
    SupplementWithoutComplex { index: usize },
    #[error("products for home-schooled students only")]
    HomeProductForPupil { index: usize },
    #[error("choose a complex (additional items only come with one)")]
    NoComplex,
}

impl ChoiceRefusal {
    /// The request field the refusal is about.
    pub fn field(&self) -> String {
        match self {
            ChoiceRefusal::SupplementWithoutComplex { index }
            | ChoiceRefusal::HomeProductForPupil { index } => format!("extras[{index}].item"),
            ChoiceRefusal::NoComplex => "complex".into(),
        }
    }
}

/// Whether a student (`home_schooled` or not) may order `extras`, with a
/// complex or without one. The first item at fault is named.
pub fn check_choice(
    with_complex: bool,
    home_schooled: bool,
    extras: &[ExtraKind],
) -> Result<(), ChoiceRefusal> {
    for (index, kind) in extras.iter().enumerate() {
        match kind {
            ExtraKind::Supplement if !with_complex => {
                return Err(ChoiceRefusal::SupplementWithoutComplex { index })
            }
            ExtraKind::Home if !home_schooled => {
                return Err(ChoiceRefusal::HomeProductForPupil { index })
            }
            _ => {}
        }
    }
    if !with_complex && (extras.is_empty() || !home_schooled) {
        return Err(ChoiceRefusal::NoComplex);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtraKind::{Home, Supplement};

    #[test]
    fn a_complex_alone_or_with_supplements_is_an_order() {
        assert_eq!(check_choice(true, false, &[]), Ok(()));
        assert_eq!(check_choice(true, false, &[Supplement, Supplement]), Ok(()));
        assert_eq!(check_choice(true, true, &[Supplement, Home]), Ok(()));
    }

    #[test]
    fn supplements_come_only_with_a_complex() {
        assert_eq!(
            check_choice(false, true, &[Home, Supplement]),
            Err(ChoiceRefusal::SupplementWithoutComplex { index: 1 })
        );
        assert_eq!(
            ChoiceRefusal::SupplementWithoutComplex { index: 1 }.field(),
            "extras[1].item"
        );
    }

    #[test]
    fn products_for_home_are_for_home_schooled_students_only() {
        assert_eq!(
            check_choice(true, false, &[Supplement, Home]),
            Err(ChoiceRefusal::HomeProductForPupil { index: 1 })
        );
        assert!(!Home.offered_to(false));
        assert!(Home.offered_to(true));
        assert!(Supplement.offered_to(false));
    }

    #[test]
    fn without_a_complex_only_a_home_schooled_student_orders_products() {
        assert_eq!(check_choice(false, true, &[Home]), Ok(()));
        assert_eq!(
            check_choice(false, true, &[]),
            Err(ChoiceRefusal::NoComplex)
        );
        assert_eq!(
            check_choice(false, false, &[]),
            Err(ChoiceRefusal::NoComplex)
        );
        assert_eq!(ChoiceRefusal::NoComplex.field(), "complex");
    }
}
