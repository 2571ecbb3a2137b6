//! RS256 key sets, as published by ЕСИА-style identity providers.
#![allow(clippy::unwrap_used)]

mod common;

use auth::{AuthError, JwkSet, Role, Verifier};
use common::{base_claims, sign_raw, signer};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A throwaway 2048-bit RSA key made with `openssl genrsa 2048` for these tests only.
const RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEArbYehRpN9BqkMQ0DsaoubLJRiHz6HTYdQLGzpHLOQI+Prf9g
qaGEzsGqkht1w3eRagds9vChvK3Gt8KCK7evkMwwKKrxs/Ajrxs1UppFkSSNUQjK
9xph7cIQe+y3lg3BS5kXoRR32eRfLATf8pDu6GmxhF8CRIvp4xVjd/1OFd+RLiPZ
mDZC2h8U3kueWcULeXoMPlYdaF6XeTgPmvm4ERi+HMI4bFy3tWzIGgX3eg9iQYVb
1U7Y8LDh9bLIFVsMNu9mb3ocZeTtSZFIcdfKxDSumYkpWFpczdEMd8EgFf/M0bus
TwZNDbZD6XDT+HJJt4UYOk28WTSRYvM05xtSGQIDAQABAoIBADFunWHAGgXIXQfu
TapNpNdeqQ//jIcqgomJ5/Z4ixPZJohbn0y2P148w0a/lLPyfwleopXk5QmVo/Jf
4f4Bz+6TBHNWLeDICceHJRXj+77xWVuBdox5z/tCGcHCG34SXPqfzpcShYaWU7Tp
kDbtImc1yIPEK5eI/x4VVJBtHz7evoHdf26q7P8SMu4EWyj3SY40E/WFlMGOXjsP
c4wLzgBCTK4eAcXrrz4JqO75DfGtGNz9UJ+Qxp7dZcY6xdSUkwYR+Qi+W9DwFaPe
z0IMM6RVIz9iBkDm4tCsqihVWyNGrd6MorzTMrtIXZu7z8fmCI+Tii3RrDfdItk8
KqzwRq8CgYEA7gHX/PnuQYxj6cIT6zcLcwVD9Ga4QTjc9Wa1GJk6RMM2IxmZu6WR
lf8ABOmru/jqjhrKgpcOha0WYRkjpYqHlJr/ZahG+dnChwPDY1lM6hcc5SDjUvPk
yVjYyypLJYRJj3Hy+GQzoB8/mc1I7kB7RJcSlPfmgKihzZFsvnN5MJ8CgYEAutf1
SDbioS5VwsagWe1JbsIy64RF7baEBIQNHGtn6ctGwELuSWzXdMqqoUnX8BCoe6OU
nhv5/+7VLxoy/EDKkFtU9McgLyNE3eA4DpumFO8b0JMdzUrglMYcGu+W1aRZQi6r
RnWd2oTR5SChxYFqrvtloiWZcFa7kLOC2o+DakcCgYEA2M4/JQe6nGU5gm+zW1ma
CV2riE+l2mvlA3pazxyNcqPshc7FNqTc2KkgKFl/gcx+RZJsFMdriCOitjKDQUHO
vXTv33eJqAFQbVLlQnPPV5JUVPg/e4oGR8+yNGfDalp188BWFySXzm2Irx7MJ5P/
dfy0BZVImLyEH9EwINDpfXsCgYEAupzXLrkiwTk2DsOzhB2rKiRsFy6VaUbRtHDv
Z2Me9jNBBuXSeSNsTgndQhouwmbg4BwRY5ktqKEx60mPgsJzjpqpz5DSZEIlljVL
x8tNpbrrXPaS3WfbxrvXdk+1psvvGlriVg1DC+18dgyRhmIr23jbmYdUKQ93Zp7k
IscTyiECgYEAj3AgotWQ2jHGT6loGrDsJiMDT51s+twXTupeJLgMgqN4ekXF4msW
0JtpUZ2H3gzp/PbOcI7rg87+22pl0UhlfeP5sbTMdBfYY92/LwgV7Bw7sTeva9Sh
aHkMgWentN9jUKCbOj3D91VsgxZ5wTckdTB2nZIVg4uRdVaN+qUQeMA=
-----END RSA PRIVATE KEY-----";

/// Its modulus and exponent, base64url (from `openssl rsa -pubin -text -noout`).
const RSA_N: &str = concat!(
    "rbYehRpN9BqkMQ0DsaoubLJRiHz6HTYdQLGzpHLOQI-Prf9gqaGEzsGqkht1w3eR",
    "agds9vChvK3Gt8KCK7evkMwwKKrxs_Ajrxs1UppFkSSNUQjK9xph7cIQe-y3lg3B",
    "S5kXoRR32eRfLATf8pDu6GmxhF8CRIvp4xVjd_1OFd-RLiPZmDZC2h8U3kueWcUL",
    "eXoMPlYdaF6XeTgPmvm4ERi-HMI4bFy3tWzIGgX3eg9iQYVb1U7Y8LDh9bLIFVsM",
    "Nu9mb3ocZeTtSZFIcdfKxDSumYkpWFpczdEMd8EgFf_M0busTwZNDbZD6XDT-HJJ",
    "t4UYOk28WTSRYvM05xtSGQ",
);
const RSA_E: &str = "AQAB";

