//! The payments domain: pure types and rules, no I/O.

pub mod access;
pub mod banking;
pub mod debits;
pub mod ledger;
