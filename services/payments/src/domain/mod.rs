//! The payments domain: pure types and rules, no I/O.

pub mod access;
pub mod acquiring;
pub mod banking;
pub mod charges;
pub mod debits;
pub mod ledger;
pub mod registry;
