//! The token payload.

use serde::{Deserialize, Serialize};

use crate::Role;

/// The `aud` claim: one audience or several (both forms occur in OIDC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "portal"`
    One(String),
    /// `"aud": ["portal", "meals"]`
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is (one of) the token's audience(s).
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Token claims in the shape of ЕСИА (ESIA, the federal Unified Identification
/// and Authentication System) and OIDC tokens, plus the portal's role and scope
/// claims.
///
/// Scope lists name the objects the caller may act on; they default to empty,
/// and an empty list grants nothing (see [`crate::Principal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the person's or system's stable id at the issuer.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience; optional in the payload, but required when the verifier is
    /// configured with an audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Roles; absent is treated like empty, and either is rejected by the verifier.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// School ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schools: Vec<String>,
    /// Class ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Meal organizer (caterer) ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizers: Vec<String>,
    /// Municipality ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub municipalities: Vec<String>,
    /// Bank ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banks: Vec<String>,
    /// Student account ids a parent may see. The back end also checks its own
    /// parent-to-child links; this claim alone is not enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// Participant code of an external information system (ИС, information system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_single_and_array_audience_and_defaults_scopes() {
        let one: Claims = serde_json::from_str(
            r#"{"sub":"s","iss":"i","aud":"portal","exp":2,"iat":1,"roles":["parent"]}"#,
        )
        .unwrap();
        assert_eq!(one.aud, Some(Audience::One("portal".into())));
        assert!(one.schools.is_empty() && one.children.is_empty());
        assert_eq!(one.participant, None);

        let many: Claims = serde_json::from_str(
            r#"{"sub":"s","iss":"i","aud":["a","portal"],"exp":2,"iat":1,"roles":[]}"#,
        )
        .unwrap();
        assert!(many.aud.as_ref().unwrap().contains("portal"));
        assert!(!many.aud.as_ref().unwrap().contains("other"));
    }

    #[test]
    fn unknown_role_fails_to_parse() {
        let err = serde_json::from_str::<Claims>(
            r#"{"sub":"s","iss":"i","exp":2,"iat":1,"roles":["root"]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
    }
}
