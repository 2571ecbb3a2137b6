//! Validated Russian identifiers.
//!
//! Each type is a newtype over its normalized text. `parse` accepts the input
//! with surrounding whitespace ignored; positions in errors are 1-based
//! character positions in the input as given. `Display`, `as_str` and serde
//! all use the normalized text, and deserialization goes through `parse`.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

const SNILS: &str = "СНИЛС";
const INN: &str = "ИНН";
const KPP: &str = "КПП";
const BIK: &str = "БИК";
const ACCOUNT: &str = "счёт";
const OGRN: &str = "ОГРН";
const OGRNIP: &str = "ОГРНИП";
const UIN: &str = "УИН";
const EMAIL: &str = "e-mail";
const PHONE: &str = "phone number";

const A_DIGIT: &str = "a digit";

/// Why an identifier was rejected. `kind` is the identifier's name as users
/// know it, e.g. "ИНН".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of digits or characters.
    #[error("{kind} must have {expected}, got {actual}")]
    WrongLength {
        /// Identifier name.
        kind: &'static str,
        /// What is expected, e.g. "10 or 12 digits".
        expected: &'static str,
        /// How many digits or characters the input has.
        actual: usize,
    },
    /// A character that is not allowed at its position.
    #[error("{kind}: unexpected character {found:?} at position {position}, expected {expected}")]
    InvalidCharacter {
        /// Identifier name.
        kind: &'static str,
        /// 1-based character position in the input as given.
        position: usize,
        /// The offending character.
        found: char,
        /// What is allowed there, e.g. "a digit".
        expected: &'static str,
    },
    /// The check digit (or control key) does not match the rest.
    #[error(
        "{kind} has a wrong check digit at position {position}: expected {expected}, got {actual}"
    )]
    BadCheckDigit {
        /// Identifier name.
        kind: &'static str,
        /// 1-based position of the (first) check digit in the normalized value.
        position: usize,
        /// The check digit(s) the algorithm computes.
        expected: String,
        /// The check digit(s) in the input.
        actual: String,
    },
    /// Structurally wrong in another way.
    #[error("{kind} {reason}")]
    BadFormat {
        /// Identifier name.
        kind: &'static str,
        /// What is wrong, phrased to follow the name.
        reason: &'static str,
    },
}

impl IdError {
    /// The identifier name the error is about, e.g. "СНИЛС".
    pub fn kind(&self) -> &'static str {
        match self {
            IdError::WrongLength { kind, .. }
            | IdError::InvalidCharacter { kind, .. }
            | IdError::BadCheckDigit { kind, .. }
            | IdError::BadFormat { kind, .. } => kind,
        }
    }
}

/// Number of whitespace characters `trim` removes from the front, so error
/// positions can refer to the untrimmed input.
fn leading_ws(input: &str) -> usize {
    input.chars().take_while(|c| c.is_whitespace()).count()
}

/// Digits of `input` (trimmed), skipping `separators`; anything else is an
/// error at its position.
fn collect_digits(
    kind: &'static str,
    input: &str,
    separators: &[char],
) -> Result<Vec<u8>, IdError> {
    let lead = leading_ws(input);
    let mut out = Vec::new();
    for (i, c) in input.trim().chars().enumerate() {
        if let Some(d) = c.to_digit(10) {
            out.push(d as u8);
        } else if !separators.contains(&c) {
            return Err(IdError::InvalidCharacter {
                kind,
                position: lead + i + 1,
                found: c,
                expected: A_DIGIT,
            });
        }
    }
    Ok(out)
}

fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// Σ digit × weight, weights zipped from the left.
fn weighted_sum(digits: &[u8], weights: &[u32]) -> u32 {
    digits
        .iter()
        .zip(weights)
        .map(|(&d, &w)| u32::from(d) * w)
        .sum()
}

