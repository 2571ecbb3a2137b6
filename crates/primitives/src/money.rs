//! Money in rubles with exactly two decimal places (kopecks).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in rubles, always with exactly two decimal places (kopecks).
///
/// The value always fits into an `i64` count of kopecks, so it can be stored
/// in a `BIGINT` column via [`Money::kopecks`]. Arithmetic operators panic on
/// overflow of that range (like integer arithmetic in debug builds); use
/// [`Money::checked_add`] / [`Money::checked_sub`] where the operands come
/// from untrusted input.
///
/// Serde: serialized as a JSON string such as `"1250.50"` and deserialized
/// only from a string. JSON numbers are rejected, including integers, because
/// a client that sends numbers is likely to send floats elsewhere, and floats
/// cannot represent kopecks exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why a money amount was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The input was empty or only whitespace.
    #[error("money amount is empty")]
    Empty,
    /// The input is not a decimal number.
    #[error("money amount {input:?} is not a number: {reason}")]
    InvalidFormat {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than two fractional digits; input is never rounded silently.
    #[error(
        "money amount {input:?} has {digits} fractional digits, at most 2 (kopecks) are allowed; \
         it is not rounded"
    )]
    TooManyFractionDigits {
        /// The rejected input.
        input: String,
        /// How many fractional digits it has.
        digits: usize,
    },
    /// The amount does not fit into an `i64` count of kopecks.
    #[error("money amount {input} is out of range: it must fit into a 64-bit count of kopecks")]
    Overflow {
        /// The rejected amount as text.
        input: String,
    },
}

impl Money {
    /// Zero rubles.
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    /// Builds an amount from a count of kopecks (the database representation).
    pub fn from_kopecks(kopecks: i64) -> Money {
        Money(Decimal::new(kopecks, 2))
    }

    /// The amount as a count of kopecks (the database representation).
    pub fn kopecks(&self) -> i64 {
        // Every constructor keeps scale 2 and the i64 range, so the mantissa
        // is exactly the kopeck count.
        match i64::try_from(self.0.mantissa()) {
            Ok(k) => k,
            Err(_) => unreachable!("Money always fits into i64 kopecks"),
        }
    }

