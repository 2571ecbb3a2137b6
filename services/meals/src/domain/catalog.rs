//! How a complex changes (seed 003: parents' choices stand): a complex no
//! parent has chosen is corrected in place; once chosen, a change is a new
//! version and the chosen one stays as it was.

/// What saving a complex does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplexChange {
    /// A new code: version 1.
    Create,
    /// Nobody chose the current version: it is corrected.
    InPlace { version: i32 },
    /// Parents chose the current version: it is retired, this one follows.
    NewVersion { version: i32 },
}

/// `current` is the current version and whether any order chose it.
pub fn complex_change(current: Option<(i32, bool)>) -> ComplexChange {
    match current {
        None => ComplexChange::Create,
        Some((version, false)) => ComplexChange::InPlace { version },
        Some((version, true)) => ComplexChange::NewVersion {
            version: version + 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_complex_is_never_changed_in_place() {
        assert_eq!(complex_change(None), ComplexChange::Create);
        assert_eq!(
            complex_change(Some((3, false))),
            ComplexChange::InPlace { version: 3 }
        );
        assert_eq!(
            complex_change(Some((3, true))),
            ComplexChange::NewVersion { version: 4 }
        );
    }
}
