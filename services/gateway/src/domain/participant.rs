//! A participant of the gateway as the operator registers it: validated once,
//! carried as this type after.

use primitives::{Email, Inn, Ogrn, Phone};
use serde::{Deserialize, Serialize};
use settings::Contour;

/// What kind of system a participant is; it decides which mapping it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An agency information system (ИС ведомства).
    Agency,
    /// A bank: maps to the bank code payments knows.
    Bank,
    /// A caterer's accounting system: maps to its organizer.
    Caterer,
    /// An electronic queue terminal.
    Terminal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agency => "agency",
            Kind::Bank => "bank",
            Kind::Caterer => "caterer",
            Kind::Terminal => "terminal",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Agency, Kind::Bank, Kind::Caterer, Kind::Terminal]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

pub fn parse_contour(s: &str) -> Option<Contour> {
    match s {
        "test" => Some(Contour::Test),
        "production" => Some(Contour::Production),
        _ => None,
    }
}

/// The «Технический специалист» of the connection form (Приложение 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// A participant as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub code: String,
    pub name: String,
    pub inn: Inn,
    pub ogrn: Ogrn,
    pub kind: Kind,
    pub contour: Contour,
    pub contact: Contact,
    pub address: String,
    pub certificates: Vec<String>,
    pub bank: Option<String>,
    pub organizer: Option<String>,
    pub active: bool,
}

/// The fields as an operator sends them.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub code: String,
    pub name: String,
    pub inn: String,
    pub ogrn: String,
    pub kind: String,
    pub contour: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub contact_email: String,
    pub address: String,
    pub certificates: Vec<String>,
    pub bank: Option<String>,
    pub organizer: Option<String>,
    pub active: bool,
}

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// A SMEV-style code: 3–32 Latin capitals, digits, `_` or `-`.
pub fn is_code(s: &str) -> bool {
    (3..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl Draft {
    /// Checks every field; the first wrong one is named.
    pub fn validate(self) -> Result<Participant, Invalid> {
        if !is_code(&self.code) {
            return Err(invalid(
                "code",
                "3–32 characters: Latin capitals, digits, _ or -",
            ));
        }
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(invalid("name", "1–255 characters"));
        }
        let inn = Inn::parse(&self.inn).map_err(|e| invalid("inn", e.to_string()))?;
        let ogrn = Ogrn::parse(&self.ogrn).map_err(|e| invalid("ogrn", e.to_string()))?;
        let kind = Kind::parse(&self.kind)
            .ok_or_else(|| invalid("kind", "one of agency, bank, caterer, terminal"))?;
        let contour =
            parse_contour(&self.contour).ok_or_else(|| invalid("contour", "test or production"))?;
        if self.contact_name.trim().is_empty() {
            return Err(invalid("contacts.name", "the technical specialist's name"));
        }
        let phone = Phone::parse(&self.contact_phone)
            .map_err(|e| invalid("contacts.phone", e.to_string()))?;
        let email = Email::parse(&self.contact_email)
            .map_err(|e| invalid("contacts.email", e.to_string()))?;
        let web = ["https://", "http://"];
        if !self.address.is_empty() && !web.iter().any(|p| self.address.starts_with(p)) {
            return Err(invalid(
                "address",
                "an http(s) URL of the participant's service",
            ));
        }
        for c in &self.certificates {
            if !c.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "certificates",
                    "PEM certificates (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
        let bank = self.bank.filter(|b| !b.trim().is_empty());
        let organizer = self.organizer.filter(|o| !o.trim().is_empty());
        match kind {
            Kind::Bank if bank.is_none() => {
                return Err(invalid(
                    "bank",
                    "a bank participant names the bank code payments knows",
                ))
            }
            Kind::Caterer if organizer.is_none() => {
                return Err(invalid(
                    "organizer",
                    "a caterer participant names its organizer",
                ))
            }
            _ => {}
        }
        if kind != Kind::Bank && bank.is_some() {
            return Err(invalid("bank", "only a bank participant maps to a bank"));
        }
        if kind != Kind::Caterer && organizer.is_some() {
            return Err(invalid(
                "organizer",
                "only a caterer participant maps to an organizer",
            ));
        }
        Ok(Participant {
            code: self.code,
            name,
            inn,
            ogrn,
            kind,
            contour,
            contact: Contact {
                name: self.contact_name.trim().to_string(),
                phone: phone.as_str().to_string(),
                email: email.as_str().to_string(),
            },
            address: self.address,
            certificates: self.certificates,
            bank,
            organizer,
            active: self.active,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub fn bank() -> Draft {
        Draft {
            code: "BANK01".into(),
            name: "ПАО Банк".into(),
            inn: "7707083893".into(),
            ogrn: "1027700132195".into(),
            kind: "bank".into(),
            contour: "production".into(),
            contact_name: "Иванов Иван".into(),
            contact_phone: "+7 345 200-00-00".into(),
            contact_email: "it@bank.example".into(),
            bank: Some("B1".into()),
            active: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_bank_is_taken() {
        let p = bank().validate().unwrap();
        assert_eq!(p.kind, Kind::Bank);
        assert_eq!(p.bank.as_deref(), Some("B1"));
    }

    #[test]
    fn each_wrong_field_is_named() {
        let cases: Vec<(Draft, &str)> = vec![
            (
                Draft {
                    code: "b1".into(),
                    ..bank()
                },
                "code",
            ),
            (
                Draft {
                    inn: "7707083894".into(),
                    ..bank()
                },
                "inn",
            ),
            (
                Draft {
                    ogrn: "1027700132196".into(),
                    ..bank()
                },
                "ogrn",
            ),
            (
                Draft {
                    kind: "shop".into(),
                    ..bank()
                },
                "kind",
            ),
            (
                Draft {
                    contour: "staging".into(),
                    ..bank()
                },
                "contour",
            ),
            (
                Draft {
                    contact_email: "nobody".into(),
                    ..bank()
                },
                "contacts.email",
            ),
            (
                Draft {
                    bank: None,
                    ..bank()
                },
                "bank",
            ),
            (
                Draft {
                    kind: "agency".into(),
                    ..bank()
                },
                "bank",
            ),
            (
                Draft {
                    address: "ftp://x".into(),
                    ..bank()
                },
                "address",
            ),
            (
                Draft {
                    certificates: vec!["junk".into()],
                    ..bank()
                },
                "certificates",
            ),
        ];
        for (draft, field) in cases {
            assert_eq!(draft.validate().unwrap_err().field, field);
        }
    }
}
