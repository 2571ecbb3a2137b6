//! Verification of ES256 tokens minted by a `LocalSigner`.
#![allow(clippy::unwrap_used)]

mod common;

use auth::{AuthError, MintRequest, Role, Verifier};
use common::{b64url, base_claims, hand_made, now, sign_raw, signer, verifier_for};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

#[test]
fn minted_token_verifies_and_yields_the_principal() {
    let (_dir, signer) = signer("mint");
    let mut request = MintRequest::new("esia-1000", [Role::Parent, Role::ClassTeacher]);
    request.schools = vec!["school-7".into()];
    request.classes = vec!["7a".into()];
    request.children = vec!["pupil-1".into(), "pupil-2".into()];
    request.name = Some("Иванова Мария".into());
    request.audience = Some("portal".into());
    let token = signer.mint(&request).unwrap();

    let verifier = Verifier::from_jwks(
        signer.jwks(),
        Some("portal-local".into()),
        Some("portal".into()),
        60,
    );
    let principal = verifier.verify(&token).unwrap();
    assert_eq!(principal.subject, "esia-1000");
    assert_eq!(principal.name.as_deref(), Some("Иванова Мария"));
    assert!(principal.has_role(Role::Parent) && principal.has_role(Role::ClassTeacher));
    assert!(!principal.has_role(Role::OperatorAdmin));
    assert!(principal.may_see_school("school-7") && !principal.may_see_school("school-8"));
    assert!(principal.may_see_class("7a"));
    assert!(principal.may_see_child("pupil-2") && !principal.may_see_child("pupil-3"));
    assert!(!principal.may_act_for_organizer("school-7"));
    assert!(principal.require_any(&[Role::MealAdmin]).is_err());
}

#[test]
fn expired_token_is_rejected_but_leeway_applies() {
    let (_dir, signer) = signer("expired");
    let mut request = MintRequest::new("u", [Role::Parent]);
    request.ttl = chrono::Duration::hours(-1);
    let token = signer.mint(&request).unwrap();
    assert_eq!(
        verifier_for(&signer).verify(&token),
        Err(AuthError::Expired)
    );

    request.ttl = chrono::Duration::seconds(-30);
    let recent = signer.mint(&request).unwrap();
    assert!(verifier_for(&signer).verify(&recent).is_ok());
    let strict = Verifier::from_jwks(signer.jwks(), None, None, 0);
    assert_eq!(strict.verify(&recent), Err(AuthError::Expired));
}

#[test]
fn future_nbf_is_not_yet_valid() {
    let (dir, signer) = signer("nbf");
    let mut claims = base_claims();
    claims["nbf"] = json!(now() + 300);
    let token = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert_eq!(
        verifier_for(&signer).verify(&token),
        Err(AuthError::NotYetValid)
    );

    claims["nbf"] = json!(now() + 10);
    let within_leeway = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert!(verifier_for(&signer).verify(&within_leeway).is_ok());
}

#[test]
fn token_from_another_key_is_rejected() {
    let (_dir_a, a) = signer("key-a");
    let (dir_b, b) = signer("key-b");
    assert_ne!(a.kid(), b.kid());

    let token = b.mint(&MintRequest::new("u", [Role::Parent])).unwrap();
    assert_eq!(
        verifier_for(&a).verify(&token),
        Err(AuthError::UnknownKey(b.kid().to_owned()))
    );

    // Signed by B but claiming A's key id.
    let forged = sign_raw(dir_b.path(), Some(a.kid()), &base_claims());
    assert_eq!(
        verifier_for(&a).verify(&forged),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn tampered_payload_breaks_the_signature() {
    let (_dir, signer) = signer("tamper");
    let mut request = MintRequest::new("u", [Role::Parent]);
    request.schools = vec!["school-1".into()];
    let token = signer.mint(&request).unwrap();
    let verifier = verifier_for(&signer);
    assert!(verifier.verify(&token).is_ok());

    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = base_claims();
    claims["roles"] = json!(["operator_admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(verifier.verify(&forged), Err(AuthError::BadSignature));

    // One changed character in the signature (not the last, whose low bits are padding).
    let mut sig = parts[2].to_owned();
    let replacement = if sig.as_bytes()[10] == b'A' { "B" } else { "A" };
    sig.replace_range(10..11, replacement);
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], sig);
    assert_eq!(verifier.verify(&bad_sig), Err(AuthError::BadSignature));
}

#[test]
fn alg_none_is_rejected() {
    let (_dir, signer) = signer("none");
    let verifier = verifier_for(&signer);
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": signer.kid()}),
        json!({"alg": "None"}),
    ] {
        for signature in ["", "AAAA"] {
            let token = hand_made(&header, &base_claims(), signature);
            let result = verifier.verify(&token);
            assert!(
                matches!(result, Err(AuthError::Malformed(_))),
                "{header}: {result:?}"
            );
        }
    }
}

#[test]
fn hmac_tokens_are_rejected() {
    let (_dir, signer) = signer("hmac");
    let verifier = verifier_for(&signer);
    // Including the classic confusion attack: the public key used as an HMAC secret.
    let public_json = serde_json::to_vec(&signer.jwks().keys[0]).unwrap();
    for secret in [b"secret".as_slice(), public_json.as_slice()] {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some(signer.kid().to_owned());
            let token = encode(&header, &base_claims(), &EncodingKey::from_secret(secret)).unwrap();
            let result = verifier.verify(&token);
            assert!(
                matches!(&result, Err(AuthError::Malformed(m)) if m.contains("not accepted")),
                "{result:?}"
            );
        }
    }
}