fn rsa_jwk(kid: Option<&str>) -> Value {
    let mut jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "n": RSA_N, "e": RSA_E});
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

fn set(keys: Vec<Value>) -> JwkSet {
    serde_json::from_value(json!({ "keys": keys })).unwrap()
}

fn sign_rsa(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

#[test]
fn rs256_token_verifies_against_an_rsa_jwk() {
    let verifier = Verifier::from_jwks(set(vec![rsa_jwk(Some("esia-2024"))]), None, None, 60);
    assert_eq!(verifier.key_ids(), ["esia-2024"]);
    let mut claims = base_claims();
    claims["roles"] = json!(["municipal_officer"]);
    claims["municipalities"] = json!(["tyumen"]);
    claims["aud"] = "portal".into();
    let token = sign_rsa(Algorithm::RS256, Some("esia-2024"), &claims);
    let principal = verifier.verify(&token).unwrap();
    assert!(principal.has_role(Role::MunicipalOfficer));
    assert!(principal.may_see_municipality("tyumen"));

    // Without kid the only RSA key is used.
    let no_kid = sign_rsa(Algorithm::RS256, None, &claims);
    assert!(verifier.verify(&no_kid).is_ok());
}

#[test]
fn other_rsa_algorithms_are_rejected() {
    let verifier = Verifier::from_jwks(set(vec![rsa_jwk(Some("k"))]), None, None, 60);
    for alg in [Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        let token = sign_rsa(alg, Some("k"), &base_claims());
        assert!(
            matches!(verifier.verify(&token), Err(AuthError::Malformed(_))),
            "{alg:?}"
        );
    }
}

#[test]
fn algorithm_must_match_the_key_family() {
    let (dir, ec) = signer("mixed");
    let mut keys = vec![rsa_jwk(Some("rsa-1"))];
    keys.push(serde_json::to_value(&ec.jwks().keys[0]).unwrap());
    let verifier = Verifier::from_jwks(set(keys), None, None, 60);
    assert_eq!(verifier.key_count(), 2);

    // ES256 signature presented under the RSA key's id.
    let confused = sign_raw(dir.path(), Some("rsa-1"), &base_claims());
    let result = verifier.verify(&confused);
    assert!(
        matches!(&result, Err(AuthError::Malformed(m)) if m.contains("does not match")),
        "{result:?}"
    );

    // RS256 signature presented under the EC key's id.
    let confused = sign_rsa(Algorithm::RS256, Some(ec.kid()), &base_claims());
    assert!(matches!(
        verifier.verify(&confused),
        Err(AuthError::Malformed(_))
    ));

    // Without kid, each algorithm finds the single key of its family.
    assert!(verifier
        .verify(&sign_raw(dir.path(), None, &base_claims()))
        .is_ok());
    assert!(verifier
        .verify(&sign_rsa(Algorithm::RS256, None, &base_claims()))
        .is_ok());
}

#[test]
fn ambiguous_kidless_token_is_refused() {
    let verifier = Verifier::from_jwks(
        set(vec![rsa_jwk(Some("a")), rsa_jwk(Some("b"))]),
        None,
        None,
        60,
    );
    let token = sign_rsa(Algorithm::RS256, None, &base_claims());
    assert!(matches!(
        verifier.verify(&token),
        Err(AuthError::Malformed(_))
    ));
    let token = sign_rsa(Algorithm::RS256, Some("b"), &base_claims());
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn unusable_keys_in_the_set_are_ignored() {
    let keys = vec![
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        json!({"kty": "RSA", "use": "enc", "n": RSA_N, "e": RSA_E, "kid": "enc"}),
        json!({"kty": "RSA", "alg": "RS512", "n": RSA_N, "e": RSA_E, "kid": "rs512"}),
        rsa_jwk(Some("good")),
    ];
    let verifier = Verifier::from_jwks(set(keys), None, None, 60);
    assert_eq!(verifier.key_ids(), ["good"]);
    let token = sign_rsa(Algorithm::RS256, Some("enc"), &base_claims());
    assert_eq!(
        verifier.verify(&token),
        Err(AuthError::UnknownKey("enc".into()))
    );

    let empty = Verifier::from_jwks(set(vec![]), None, None, 60);
    assert_eq!(empty.key_count(), 0);
    let token = sign_rsa(Algorithm::RS256, None, &base_claims());
    assert_eq!(
        empty.verify(&token),
        Err(AuthError::UnknownKey(String::new()))
    );
}