fn check_digit(
    kind: &'static str,
    position: usize,
    expected: u8,
    actual: u8,
) -> Result<(), IdError> {
    if expected == actual {
        Ok(())
    } else {
        Err(IdError::BadCheckDigit {
            kind,
            position,
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// `as_str`, `Display`, `FromStr`, `AsRef<str>` and serde for a newtype over
/// its normalized `String` that has an associated `parse`.
macro_rules! string_id {
    ($t:ident) => {
        impl $t {
            /// The normalized text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl FromStr for $t {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                $t::parse(s)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                $t::parse(&s).map_err(de::Error::custom)
            }
        }
    };
}

/// СНИЛС: insurance number of individual ledger account (pension insurance).
///
/// 11 digits: a 9-digit number and a 2-digit check number. Input may be
/// `123-456-789 01` or plain digits (hyphens and spaces are ignored wherever
/// they are); the value is stored as 11 digits, [`Snils::formatted`] gives the
/// `123-456-789 01` form.
///
/// Check number: Σ of digits 1–9 × weights 9, 8, …, 1, taken mod 101, with
/// 100 written as `00` (so sums 100 and 101 both give `00`). Numbers whose
/// first nine digits are ≤ `001-001-998` were issued without a check, so any
/// check number is accepted for them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Snils(String);

impl Snils {
    /// Largest number (first nine digits) issued without a check number.
    const UNCHECKED_MAX: u32 = 1_001_998;

    /// Parses and validates a СНИЛС.
    pub fn parse(input: &str) -> Result<Snils, IdError> {
        let d = collect_digits(SNILS, input, &['-', ' '])?;
        if d.len() != 11 {
            return Err(IdError::WrongLength {
                kind: SNILS,
                expected: "11 digits",
                actual: d.len(),
            });
        }
        let number = d[..9].iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x));
        if number > Snils::UNCHECKED_MAX {
            let expected = Snils::check_number(&d[..9]);
            let actual = d[9] * 10 + d[10];
            if expected != actual {
                return Err(IdError::BadCheckDigit {
                    kind: SNILS,
                    position: 10,
                    expected: format!("{expected:02}"),
                    actual: format!("{actual:02}"),
                });
            }
        }
        Ok(Snils(digits_to_string(&d)))
    }

    /// The two-digit check number for the first nine digits.
    fn check_number(first9: &[u8]) -> u8 {
        let sum = weighted_sum(first9, &[9, 8, 7, 6, 5, 4, 3, 2, 1]);
        // 100 is written as 00; taking mod 101 alone would leave 100.
        match sum % 101 {
            100 => 0,
            r => r as u8,
        }
    }

    /// The customary `123-456-789 01` form.
    pub fn formatted(&self) -> String {
        let s = &self.0;
        format!("{}-{}-{} {}", &s[0..3], &s[3..6], &s[6..9], &s[9..11])
    }
}

string_id!(Snils);

/// ИНН: taxpayer identification number.
///
/// 10 digits for a legal entity: digit 10 = (Σ digits 1–9 × 2, 4, 10, 3, 5,
/// 9, 4, 6, 8) mod 11 mod 10.
///
/// 12 digits for an individual: digit 11 = (Σ digits 1–10 × 7, 2, 4, 10, 3,
/// 5, 9, 4, 6, 8) mod 11 mod 10; digit 12 = (Σ digits 1–11 × 3, 7, 2, 4, 10,
/// 3, 5, 9, 4, 6, 8) mod 11 mod 10.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Inn(String);

impl Inn {
    /// Parses and validates an ИНН (digits only).
    pub fn parse(input: &str) -> Result<Inn, IdError> {
        let d = collect_digits(INN, input, &[])?;
        let check =
            |digits: &[u8], weights: &[u32]| (weighted_sum(digits, weights) % 11 % 10) as u8;
        match d.len() {
            10 => check_digit(INN, 10, check(&d[..9], &[2, 4, 10, 3, 5, 9, 4, 6, 8]), d[9])?,
            12 => {
                check_digit(
                    INN,
                    11,
                    check(&d[..10], &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]),
                    d[10],
                )?;
                check_digit(
                    INN,
                    12,
                    check(&d[..11], &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]),
                    d[11],
                )?;
            }
            n => {
                return Err(IdError::WrongLength {
                    kind: INN,
                    expected: "10 or 12 digits",
                    actual: n,
                })
            }
        }
        Ok(Inn(digits_to_string(&d)))
    }

    /// True for a 10-digit ИНН (legal entity), false for a 12-digit one
    /// (individual, including individual entrepreneurs).
    pub fn is_legal_entity(&self) -> bool {
        self.0.len() == 10
    }
}

string_id!(Inn);

/// КПП: tax registration reason code of a legal entity.
///
/// 9 characters `NNNNPPNNN`: four digits (tax office code), two digits or
/// Latin capital letters A–Z (reason code), three digits (serial number).
/// It has no check digit, so only the format is validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kpp(String);

impl Kpp {
    /// Parses a КПП (format only; there is no check digit).
    pub fn parse(input: &str) -> Result<Kpp, IdError> {
        let s = input.trim();
        let len = s.chars().count();
        if len != 9 {
            return Err(IdError::WrongLength {
                kind: KPP,
                expected: "9 characters",
                actual: len,
            });
        }
        let lead = leading_ws(input);
        for (i, c) in s.chars().enumerate() {
            let reason_code = i == 4 || i == 5;
            let ok = c.is_ascii_digit() || (reason_code && c.is_ascii_uppercase());
            if !ok {
                return Err(IdError::InvalidCharacter {
                    kind: KPP,
                    position: lead + i + 1,
                    found: c,
                    expected: if reason_code {
                        "a digit or a Latin capital letter A-Z"
                    } else {
                        A_DIGIT
                    },
                });
            }
        }
        Ok(Kpp(s.to_owned()))
    }
}

string_id!(Kpp);

/// БИК: bank identification code.
///
/// 9 digits, no check digit. Credit institutions' codes start with `04`;
/// Bank of Russia and Federal Treasury (УФК, territorial treasury) codes
/// start with `00` or `01`, e.g. `004525988`, and are equally valid, so no
/// prefix is required.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bik(String);