#[test]
fn issuer_is_checked_when_configured() {
    let (_dir, signer) = signer("iss");
    let mut request = MintRequest::new("u", [Role::Parent]);
    request.issuer = "https://esia.gosuslugi.ru/".into();
    let token = signer.mint(&request).unwrap();
    assert_eq!(
        verifier_for(&signer).verify(&token),
        Err(AuthError::WrongIssuer)
    );
    let any_issuer = Verifier::from_jwks(signer.jwks(), None, None, 60);
    assert!(any_issuer.verify(&token).is_ok());
}

#[test]
fn audience_is_checked_when_configured() {
    let (dir, signer) = signer("aud");
    let verifier = Verifier::from_jwks(signer.jwks(), None, Some("portal".into()), 60);

    let mut request = MintRequest::new("u", [Role::Parent]);
    request.audience = Some("another-service".into());
    let wrong = signer.mint(&request).unwrap();
    assert_eq!(verifier.verify(&wrong), Err(AuthError::WrongAudience));

    request.audience = None;
    let missing = signer.mint(&request).unwrap();
    assert_eq!(verifier.verify(&missing), Err(AuthError::WrongAudience));

    let mut claims = base_claims();
    claims["aud"] = json!(["meals", "portal"]);
    let listed = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert!(verifier.verify(&listed).is_ok());
    claims["aud"] = json!(["meals"]);
    let unlisted = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert_eq!(verifier.verify(&unlisted), Err(AuthError::WrongAudience));

    // Without a configured audience, a token's `aud` is not checked.
    let unchecked = Verifier::from_jwks(signer.jwks(), None, None, 60);
    assert!(unchecked.verify(&wrong).is_ok());
}

#[test]
fn missing_or_empty_roles_give_no_roles() {
    let (dir, signer) = signer("roles");
    let verifier = verifier_for(&signer);
    let mut claims = base_claims();
    claims.as_object_mut().unwrap().remove("roles");
    let missing = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert_eq!(verifier.verify(&missing), Err(AuthError::NoRoles));

    claims["roles"] = json!([]);
    let empty = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert_eq!(verifier.verify(&empty), Err(AuthError::NoRoles));

    assert_eq!(
        signer.mint(&MintRequest::new("u", [])),
        Err(AuthError::NoRoles)
    );
}

#[test]
fn unknown_role_is_malformed() {
    let (dir, signer) = signer("badrole");
    let mut claims = base_claims();
    claims["roles"] = json!(["parent", "superuser"]);
    let token = sign_raw(dir.path(), Some(signer.kid()), &claims);
    let result = verifier_for(&signer).verify(&token);
    assert!(
        matches!(&result, Err(AuthError::Malformed(m)) if m.contains("superuser")),
        "{result:?}"
    );
}

#[test]
fn wrongly_typed_or_missing_claims_are_malformed() {
    let (dir, signer) = signer("shape");
    let verifier = verifier_for(&signer);
    for (claim, value) in [
        ("exp", json!("tomorrow")),
        ("sub", json!(42)),
        ("schools", json!("school-1")),
    ] {
        let mut claims = base_claims();
        claims[claim] = value;
        let token = sign_raw(dir.path(), Some(signer.kid()), &claims);
        assert!(
            matches!(verifier.verify(&token), Err(AuthError::Malformed(_))),
            "{claim}"
        );
    }
    let mut claims = base_claims();
    claims.as_object_mut().unwrap().remove("exp");
    let token = sign_raw(dir.path(), Some(signer.kid()), &claims);
    assert!(matches!(
        verifier.verify(&token),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn token_without_kid_uses_the_only_key() {
    let (dir, signer) = signer("nokid");
    let token = sign_raw(dir.path(), None, &base_claims());
    let principal = verifier_for(&signer).verify(&token).unwrap();
    assert_eq!(principal.subject, "user-1");
}

#[test]
fn empty_and_garbage_tokens() {
    let (_dir, signer) = signer("garbage");
    let verifier = verifier_for(&signer);
    assert_eq!(verifier.verify(""), Err(AuthError::MissingToken));
    assert_eq!(verifier.verify("   "), Err(AuthError::MissingToken));
    for garbage in ["abc", "a.b", "a.b.c", "a.b.c.d", "....", "Bearer x.y.z"] {
        let result = verifier.verify(garbage);
        assert!(
            matches!(result, Err(AuthError::Malformed(_))),
            "{garbage}: {result:?}"
        );
    }
}

#[test]
fn principal_carries_every_scope_claim() {
    let (_dir, signer) = signer("scopes");
    let mut request = MintRequest::new("is-1", [Role::InformationSystem, Role::Bank]);
    request.organizers = vec!["org-1".into()];
    request.municipalities = vec!["mun-1".into()];
    request.banks = vec!["bank-1".into()];
    request.participant = Some("IS-0042".into());
    let token = signer.mint(&request).unwrap();
    let principal = verifier_for(&signer).verify(&token).unwrap();
    assert!(principal.may_act_for_organizer("org-1"));
    assert!(principal.may_see_municipality("mun-1"));
    assert!(principal.is_bank("bank-1") && !principal.is_bank("bank-2"));
    assert!(principal.is_participant("IS-0042"));
    assert!(!principal.may_see_school("org-1"));
}

#[test]
fn operator_admin_token_passes_scope_checks() {
    let (_dir, signer) = signer("operator");
    let token = signer
        .mint(&MintRequest::new("op", [Role::OperatorAdmin]))
        .unwrap();
    let principal = verifier_for(&signer).verify(&token).unwrap();
    assert!(principal.may_see_school("any-school"));
    assert!(principal.may_see_child("any-child"));
    assert!(principal.is_bank("any-bank"));
}

#[test]
fn verifier_is_shareable_across_tasks() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let (_dir, signer) = signer("send");
    let verifier = verifier_for(&signer);
    assert_send_sync(&verifier);
    let future = verifier.verify_refreshing("x");
    assert_send(&future);
}