    /// The amount as a `Decimal` with scale 2.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Parses "1250.50", "1250.5", "1250", "-3.10" or, as Russian users type
    /// it, "1250,50". Surrounding whitespace is ignored.
    ///
    /// More than two fractional digits is an error rather than a rounding,
    /// because silently changing an amount someone typed is worse than asking
    /// again.
    pub fn parse(input: &str) -> Result<Money, MoneyError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let invalid = |reason| MoneyError::InvalidFormat {
            input: input.to_owned(),
            reason,
        };
        let (negative, unsigned) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int_part, frac_part) = match unsigned.find(['.', ',']) {
            Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
            None => (unsigned, None),
        };
        if int_part.is_empty() {
            return Err(invalid("expected digits before the decimal separator"));
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "only digits, one leading '-' and one '.' or ',' are allowed",
            ));
        }
        let frac_digits = match frac_part {
            None => "",
            Some("") => return Err(invalid("expected digits after the decimal separator")),
            Some(f) if !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(invalid(
                    "only digits, one leading '-' and one '.' or ',' are allowed",
                ))
            }
            Some(f) if f.len() > 2 => {
                return Err(MoneyError::TooManyFractionDigits {
                    input: input.to_owned(),
                    digits: f.len(),
                })
            }
            Some(f) => f,
        };
        let overflow = || MoneyError::Overflow {
            input: input.to_owned(),
        };
        // i128 accumulation so that i64::MIN kopecks, whose magnitude does not
        // fit into i64, still parses.
        let mut kopecks: i128 = 0;
        for b in int_part.bytes() {
            kopecks = kopecks
                .checked_mul(10)
                .and_then(|k| k.checked_add(i128::from(b - b'0')))
                .ok_or_else(overflow)?;
        }
        let mut frac: i128 = 0;
        for b in frac_digits.bytes() {
            frac = frac * 10 + i128::from(b - b'0');
        }
        if frac_digits.len() == 1 {
            frac *= 10;
        }
        kopecks = kopecks
            .checked_mul(100)
            .and_then(|k| k.checked_add(frac))
            .ok_or_else(overflow)?;
        if negative {
            kopecks = -kopecks;
        }
        i64::try_from(kopecks)
            .map(Money::from_kopecks)
            .map_err(|_| overflow())
    }

    /// Rounds a computed value (a percentage, a share) to kopecks, half away
    /// from zero, as accounting rules expect.
    ///
    /// # Panics
    ///
    /// If the rounded value does not fit into `i64` kopecks; use
    /// [`Money::try_from_decimal_rounded`] for values that may be that large.
    pub fn from_decimal_rounded(value: Decimal) -> Money {
        match Money::try_from_decimal_rounded(value) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Money::from_decimal_rounded`], but reports an out-of-range
    /// value as [`MoneyError::Overflow`].
    pub fn try_from_decimal_rounded(value: Decimal) -> Result<Money, MoneyError> {
        let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        Money::from_two_place_decimal(rounded)
    }

    /// Converts a decimal that must already be exact to the kopeck
    /// (`1.5`, `1.500` are fine, `1.505` is not).
    pub fn try_from_decimal_exact(value: Decimal) -> Result<Money, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(MoneyError::TooManyFractionDigits {
                input: value.to_string(),
                digits: normalized.scale() as usize,
            });
        }
        Money::from_two_place_decimal(normalized)
    }

    /// `value` has at most two fractional digits here.
    fn from_two_place_decimal(value: Decimal) -> Result<Money, MoneyError> {
        let max = Decimal::new(i64::MAX, 2);
        let min = Decimal::new(i64::MIN, 2);
        // Range check before rescaling: rescale cannot add places to a
        // mantissa that is already near Decimal's 96-bit limit.
        if value > max || value < min {
            return Err(MoneyError::Overflow {
                input: value.to_string(),
            });
        }
        let mut v = value;
        v.rescale(2);
        Ok(Money(v))
    }

    /// `self × pct / 100`, rounded half away from zero to kopecks.
    ///
    /// # Panics
    ///
    /// If the result does not fit into `i64` kopecks; see
    /// [`Money::checked_percent`].
    pub fn percent(&self, pct: Decimal) -> Money {
        match self.checked_percent(pct) {
            Some(m) => m,
            None => panic!("Money::percent overflow: {self} × {pct}%"),
        }
    }

    /// Like [`Money::percent`], `None` on overflow.
    pub fn checked_percent(&self, pct: Decimal) -> Option<Money> {
        let raw = self.0.checked_mul(pct)?.checked_div(Decimal::ONE_HUNDRED)?;
        Money::try_from_decimal_rounded(raw).ok()
    }

    /// Sum, `None` if it leaves the `i64` kopeck range.
    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        self.kopecks()
            .checked_add(rhs.kopecks())
            .map(Money::from_kopecks)
    }

    /// Difference, `None` if it leaves the `i64` kopeck range.
    pub fn checked_sub(self, rhs: Money) -> Option<Money> {
        self.kopecks()
            .checked_sub(rhs.kopecks())
            .map(Money::from_kopecks)
    }

    /// Negation, `None` only for the most negative amount.
    pub fn checked_neg(self) -> Option<Money> {
        self.kopecks().checked_neg().map(Money::from_kopecks)
    }

    /// True if the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.kopecks() < 0
    }

    /// True if the amount is above zero.
    pub fn is_positive(&self) -> bool {
        self.kopecks() > 0
    }

    /// True if the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.kopecks() == 0
    }

    /// Absolute value.
    ///
    /// # Panics
    ///
    /// For the most negative amount, whose absolute value is out of range.
    pub fn abs(self) -> Money {
        if self.is_negative() {
            -self
        } else {
            self
        }
    }
}

impl Add for Money {
    type Output = Money;

    /// # Panics
    ///
    /// On overflow of the `i64` kopeck range.
    fn add(self, rhs: Money) -> Money {
        match self.checked_add(rhs) {
            Some(m) => m,
            None => panic!("Money overflow: {self} + {rhs}"),
        }
    }
}

impl Sub for Money {
    type Output = Money;

    /// # Panics
    ///
    /// On overflow of the `i64` kopeck range.
    fn sub(self, rhs: Money) -> Money {
        match self.checked_sub(rhs) {
            Some(m) => m,
            None => panic!("Money overflow: {self} - {rhs}"),
        }
    }
}

impl Neg for Money {
    type Output = Money;

    /// # Panics
    ///
    /// For the most negative amount.
    fn neg(self) -> Money {
        match self.checked_neg() {
            Some(m) => m,
            None => panic!("Money overflow: -({self})"),
        }
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Sum for Money {
    /// # Panics
    ///
    /// On overflow of the `i64` kopeck range.
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

impl fmt::Display for Money {
    /// Always two places: "1250.50", "-0.10", "0.00".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Formatted from kopecks rather than via Decimal so that the output
        // never depends on Decimal's scale handling.
        let k = i128::from(self.kopecks());
        let sign = if k < 0 { "-" } else { "" };
        let abs = k.abs();
        f.pad(&format!("{sign}{}.{:02}", abs / 100, abs % 100))
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Money, MoneyError> {
        Money::parse(s)
    }
}

impl From<Money> for Decimal {
    fn from(m: Money) -> Decimal {
        m.0
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        deserializer.deserialize_str(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown by serde for any non-string input, so it carries the reason.
        f.write_str(
            "a money amount as a string such as \"1250.50\" \
             (numbers are not accepted: floats cannot hold kopecks exactly)",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(E::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parses_accepted_forms() {
        assert_eq!(m("1250.50").kopecks(), 125_050);
        assert_eq!(m("1250.5").kopecks(), 125_050);
        assert_eq!(m("1250").kopecks(), 125_000);
        assert_eq!(m("-3.10").kopecks(), -310);
        assert_eq!(m("1250,50").kopecks(), 125_050);
        assert_eq!(m("0,05").kopecks(), 5);
        assert_eq!(m(" 7.01 ").kopecks(), 701);
        assert_eq!(m("-0.00"), Money::ZERO);
    }

    #[test]
    fn display_has_two_places() {
        assert_eq!(m("1250.5").to_string(), "1250.50");
        assert_eq!(m("-0.1").to_string(), "-0.10");
        assert_eq!(Money::ZERO.to_string(), "0.00");
        assert_eq!(m("-3.10").to_string(), "-3.10");
        assert_eq!(
            Money::from_kopecks(i64::MIN).to_string(),
            "-92233720368547758.08"
        );
        assert_eq!(format!("{:>8}", m("1.5")), "    1.50");
    }

    #[test]
    fn round_trips() {
        for s in [
            "1250.50",
            "-0.10",
            "0.00",
            "92233720368547758.07",
            "-92233720368547758.08",
        ] {
            assert_eq!(m(s).to_string(), s);
            assert_eq!(Money::from_kopecks(m(s).kopecks()), m(s));
        }
        assert_eq!(
            Money::from_kopecks(-1)
                .to_string()
                .parse::<Money>()
                .unwrap()
                .kopecks(),
            -1
        );
    }

    #[test]
    fn decimal_has_scale_two() {
        assert_eq!(m("1250").as_decimal().scale(), 2);
        assert_eq!(Money::from_decimal_rounded(d("5")).as_decimal().scale(), 2);
        assert_eq!(Decimal::from(m("1.5")), d("1.50"));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Money::parse(""), Err(MoneyError::Empty));
        assert_eq!(Money::parse("   "), Err(MoneyError::Empty));
        let err = Money::parse("1.005").unwrap_err();
        assert_eq!(
            err,
            MoneyError::TooManyFractionDigits {
                input: "1.005".into(),
                digits: 3
            }
        );
        assert!(err.to_string().contains("at most 2"), "{err}");
        for bad in [
            "abc", "1.2.3", "1,2,3", "12a", "1.", ".5", "-", "--1", "+1", "1e3", "1 000",
        ] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::InvalidFormat { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Money::parse("92233720368547758.08"),
            Err(MoneyError::Overflow { .. })
        ));
        assert!(matches!(
            Money::parse("99999999999999999999999999999999999999999"),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn arithmetic() {
        let mut a = m("100.10");
        a += m("0.95");
        assert_eq!(a, m("101.05"));
        a -= m("200");
        assert_eq!(a, m("-98.95"));
        assert!(a.is_negative() && !a.is_positive() && !a.is_zero());
        assert_eq!(a.abs(), m("98.95"));
        assert_eq!(-a, m("98.95"));
        assert_eq!(m("1") - m("1"), Money::ZERO);
        assert!(Money::ZERO.is_zero());
        assert!(m("0.01") > m("-100") && m("0.10") > m("0.09"));
        let max = Money::from_kopecks(i64::MAX);
        assert_eq!(max.checked_add(m("0.01")), None);
        assert_eq!(Money::from_kopecks(i64::MIN).checked_sub(m("0.01")), None);
        assert_eq!(Money::from_kopecks(i64::MIN).checked_neg(), None);
        assert_eq!(m("1").checked_add(m("2")), Some(m("3")));
    }

    #[test]
    #[should_panic(expected = "Money overflow")]
    fn add_overflow_panics() {
        let _ = Money::from_kopecks(i64::MAX) + m("0.01");
    }

    #[test]
    fn sums() {
        let v = [m("1.10"), m("2.20"), m("-0.30")];
        assert_eq!(v.iter().sum::<Money>(), m("3.00"));
        assert_eq!(v.into_iter().sum::<Money>(), m("3.00"));
        assert_eq!(Vec::<Money>::new().into_iter().sum::<Money>(), Money::ZERO);
    }

    #[test]
    fn rounding_half_away_from_zero() {
        assert_eq!(Money::from_decimal_rounded(d("10.005")), m("10.01"));
        assert_eq!(Money::from_decimal_rounded(d("-10.005")), m("-10.01"));
        assert_eq!(Money::from_decimal_rounded(d("10.0049999")), m("10.00"));
        assert_eq!(Money::from_decimal_rounded(d("2.675")), m("2.68"));
        assert!(matches!(
            Money::try_from_decimal_rounded(Decimal::MAX),
            Err(MoneyError::Overflow { .. })
        ));
        assert_eq!(Money::try_from_decimal_exact(d("1.500")), Ok(m("1.5")));
        assert!(Money::try_from_decimal_exact(d("1.505")).is_err());
    }

    #[test]
    fn percent_rounds_half_away_from_zero() {
        // 1000.50 × 1% = 10.005 exactly, the midpoint.
        assert_eq!(m("1000.50").percent(Decimal::ONE), m("10.01"));
        assert_eq!(m("-1000.50").percent(Decimal::ONE), m("-10.01"));
        assert_eq!(m("1250.00").percent(d("13")), m("162.50"));
        assert_eq!(m("100").percent(d("33.333")), m("33.33"));
        assert_eq!(m("0.01").percent(d("50")), m("0.01"));
        assert_eq!(
            Money::from_kopecks(i64::MAX).checked_percent(d("200")),
            None
        );
    }

    #[test]
    fn serde_uses_strings() {
        assert_eq!(serde_json::to_string(&m("1250.5")).unwrap(), "\"1250.50\"");
        let back: Money = serde_json::from_str("\"1250,50\"").unwrap();
        assert_eq!(back, m("1250.50"));
        let v: Vec<Money> = serde_json::from_str(r#"["-0.10","3"]"#).unwrap();
        assert_eq!(v, vec![m("-0.10"), m("3.00")]);
    }

    #[test]
    fn serde_rejects_numbers_and_bad_strings() {
        for json in ["1250.5", "1250", "-3", "1e2"] {
            let err = serde_json::from_str::<Money>(json).unwrap_err().to_string();
            assert!(err.contains("numbers are not accepted"), "{json}: {err}");
        }
        let err = serde_json::from_str::<Money>("\"1.234\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 fractional digits"), "{err}");
        assert!(serde_json::from_str::<Money>("null").is_err());
    }
}
