//! Page and page size of a listing, checked once for every service.

use crate::Problem;

/// A 1-based page of `per_page` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    /// `page` (default 1) and `per_page` (default `default`, at most `max`).
    /// A page so far out that its first item's offset does not fit a 64-bit
    /// integer is refused, not wrapped round to the first page.
    pub fn parse(
        page: Option<i64>,
        per_page: Option<i64>,
        default: i64,
        max: i64,
    ) -> Result<Page, Problem> {
        let per_page = per_page.unwrap_or(default);
        if !(1..=max).contains(&per_page) {
            return Err(Problem::invalid(
                "per_page",
                format!("must be between 1 and {max}"),
            ));
        }
        let page = page.unwrap_or(1);
        let last = i64::MAX / per_page;
        if !(1..=last).contains(&page) {
            return Err(Problem::invalid(
                "page",
                format!("must be between 1 and {last}"),
            ));
        }
        Ok(Page { page, per_page })
    }

    /// How many items come before this page.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked_and_never_wrap() {
        let p = Page::parse(Some(3), Some(50), 20, 500).unwrap();
        assert_eq!(p.offset(), 100);
        assert_eq!(Page::parse(None, None, 20, 500).unwrap().per_page, 20);
        for (page, per_page, field) in [
            (Some(0), None, "page"),
            (Some(i64::MAX), Some(50), "page"),
            (Some(i64::MAX / 50 + 1), Some(50), "page"),
            (None, Some(0), "per_page"),
            (None, Some(501), "per_page"),
        ] {
            let problem = Page::parse(page, per_page, 20, 500).unwrap_err();
            assert_eq!(problem.errors[0].field, field, "{page:?} {per_page:?}");
        }
        let last = Page::parse(Some(i64::MAX / 50), Some(50), 20, 500).unwrap();
        assert!(last.offset() > 0);
    }
}
