//! The callback checksum: HMAC-SHA256 over the callback's parameters sorted by
//! name (`name;value;` each, the checksum itself left out), in hex.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The text a callback checksum is computed over: every parameter except
/// `checksum`, sorted by name, as `name;value;`.
pub fn checksum_text(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "checksum").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k};{v};"))
        .collect::<String>()
}

/// The callback checksum (HMAC-SHA256, upper-case hex) as the bank computes it.
pub fn checksum(params: &[(String, String)], secret: &str) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch is never taken.
        return String::new();
    };
    mac.update(checksum_text(params).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Whether the `checksum` among `params` is right for `secret`. Hex case does
/// not matter; the comparison takes constant time.
pub fn verify_checksum(params: &[(String, String)], secret: &str) -> bool {
    let Some(given) = params
        .iter()
        .find(|(k, _)| k == "checksum")
        .and_then(|(_, v)| decode_hex(v))
    else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(checksum_text(params).as_bytes());
    mac.verify_slice(&given).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn checksum_text_sorts_by_name_and_drops_the_checksum() {
        let p = params(&[
            ("status", "1"),
            ("mdOrder", "abc"),
            ("checksum", "XYZ"),
            ("operation", "deposited"),
            ("orderNumber", "42"),
        ]);
        assert_eq!(
            checksum_text(&p),
            "mdOrder;abc;operation;deposited;orderNumber;42;status;1;"
        );
    }

    #[test]
    fn checksum_verifies_in_either_case_and_rejects_forgeries() {
        let mut p = params(&[
            ("mdOrder", "abc"),
            ("orderNumber", "42"),
            ("operation", "deposited"),
            ("status", "1"),
        ]);
        let sum = checksum(&p, "secret");
        assert_eq!(sum.len(), 64);
        p.push(("checksum".into(), sum.to_lowercase()));
        assert!(verify_checksum(&p, "secret"));
        assert!(!verify_checksum(&p, "other"));
        p[3].1 = "0".into();
        assert!(!verify_checksum(&p, "secret"));
        p.pop();
        p.push(("checksum".into(), "zz".into()));
        assert!(!verify_checksum(&p, "secret"));
    }
}