impl Bik {
    /// Parses a БИК (9 digits; there is no check digit).
    pub fn parse(input: &str) -> Result<Bik, IdError> {
        let d = collect_digits(BIK, input, &[])?;
        if d.len() != 9 {
            return Err(IdError::WrongLength {
                kind: BIK,
                expected: "9 digits",
                actual: d.len(),
            });
        }
        Ok(Bik(digits_to_string(&d)))
    }

    fn digits(&self) -> Vec<u8> {
        self.0.bytes().map(|b| b - b'0').collect()
    }
}

string_id!(Bik);

/// Bank account number: расчётный счёт (settlement account) or
/// корреспондентский счёт (correspondent account), 20 digits.
///
/// Digit 9 is a control key computed together with the bank's БИК: take a
/// 3-digit prefix followed by the 20 account digits, multiply the 23 digits by
/// weights 7, 1, 3 repeated, keep the last digit of each product; the account
/// is valid if the sum of those is divisible by 10. The prefix is
///
/// * for an account at a credit institution (a client's settlement account):
///   the last three digits of the БИК — [`AccountNumber::parse_with_bik`];
/// * for an account at the Bank of Russia (a bank's correspondent account,
///   also the Treasury's single treasury account 40102…): `0` followed by
///   digits 5–6 of the БИК — [`AccountNumber::parse_correspondent_with_bik`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountNumber(String);

impl AccountNumber {
    const WEIGHTS: [u32; 3] = [7, 1, 3];

    /// Checks the format only (20 digits). It does **not** check the control
    /// key, which needs the БИК; use it only where the БИК is unknown.
    pub fn parse(input: &str) -> Result<AccountNumber, IdError> {
        AccountNumber::parse_digits(input).map(|d| AccountNumber(digits_to_string(&d)))
    }

    /// Parses an account at a credit institution and checks its control key
    /// against the bank's БИК (prefix: last three digits of the БИК).
    pub fn parse_with_bik(account: &str, bik: &Bik) -> Result<AccountNumber, IdError> {
        let b = bik.digits();
        AccountNumber::parse_keyed(account, [b[6], b[7], b[8]])
    }

    /// Parses an account opened at the Bank of Russia, such as a bank's
    /// correspondent account `30101…`, and checks its control key (prefix:
    /// `0` and digits 5–6 of the БИК).
    pub fn parse_correspondent_with_bik(
        account: &str,
        bik: &Bik,
    ) -> Result<AccountNumber, IdError> {
        let b = bik.digits();
        AccountNumber::parse_keyed(account, [0, b[4], b[5]])
    }

    fn parse_digits(input: &str) -> Result<Vec<u8>, IdError> {
        let d = collect_digits(ACCOUNT, input, &[])?;
        if d.len() != 20 {
            return Err(IdError::WrongLength {
                kind: ACCOUNT,
                expected: "20 digits",
                actual: d.len(),
            });
        }
        Ok(d)
    }

    fn parse_keyed(input: &str, prefix: [u8; 3]) -> Result<AccountNumber, IdError> {
        let d = AccountNumber::parse_digits(input)?;
        let weighted = |i: usize, x: u8| u32::from(x) * AccountNumber::WEIGHTS[i % 3] % 10;
        // Sum with the key digit (account digit 9, 23-digit position 12)
        // counted as zero, then solve for the key: its weight there is 3,
        // and 3 × 7 ≡ 1 (mod 10).
        let partial: u32 = prefix
            .iter()
            .chain(&d)
            .enumerate()
            .filter(|&(i, _)| i != 11)
            .map(|(i, &x)| weighted(i, x))
            .sum();
        let expected = ((10 - partial % 10) % 10 * 7 % 10) as u8;
        check_digit(ACCOUNT, 9, expected, d[8])?;
        Ok(AccountNumber(digits_to_string(&d)))
    }
}

string_id!(AccountNumber);

/// ОГРН: primary state registration number of a legal entity (13 digits), or
/// ОГРНИП: the same for an individual entrepreneur (15 digits).
///
/// ОГРН: digit 13 = (first 12 digits as a number mod 11) mod 10.
/// ОГРНИП: digit 15 = (first 14 digits as a number mod 13) mod 10.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ogrn(String);

impl Ogrn {
    /// Parses an ОГРН (13 digits) or ОГРНИП (15 digits).
    pub fn parse(input: &str) -> Result<Ogrn, IdError> {
        let d = collect_digits(OGRN, input, &[])?;
        let (kind, modulus) = match d.len() {
            13 => (OGRN, 11),
            15 => (OGRNIP, 13),
            n => {
                return Err(IdError::WrongLength {
                    kind: OGRN,
                    expected: "13 digits (ОГРН) or 15 digits (ОГРНИП)",
                    actual: n,
                })
            }
        };
        let last = d.len() - 1;
        let number = d[..last]
            .iter()
            .fold(0u64, |acc, &x| acc * 10 + u64::from(x));
        let expected = (number % modulus % 10) as u8;
        check_digit(kind, d.len(), expected, d[last])?;
        Ok(Ogrn(digits_to_string(&d)))
    }

    /// True for a 15-digit ОГРНИП.
    pub fn is_individual_entrepreneur(&self) -> bool {
        self.0.len() == 15
    }
}

