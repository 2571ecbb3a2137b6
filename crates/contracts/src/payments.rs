//! Messages the payments service consumes and publishes.

use serde::{Deserialize, Serialize};

use crate::{Contract, QueueDef};

/// Queues the payments service consumes.
pub const QUEUES: &[QueueDef] = &[];

/// A personal account's balance changed (published after every movement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceChanged {
    /// Лицевой счёт: the student's personal account id.
    pub account: String,
    /// Balance after the movement, rubles with kopecks as a decimal string.
    pub balance: String,
    pub movement_id: String,
}

impl Contract for BalanceChanged {
    const TOPIC: &'static str = "payments.balance.changed.v1";
    const KIND: &'static str = "payments.BalanceChanged.v1";
}
