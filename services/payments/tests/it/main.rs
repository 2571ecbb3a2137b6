//! The payments service's integration tests, one binary (the service is linked
//! once): each module is one capability, `common` what they share.
#![allow(clippy::unwrap_used)]

mod common;

mod acquiring;
mod banking;
mod charges;
mod group_commit;
mod ledger;
mod meal_debits;
mod registries;
mod reports;