string_id!(Ogrn);

/// УИН: unique charge identifier in ГИС ГМП (the state information system
/// on state and municipal payments).
///
/// Either 20 characters or 25 digits; the last character is a check digit
/// over the rest (19 or 24 characters). The 20-character form accepts
/// digits, Latin capital letters A–Z and Russian capital letters А–Я
/// (including Ё); the 25-digit form accepts digits only. For the check a
/// letter counts as its position in its alphabet mod 10: Latin A = 1 … Z = 26,
/// Russian in the 33-letter order А = 1, …, Е = 6, Ё = 7, Ж = 8, …, Я = 33.
///
/// Check digit: weights 1, 2, …, 10 repeating from the left; r = Σ mod 11;
/// if r ≠ 10 it is the check digit, otherwise repeat with weights
/// 3, 4, …, 10, 1, 2, …; if that is 10 again, the check digit is 0.
/// A УИН of zeros only is invalid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uin(String);

const RUSSIAN_ALPHABET: &str = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ";
const UIN_CHARS: &str = "a digit or a capital Latin or Russian letter";

impl Uin {
    /// Parses and validates a УИН.
    pub fn parse(input: &str) -> Result<Uin, IdError> {
        let s = input.trim();
        let chars: Vec<char> = s.chars().collect();
        let (body, last) = match chars.split_last() {
            Some((&last, body)) if chars.len() == 20 || chars.len() == 25 => (body, last),
            _ => {
                return Err(IdError::WrongLength {
                    kind: UIN,
                    expected: "20 characters or 25 digits",
                    actual: chars.len(),
                })
            }
        };
        let lead = leading_ws(input);
        let values = Uin::body_values(body, lead)?;
        let Some(actual) = last.to_digit(10) else {
            return Err(IdError::InvalidCharacter {
                kind: UIN,
                position: lead + chars.len(),
                found: last,
                expected: "a check digit",
            });
        };
        if chars.iter().all(|&c| c == '0') {
            return Err(IdError::BadFormat {
                kind: UIN,
                reason: "must not consist of zeros only",
            });
        }
        check_digit(UIN, chars.len(), Uin::check_value(&values), actual as u8)?;
        Ok(Uin(s.to_owned()))
    }

    /// The check digit for a body of 19 characters (20-character form) or 24
    /// digits (25-digit form), so callers can issue УИНs.
    pub fn compute_check_digit(body: &str) -> Result<char, IdError> {
        let chars: Vec<char> = body.trim().chars().collect();
        if chars.len() != 19 && chars.len() != 24 {
            return Err(IdError::WrongLength {
                kind: UIN,
                expected: "19 characters or 24 digits before the check digit",
                actual: chars.len(),
            });
        }
        let values = Uin::body_values(&chars, leading_ws(body))?;
        Ok(char::from(b'0' + Uin::check_value(&values)))
    }

    /// Appends the check digit to `body` (see [`Uin::compute_check_digit`])
    /// and validates the result.
    pub fn with_check_digit(body: &str) -> Result<Uin, IdError> {
        let check = Uin::compute_check_digit(body)?;
        Uin::parse(&format!("{}{check}", body.trim()))
    }

    /// Numeric values of the body characters; letters only in the 19-char body.
    fn body_values(body: &[char], lead: usize) -> Result<Vec<u32>, IdError> {
        let letters_allowed = body.len() == 19;
        body.iter()
            .enumerate()
            .map(|(i, &c)| {
                let value = match c {
                    '0'..='9' => c.to_digit(10),
                    'A'..='Z' if letters_allowed => Some((u32::from(c) - u32::from('A') + 1) % 10),
                    _ if letters_allowed => RUSSIAN_ALPHABET
                        .chars()
                        .position(|r| r == c)
                        .map(|p| (p as u32 + 1) % 10),
                    _ => None,
                };
                value.ok_or(IdError::InvalidCharacter {
                    kind: UIN,
                    position: lead + i + 1,
                    found: c,
                    expected: if letters_allowed { UIN_CHARS } else { A_DIGIT },
                })
            })
            .collect()
    }

    fn check_value(values: &[u32]) -> u8 {
        let pass = |offset: usize| -> u32 {
            values
                .iter()
                .enumerate()
                .map(|(i, &v)| v * ((i + offset) % 10 + 1) as u32)
                .sum::<u32>()
                % 11
        };
        match pass(0) {
            10 => match pass(2) {
                10 => 0,
                r => r as u8,
            },
            r => r as u8,
        }
    }
}

string_id!(Uin);

