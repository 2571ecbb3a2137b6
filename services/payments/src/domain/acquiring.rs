//! Where an acquiring order stands, and the rank that only grows.

use serde::{Deserialize, Serialize};

/// Where an order stands. The rank only grows: ranks of 10 and above are final
/// outcomes of the payment, `refunded` (20) follows `deposited` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stored here, the bank has not answered the registration yet.
    Registering,
    /// Registered with the bank, not paid.
    Created,
    /// 3-D Secure (ACS) authentication in progress.
    Acs,
    /// Authorised and held on the card, not yet deposited.
    Approved,
    /// Paid: the account has been credited.
    Deposited,
    Declined,
    /// The hold was cancelled.
    Reversed,
    /// Everything paid has been refunded.
    Refunded,
}

impl OrderStatus {
    /// Statuses ranking at least this are final.
    pub const FINAL_RANK: i32 = 10;

    pub fn rank(self) -> i32 {
        match self {
            OrderStatus::Registering => 0,
            OrderStatus::Created => 1,
            OrderStatus::Acs => 2,
            OrderStatus::Approved => 3,
            OrderStatus::Deposited | OrderStatus::Declined | OrderStatus::Reversed => 10,
            OrderStatus::Refunded => 20,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() >= Self::FINAL_RANK
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Registering => "registering",
            OrderStatus::Created => "created",
            OrderStatus::Acs => "acs",
            OrderStatus::Approved => "approved",
            OrderStatus::Deposited => "deposited",
            OrderStatus::Declined => "declined",
            OrderStatus::Reversed => "reversed",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Registering,
            OrderStatus::Created,
            OrderStatus::Acs,
            OrderStatus::Approved,
            OrderStatus::Deposited,
            OrderStatus::Declined,
            OrderStatus::Reversed,
            OrderStatus::Refunded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The `orderStatus` code of the bank's status query.
    pub fn from_bank_code(code: i64) -> Option<OrderStatus> {
        Some(match code {
            0 => OrderStatus::Created,
            1 => OrderStatus::Approved,
            2 => OrderStatus::Deposited,
            3 => OrderStatus::Reversed,
            4 => OrderStatus::Refunded,
            5 => OrderStatus::Acs,
            6 => OrderStatus::Declined,
            _ => return None,
        })
    }

    pub fn bank_code(self) -> Option<i64> {
        Some(match self {
            OrderStatus::Created => 0,
            OrderStatus::Approved => 1,
            OrderStatus::Deposited => 2,
            OrderStatus::Reversed => 3,
            OrderStatus::Refunded => 4,
            OrderStatus::Acs => 5,
            OrderStatus::Declined => 6,
            OrderStatus::Registering => return None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranks_only_grow_to_final_statuses() {
        for code in 0..=6 {
            let s = OrderStatus::from_bank_code(code).unwrap();
            assert_eq!(s.bank_code(), Some(code));
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert!(OrderStatus::Deposited.is_final());
        assert!(!OrderStatus::Approved.is_final());
        assert_eq!(OrderStatus::Declined.rank(), OrderStatus::Deposited.rank());
        assert!(OrderStatus::Refunded.rank() > OrderStatus::Deposited.rank());
    }
}
