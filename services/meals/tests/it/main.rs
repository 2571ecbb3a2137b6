//! The meals service's integration tests, one binary (the service is linked
//! once): each module is one capability, `common` what they share.
#![allow(clippy::unwrap_used, clippy::inconsistent_digit_grouping)]

mod common;

mod access;
mod close_once;
mod walk;