/// E-mail address, checked for sanity rather than full RFC 5322: one `@`,
/// non-empty local part and domain, a domain of dot-separated non-empty labels
/// with at least one dot, no whitespace or control characters, at most 254
/// characters. The domain is lowercased (it is case-insensitive); the local
/// part is kept as typed, since mail servers may treat its case as
/// significant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    const MAX_LEN: usize = 254;

    /// Parses and normalizes an e-mail address.
    pub fn parse(input: &str) -> Result<Email, IdError> {
        let s = input.trim();
        let bad = |reason| IdError::BadFormat {
            kind: EMAIL,
            reason,
        };
        if s.is_empty() {
            return Err(bad("is empty"));
        }
        let len = s.chars().count();
        if len > Email::MAX_LEN {
            return Err(IdError::WrongLength {
                kind: EMAIL,
                expected: "at most 254 characters",
                actual: len,
            });
        }
        let lead = leading_ws(input);
        if let Some((i, c)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_whitespace() || c.is_control())
        {
            return Err(IdError::InvalidCharacter {
                kind: EMAIL,
                position: lead + i + 1,
                found: c,
                expected: "no spaces or control characters",
            });
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("must contain exactly one '@'"));
        };
        if local.is_empty() {
            return Err(bad("has nothing before '@'"));
        }
        if domain.is_empty() {
            return Err(bad("has no domain after '@'"));
        }
        if !domain.contains('.') {
            return Err(bad("domain must contain a dot"));
        }
        if domain.split('.').any(str::is_empty) {
            return Err(bad(
                "domain has an empty label (leading, trailing or double dot)",
            ));
        }
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }
}

string_id!(Email);

/// Russian phone number, normalized to `+7XXXXXXXXXX`.
///
/// Accepts `+7 (912) 345-67-89`, `89123456789`, `+79123456789`: spaces,
/// hyphens and parentheses are ignored, a leading `+` is allowed, and the 11
/// digits must start with 7 or 8 (8 is the domestic trunk prefix and becomes
/// +7; `+8…` is rejected since it is not a valid international form).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses and normalizes a Russian phone number.
    pub fn parse(input: &str) -> Result<Phone, IdError> {
        let trimmed = input.trim();
        let lead = leading_ws(input);
        let (plus, rest, offset) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest, lead + 1),
            None => (false, trimmed, lead),
        };
        let d = collect_digits(PHONE, rest, &[' ', '-', '(', ')']).map_err(|e| match e {
            IdError::InvalidCharacter {
                kind,
                position,
                found,
                expected,
            } => IdError::InvalidCharacter {
                kind,
                position: position + offset,
                found,
                expected,
            },
            other => other,
        })?;
        if d.len() != 11 {
            return Err(IdError::WrongLength {
                kind: PHONE,
                expected: "11 digits starting with 7 or 8",
                actual: d.len(),
            });
        }
        match (d[0], plus) {
            (7, _) | (8, false) => {}
            (8, true) => {
                return Err(IdError::BadFormat {
                    kind: PHONE,
                    reason: "must start with +7 or 8, not +8",
                })
            }
            _ => {
                return Err(IdError::BadFormat {
                    kind: PHONE,
                    reason: "must start with +7, 7 or 8",
                })
            }
        }
        Ok(Phone(format!("+7{}", digits_to_string(&d[1..]))))
    }

    /// Human-readable `+7 (912) 345-67-89`.
    pub fn formatted(&self) -> String {
        let s = &self.0;
        format!(
            "+7 ({}) {}-{}-{}",
            &s[2..5],
            &s[5..8],
            &s[8..10],
            &s[10..12]
        )
    }
}

