//! What the close of a day writes off (seed 003): each meal the student ate,
//! by the class teacher's mark or, unmarked, by being served in the request,
//! when it costs the parent or the budget anything.

/// Whether a request line becomes a write-off at the close.
pub fn written_off(
    included: bool,
    ate: Option<bool>,
    to_pay_kopecks: i64,
    reimbursed_kopecks: i64,
) -> bool {
    ate.unwrap_or(included) && to_pay_kopecks + reimbursed_kopecks > 0
}

/// Where a write-off stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOffStatus {
    /// Sent to payments, no answer yet.
    Sent,
    /// Payments wrote it off.
    Accepted,
    /// Payments refused it (the reason is kept).
    Refused,
}

impl WriteOffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOffStatus::Sent => "sent",
            WriteOffStatus::Accepted => "accepted",
            WriteOffStatus::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<WriteOffStatus> {
        match s {
            "sent" => Some(WriteOffStatus::Sent),
            "accepted" => Some(WriteOffStatus::Accepted),
            "refused" => Some(WriteOffStatus::Refused),
            _ => None,
        }
    }

    /// The status payments' answer sets.
    pub fn answered(accepted: bool) -> WriteOffStatus {
        if accepted {
            WriteOffStatus::Accepted
        } else {
            WriteOffStatus::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_teachers_mark_decides_who_ate() {
        assert!(written_off(false, Some(true), 9_500, 0));
        assert!(!written_off(true, Some(false), 9_500, 0));
    }

    #[test]
    fn unmarked_a_student_served_in_the_request_ate() {
        assert!(written_off(true, None, 9_500, 0));
        assert!(!written_off(false, None, 9_500, 0));
    }

    #[test]
    fn a_free_meal_writes_nothing_off_but_a_reimbursed_one_does() {
        assert!(!written_off(true, None, 0, 0));
        assert!(written_off(true, None, 0, 15_000));
    }
}
