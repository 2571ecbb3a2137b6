//! The message log's hash chain: each record's hash covers its fields, digests
//! of its bodies and the hash of the record before it, so an edited record no
//! longer matches its hash and a removed one breaks the link of the next.

use sha2::{Digest, Sha256};

/// The fields of a record the hash covers.
pub struct Linked<'a> {
    pub seq: i64,
    /// UTC, `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub at: &'a str,
    pub direction: &'a str,
    pub participant: &'a str,
    pub service: &'a str,
    pub operation: &'a str,
    pub message_id: &'a str,
    pub request_id_ref: Option<&'a str>,
    pub origin_request_id_ref: Option<&'a str>,
    pub case_number: Option<&'a str>,
    pub status: &'a str,
    pub outcome: &'a str,
    pub duration_ms: i64,
    pub request_body: &'a str,
    pub response_body: &'a str,
}

/// Bytes as lower-case hex (hashes, fingerprints).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of `record` after `prev` (hex SHA-256). Fields are length-prefixed,
/// so no two different records hash alike by moving text between fields.
pub fn hash(prev: &str, r: &Linked<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    let opt = |o: Option<&str>| o.map(|s| format!("+{s}")).unwrap_or_default();
    field(prev);
    field(&r.seq.to_string());
    field(r.at);
    field(r.direction);
    field(r.participant);
    field(r.service);
    field(r.operation);
    field(r.message_id);
    field(&opt(r.request_id_ref));
    field(&opt(r.origin_request_id_ref));
    field(&opt(r.case_number));
    field(r.status);
    field(r.outcome);
    field(&r.duration_ms.to_string());
    field(&hex(&Sha256::digest(r.request_body.as_bytes())));
    field(&hex(&Sha256::digest(r.response_body.as_bytes())));
    hex(&h.finalize())
}

/// What verification found wrong, naming the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The record's fields no longer give its hash: it was altered.
    Altered { seq: i64 },
    /// The record does not link to the one before it, or records are missing
    /// between `after` and `seq`: removed.
    Removed { after: i64, seq: i64 },
    /// The chain ends before the head says it does: the newest were removed.
    Truncated { last: i64, head: i64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Altered { seq } => write!(f, "record {seq} was altered: its hash does not match its contents"),
            Break::Removed { after, seq } => write!(f, "records between {after} and {seq} were removed: {seq} does not link to {after}"),
            Break::Truncated { last, head } => write!(f, "the log ends at record {last} but its head says {head}: the newest records were removed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64, status: &'static str) -> Linked<'static> {
        Linked {
            seq,
            at: "2026-12-03T10:00:00.000000",
            direction: "in",
            participant: "BANK01",
            service: "banks",
            operation: "Check",
            message_id: "m-1",
            request_id_ref: None,
            origin_request_id_ref: None,
            case_number: None,
            status,
            outcome: "OK",
            duration_ms: 3,
            request_body: "<a/>",
            response_body: "<b/>",
        }
    }

    #[test]
    fn any_change_of_a_field_or_the_link_changes_the_hash() {
        let base = hash("", &rec(1, "RESULT"));
        assert_eq!(base, hash("", &rec(1, "RESULT")));
        assert_ne!(base, hash("", &rec(1, "REJECT")));
        assert_ne!(base, hash("x", &rec(1, "RESULT")));
        assert_ne!(base, hash("", &rec(2, "RESULT")));
        let mut r = rec(1, "RESULT");
        r.response_body = "<b />";
        assert_ne!(base, hash("", &r));
        let mut r = rec(1, "RESULT");
        r.request_id_ref = Some("");
        assert_ne!(base, hash("", &r), "absent and empty differ");
    }
}