string_id!(Phone);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bad_check(e: IdError) -> (usize, String, String) {
        match e {
            IdError::BadCheckDigit {
                position,
                expected,
                actual,
                ..
            } => (position, expected, actual),
            other => panic!("expected BadCheckDigit, got {other:?}"),
        }
    }

    fn bad_char(e: IdError) -> (usize, char) {
        match e {
            IdError::InvalidCharacter {
                position, found, ..
            } => (position, found),
            other => panic!("expected InvalidCharacter, got {other:?}"),
        }
    }

    fn bad_len(e: IdError) -> usize {
        match e {
            IdError::WrongLength { actual, .. } => actual,
            other => panic!("expected WrongLength, got {other:?}"),
        }
    }

    #[test]
    fn snils_valid() {
        // 1·9+1·8+2·7+2·6+3·5+3·4+4·3+4·2+5·1 = 95
        let s = Snils::parse("112-233-445 95").unwrap();
        assert_eq!(s.as_str(), "11223344595");
        assert_eq!(s.formatted(), "112-233-445 95");
        assert_eq!(s.to_string(), "11223344595");
        assert_eq!(Snils::parse(" 11223344595 ").unwrap(), s);
        // 1·9+2·8+…+9·1 = 165, 165 mod 101 = 64
        assert!(Snils::parse("123-456-789 64").is_ok());
    }

    #[test]
    fn snils_sums_100_and_101_give_00() {
        // 0·9+0·8+1·7+5·6+0·5+8·4+8·3+1·2+5·1 = 100
        assert!(Snils::parse("001-508-815 00").is_ok());
        // 0·9+0·8+1·7+4·6+3·5+7·4+5·3+4·2+4·1 = 101
        assert!(Snils::parse("001-437-544 00").is_ok());
        let (pos, exp, act) = bad_check(Snils::parse("001-508-815 01").unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (10, "00", "01"));
        let (_, exp, _) = bad_check(Snils::parse("001-437-544 01").unwrap_err());
        assert_eq!(exp, "00");
    }

    #[test]
    fn snils_old_numbers_are_not_checked() {
        assert!(Snils::parse("001-001-998 12").is_ok());
        assert!(Snils::parse("000-000-001 99").is_ok());
        // 001-001-999 is the first checked number: 1·7+1·4+9·3+9·2+9·1 = 65
        assert!(Snils::parse("001-001-999 65").is_ok());
        assert!(Snils::parse("001-001-999 12").is_err());
    }

    #[test]
    fn snils_invalid() {
        let (pos, exp, act) = bad_check(Snils::parse("112-233-445 96").unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (10, "95", "96"));
        assert_eq!(bad_len(Snils::parse("112-233-445 9").unwrap_err()), 10);
        assert_eq!(bad_len(Snils::parse("").unwrap_err()), 0);
        assert_eq!(
            bad_char(Snils::parse("112-233-44a 95").unwrap_err()),
            (11, 'a')
        );
        assert_eq!(
            bad_char(Snils::parse("  1122334459x").unwrap_err()),
            (13, 'x')
        );
        let msg = Snils::parse("112-233-445 96").unwrap_err().to_string();
        assert_eq!(
            msg,
            "СНИЛС has a wrong check digit at position 10: expected 95, got 96"
        );
    }

    #[test]
    fn inn_valid() {
        // Сбербанк, Яндекс, Газпром, ВТБ
        for s in ["7707083893", "7736207543", "7736050003", "7702070139"] {
            let inn = Inn::parse(s).unwrap();
            assert!(inn.is_legal_entity(), "{s}");
            assert_eq!(inn.as_str(), s);
        }
        let person = Inn::parse("500100732259").unwrap();
        assert!(!person.is_legal_entity());
    }

    #[test]
    fn inn_invalid() {
        // 7·2+7·4+0·10+7·3+0·5+8·9+3·4+8·6+9·8 = 267, 267 mod 11 = 3
        let (pos, exp, act) = bad_check(Inn::parse("7707083894").unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (10, "3", "4"));
        let (pos, exp, _) = bad_check(Inn::parse("500100732249").unwrap_err());
        assert_eq!((pos, exp.as_str()), (11, "5"));
        let (pos, exp, _) = bad_check(Inn::parse("500100732258").unwrap_err());
        assert_eq!((pos, exp.as_str()), (12, "9"));
        assert_eq!(
            Inn::parse("770708389").unwrap_err().to_string(),
            "ИНН must have 10 or 12 digits, got 9"
        );
        assert_eq!(bad_len(Inn::parse("77070838931").unwrap_err()), 11);
        assert_eq!(bad_char(Inn::parse("77070838a3").unwrap_err()), (9, 'a'));
        assert_eq!(bad_char(Inn::parse("7707-083893").unwrap_err()), (5, '-'));
    }

    #[test]
    fn kpp() {
        assert_eq!(Kpp::parse("773601001").unwrap().as_str(), "773601001");
        assert!(Kpp::parse("7736AZ001").is_ok());
        assert!(Kpp::parse("77369Z001").is_ok());
        assert_eq!(bad_char(Kpp::parse("7736ab001").unwrap_err()), (5, 'a'));
        assert_eq!(bad_char(Kpp::parse("77A601001").unwrap_err()), (3, 'A'));
        assert_eq!(bad_char(Kpp::parse("7736010A1").unwrap_err()), (8, 'A'));
        assert_eq!(bad_char(Kpp::parse("7736ДЖ001").unwrap_err()), (5, 'Д'));
        assert_eq!(bad_len(Kpp::parse("77360100").unwrap_err()), 8);
        assert_eq!(bad_len(Kpp::parse("7736010011").unwrap_err()), 10);
    }

    #[test]
    fn bik() {
        assert_eq!(Bik::parse("044525225").unwrap().as_str(), "044525225");
        // Treasury (УФК) БИК starting with 00.
        assert!(Bik::parse("004525988").is_ok());
        assert_eq!(bad_len(Bik::parse("04452522").unwrap_err()), 8);
        assert_eq!(bad_char(Bik::parse("04452522X").unwrap_err()), (9, 'X'));
        assert_eq!(
            Bik::parse("0445252250").unwrap_err().to_string(),
            "БИК must have 9 digits, got 10"
        );
    }

    #[test]
    fn account_numbers() {
        let sber = Bik::parse("044525225").unwrap();
        // Сбербанк's correspondent account at the Bank of Russia: prefix 052.
        let corr = AccountNumber::parse_correspondent_with_bik("30101810400000000225", &sber);
        assert_eq!(corr.unwrap().as_str(), "30101810400000000225");
        // The same number under the credit-institution prefix 225 is wrong.
        let (pos, exp, act) =
            bad_check(AccountNumber::parse_with_bik("30101810400000000225", &sber).unwrap_err());
        assert_eq!(pos, 9);
        assert_ne!(exp, act);
        // A client account at Сбербанк, prefix 225.
        assert!(AccountNumber::parse_with_bik("40702810938000000001", &sber).is_ok());
        let (pos, exp, act) =
            bad_check(AccountNumber::parse_with_bik("40702810038000000001", &sber).unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (9, "9", "0"));
        // The treasury's single account at the Bank of Russia (УФК по г. Москве).
        let ufk = Bik::parse("004525988").unwrap();
        assert!(AccountNumber::parse_correspondent_with_bik("40102810545370000003", &ufk).is_ok());
        assert!(AccountNumber::parse_correspondent_with_bik("40102810545370000004", &ufk).is_err());
    }

    #[test]
    fn account_number_format_only() {
        // Format-only parsing accepts a wrong key by design.
        assert!(AccountNumber::parse("40702810038000000001").is_ok());
        assert_eq!(
            bad_len(AccountNumber::parse("4070281093800000000").unwrap_err()),
            19
        );
        assert_eq!(
            bad_char(AccountNumber::parse("40702810 938000000001").unwrap_err()),
            (9, ' ')
        );
    }

    #[test]
    fn every_wrong_key_digit_is_rejected() {
        let sber = Bik::parse("044525225").unwrap();
        for d in 0..=9u8 {
            let acc = format!("40702810{d}38000000001");
            assert_eq!(
                AccountNumber::parse_with_bik(&acc, &sber).is_ok(),
                d == 9,
                "{acc}"
            );
        }
    }

    #[test]
    fn ogrn() {
        // Сбербанк, Яндекс, Газпром, ВТБ
        for s in [
            "1027700132195",
            "1027700229193",
            "1027700070518",
            "1027739609391",
        ] {
            let o = Ogrn::parse(s).unwrap();
            assert!(!o.is_individual_entrepreneur());
        }
        let ip = Ogrn::parse("304500116000157").unwrap();
        assert!(ip.is_individual_entrepreneur());
        let (pos, exp, act) = bad_check(Ogrn::parse("1027700132194").unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (13, "5", "4"));
        let err = Ogrn::parse("304500116000158").unwrap_err();
        assert_eq!(err.kind(), "ОГРНИП");
        assert_eq!(bad_check(err).1, "7");
        assert_eq!(bad_len(Ogrn::parse("10277001321951").unwrap_err()), 14);
        assert_eq!(
            bad_char(Ogrn::parse("10277001321O5").unwrap_err()),
            (12, 'O')
        );
    }

    #[test]
    fn uin_valid() {
        // Σ = 1·1+8·2+8·3+1·4+0·5+1·6+7·7+7·8+1·9+9·10+0·1+0·2+0·3+1·4+2·5+3·6+4·7+5·8+6·9
        //   = 409, 409 mod 11 = 2
        assert!(Uin::parse("18810177190001234562").is_ok());
        // Same digits padded with zeros in the 25-digit form: Σ is unchanged.
        assert!(Uin::parse("1881017719000123456000002").is_ok());
        // First pass: 1·1+1·9 = 10, second: 1·3+1·1 = 4.
        assert!(Uin::parse("10000000100000000004").is_ok());
        // First pass: 1·2+3·10 = 32 ≡ 10, second: 1·4+3·2 = 10 → 0.
        assert!(Uin::parse("01000000030000000000").is_ok());
        // A..I = 1..9, J = 10 → 0: Σ k² (k=1..9) twice = 570, 570 mod 11 = 9
        assert!(Uin::parse("ABCDEFGHIJ1234567899").is_ok());
        // А1 Б2 В3 Г4 Д5 Ж8 Ё7 Я33→3 Ю32→2: 194 + 285 = 479, 479 mod 11 = 6
        assert!(Uin::parse("АБВГДЖЁЯЮ01234567896").is_ok());
    }

    #[test]
    fn uin_invalid() {
        let (pos, exp, act) = bad_check(Uin::parse("18810177190001234563").unwrap_err());
        assert_eq!((pos, exp.as_str(), act.as_str()), (20, "2", "3"));
        assert_eq!(
            bad_check(Uin::parse("10000000100000000000").unwrap_err()).1,
            "4"
        );
        assert_eq!(
            bad_check(Uin::parse("01000000030000000001").unwrap_err()).1,
            "0"
        );
        for zeros in ["00000000000000000000", "0000000000000000000000000"] {
            assert!(matches!(
                Uin::parse(zeros),
                Err(IdError::BadFormat { kind: "УИН", .. })
            ));
        }
        assert_eq!(bad_len(Uin::parse("1881017719000123456").unwrap_err()), 19);
        assert_eq!(
            bad_len(Uin::parse("188101771900012345622").unwrap_err()),
            21
        );
        // Letters only in the 20-character form.
        assert_eq!(
            bad_char(Uin::parse("A881017719000123456000002").unwrap_err()),
            (1, 'A')
        );
        assert_eq!(
            bad_char(Uin::parse("a8810177190001234562").unwrap_err()),
            (1, 'a')
        );
        assert_eq!(
            bad_char(Uin::parse("1881017719000123456A").unwrap_err()),
            (20, 'A')
        );
    }

    #[test]
    fn uin_generation() {
        assert_eq!(Uin::compute_check_digit("1881017719000123456"), Ok('2'));
        assert_eq!(
            Uin::compute_check_digit("188101771900012345600000"),
            Ok('2')
        );
        assert_eq!(Uin::compute_check_digit("0100000003000000000"), Ok('0'));
        let uin = Uin::with_check_digit("ABCDEFGHIJ123456789").unwrap();
        assert_eq!(uin.as_str(), "ABCDEFGHIJ1234567899");
        assert_eq!(bad_len(Uin::compute_check_digit("12345").unwrap_err()), 5);
        assert!(Uin::with_check_digit("0000000000000000000").is_err());
        // Every generated УИН parses.
        for n in 1..200u32 {
            let body = format!("{:019}", u64::from(n) * 7_919_000_013);
            let uin = Uin::with_check_digit(&body).unwrap();
            assert_eq!(Uin::parse(uin.as_str()).unwrap(), uin);
        }
    }

    #[test]
    fn email() {
        let e = Email::parse(" User.Name+tag@Example.RU ").unwrap();
        assert_eq!(e.as_str(), "User.Name+tag@example.ru");
        assert!(Email::parse("a@b.c").is_ok());
        for bad in [
            "",
            "no-at.ru",
            "a@b@c.ru",
            "@x.ru",
            "a@",
            "a@localhost",
            "a@x..ru",
            "a@.x.ru",
            "a@x.ru.",
        ] {
            assert!(
                matches!(
                    Email::parse(bad),
                    Err(IdError::BadFormat { kind: "e-mail", .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(bad_char(Email::parse("a b@x.ru").unwrap_err()), (2, ' '));
        let long = format!("{}@x.ru", "a".repeat(250));
        assert_eq!(bad_len(Email::parse(&long).unwrap_err()), 255);
        let max = format!("{}@x.ru", "a".repeat(249));
        assert!(Email::parse(&max).is_ok());
    }

    #[test]
    fn phone() {
        for s in [
            "+7 (912) 345-67-89",
            "89123456789",
            "+79123456789",
            "8-912-345-67-89",
            "79123456789",
        ] {
            assert_eq!(Phone::parse(s).unwrap().as_str(), "+79123456789", "{s}");
        }
        let tyumen = Phone::parse("8 (3452) 12-34-56").unwrap();
        assert_eq!(tyumen.as_str(), "+73452123456");
        assert_eq!(tyumen.formatted(), "+7 (345) 212-34-56");
        assert_eq!(
            Phone::parse("89123456789").unwrap().formatted(),
            "+7 (912) 345-67-89"
        );
        assert!(matches!(
            Phone::parse("+89123456789"),
            Err(IdError::BadFormat { .. })
        ));
        assert!(matches!(
            Phone::parse("59123456789"),
            Err(IdError::BadFormat { .. })
        ));
        assert_eq!(bad_len(Phone::parse("9123456789").unwrap_err()), 10);
        assert_eq!(bad_len(Phone::parse("+7912345678901").unwrap_err()), 13);
        assert_eq!(bad_char(Phone::parse("+7 912 abc").unwrap_err()), (8, 'a'));
        assert_eq!(
            bad_char(Phone::parse(" +7+9123456789").unwrap_err()),
            (4, '+')
        );
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let inn: Inn = serde_json::from_str("\"7707083893\"").unwrap();
        assert_eq!(serde_json::to_string(&inn).unwrap(), "\"7707083893\"");
        let snils: Snils = serde_json::from_str("\"112-233-445 95\"").unwrap();
        assert_eq!(serde_json::to_string(&snils).unwrap(), "\"11223344595\"");
        let phone: Phone = serde_json::from_str("\"8 912 345 67 89\"").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+79123456789\"");
        let err = serde_json::from_str::<Inn>("\"770708389\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("ИНН must have 10 or 12 digits, got 9"),
            "{err}"
        );
        assert!(serde_json::from_str::<Inn>("7707083893").is_err());
        let err = serde_json::from_str::<Uin>("\"18810177190001234563\"").unwrap_err();
        assert!(
            err.to_string().contains("УИН has a wrong check digit"),
            "{err}"
        );
        assert!(serde_json::from_str::<Email>("\"x\"").is_err());
        assert!(serde_json::from_str::<Kpp>("\"773601001\"").is_ok());
        assert!(serde_json::from_str::<Bik>("\"004525988\"").is_ok());
        assert!(serde_json::from_str::<Ogrn>("\"1027700132195\"").is_ok());
        assert!(serde_json::from_str::<AccountNumber>("\"40702810938000000001\"").is_ok());
    }

    #[test]
    fn from_str_and_display() {
        let ogrn: Ogrn = "304500116000157".parse().unwrap();
        assert_eq!(format!("{ogrn}"), "304500116000157");
        assert_eq!(
            format!("{:>10}", "773601001".parse::<Kpp>().unwrap()),
            " 773601001"
        );
        let e: Email = "a@B.ru".parse().unwrap();
        assert_eq!(e.as_ref(), "a@b.ru");
    }
}
