//! The OpenAPI schemas of the domain's enums, given here by the API layer (the
//! domain derives no HTTP schema); the values are the enums' serde names.

use platform::string_enum_schema;

use crate::domain::acquiring::OrderStatus;
use crate::domain::charges::{ChargeQuittance, ChargeStatus, QuittanceOutcome};
use crate::domain::ledger::{AccountKind, MovementKind};
use crate::domain::registry::Outcome;
use crate::registry::Format;

string_enum_schema!(AccountKind: Personal, OrganizerSettlement, Budget, BankClearing, Suspense;
    "What an account is for in the ledger.");
string_enum_schema!(MovementKind: Adjustment, Reversal, MealDebit, BankPayment, TopUp, Refund;
    "The kind of a movement, for reports.");
string_enum_schema!(Outcome: Matched, Credited, AmountDiffers, UnknownAccount, DuplicateLine, MissingFromRegistry;
    "What reconciliation decided for a registry line (or for a posted payment).");
string_enum_schema!(ChargeStatus: Active, PartlyPaid, Paid, Overpaid, Cancelled;
    "Status of a charge.");
string_enum_schema!(ChargeQuittance: NotMatched, PartlyMatched, Matched, Overpaid, Cancelled;
    "The charge's quittance status as ГИС ГМП names it (сквитировано or not).");
string_enum_schema!(QuittanceOutcome: Matched, Partial, Overpaid, UnknownUin, CancelledCharge;
    "The outcome of quittance for one payment.");
string_enum_schema!(OrderStatus: Registering, Created, Acs, Approved, Deposited, Declined, Reversed, Refunded;
    "Where an acquiring order stands; the final ones are deposited, declined, reversed and refunded.");
string_enum_schema!(Format: Csv, Xml; "The registry's file format.");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    #[test]
    fn enum_schemas_list_the_serde_names() {
        let json = serde_json::to_value(AccountKind::schema()).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(
            json["enum"],
            serde_json::json!([
                "personal",
                "organizer_settlement",
                "budget",
                "bank_clearing",
                "suspense"
            ])
        );
        let json = serde_json::to_value(Format::schema()).unwrap();
        assert_eq!(json["enum"], serde_json::json!(["csv", "xml"]));
    }
}
