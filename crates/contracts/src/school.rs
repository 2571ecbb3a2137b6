//! Messages the Electronic school («Электронная школа») sends.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// The attendance marks of a class's first lesson on a day: who is present. The
/// mark stands for every meal time of that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceMarked {
    pub school: String,
    pub class: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub marks: Vec<AttendanceMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceMark {
    /// The student's personal account id.
    pub account: String,
    pub present: bool,
}

impl Contract for AttendanceMarked {
    const TOPIC: &'static str = "school.attendance.marked.v1";
    const KIND: &'static str = "school.AttendanceMarked.v1";
}
