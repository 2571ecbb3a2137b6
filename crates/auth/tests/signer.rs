//! The local signing key store.
#![allow(clippy::unwrap_used)]

mod common;

use auth::{
    AuthError, JwkSet, LocalSigner, MintRequest, Role, Verifier, VerifierConfig, JWKS_FILE,
    SIGNING_KEY_FILE,
};
use common::{verifier_for, TempDir};

#[test]
fn load_or_create_twice_returns_the_same_key() {
    let dir = TempDir::new("twice");
    let first = LocalSigner::load_or_create(dir.path()).unwrap();
    let token = first
        .mint(&MintRequest::new("u", [Role::MealAdmin]))
        .unwrap();

    let second = LocalSigner::load_or_create(dir.path()).unwrap();
    assert_eq!(first.kid(), second.kid());
    assert_eq!(first.jwks(), second.jwks());
    let principal = verifier_for(&second).verify(&token).unwrap();
    assert!(principal.has_role(Role::MealAdmin));
}

#[test]
fn files_have_the_expected_shape() {
    let dir = TempDir::new("files");
    let signer = LocalSigner::load_or_create(dir.path()).unwrap();

    let pem = std::fs::read_to_string(dir.path().join(SIGNING_KEY_FILE)).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");

    let jwks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(JWKS_FILE)).unwrap()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], signer.kid());
    assert!(key.get("d").is_none(), "no private part in the public set");
    // RFC 7638 thumbprint: unpadded base64url of a SHA-256 digest.
    assert_eq!(signer.kid().len(), 43);

    // No temp files left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [JWKS_FILE, SIGNING_KEY_FILE]);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn missing_or_stale_jwks_is_rewritten_from_the_key() {
    let dir = TempDir::new("rewrite");
    let signer = LocalSigner::load_or_create(dir.path()).unwrap();
    let jwks_path = dir.path().join(JWKS_FILE);

    std::fs::remove_file(&jwks_path).unwrap();
    LocalSigner::load_or_create(dir.path()).unwrap();
    let restored: JwkSet = serde_json::from_slice(&std::fs::read(&jwks_path).unwrap()).unwrap();
    assert_eq!(restored, signer.jwks());

    std::fs::write(&jwks_path, r#"{"keys":[]}"#).unwrap();
    LocalSigner::load_or_create(dir.path()).unwrap();
    let restored: JwkSet = serde_json::from_slice(&std::fs::read(&jwks_path).unwrap()).unwrap();
    assert_eq!(restored, signer.jwks());
}

#[test]
fn creates_the_directory_and_refuses_a_corrupt_key() {
    let root = TempDir::new("nested");
    let nested = root.path().join("data").join("keys");
    LocalSigner::load_or_create(&nested).unwrap();
    assert!(nested.join(SIGNING_KEY_FILE).is_file());

    std::fs::write(nested.join(SIGNING_KEY_FILE), "not a key").unwrap();
    let err = LocalSigner::load_or_create(&nested).unwrap_err();
    assert!(matches!(err, AuthError::KeySource(_)), "{err:?}");
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn verifier_loads_the_written_jwks_file() {
    let dir = TempDir::new("jwks-file");
    let signer = LocalSigner::load_or_create(dir.path()).unwrap();
    let verifier = Verifier::load(VerifierConfig {
        jwks_path: Some(dir.path().join(JWKS_FILE)),
        issuer: Some("portal-local".into()),
        ..VerifierConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(verifier.key_ids(), [signer.kid().to_owned()]);

    let token = signer
        .mint(&MintRequest::new("u", [Role::MunicipalOfficer]))
        .unwrap();
    let principal = verifier.verify_refreshing(&token).await.unwrap();
    assert!(principal.has_role(Role::MunicipalOfficer));

    // A key set that does not exist is a key-source failure, not an auth failure.
    let missing = Verifier::load(VerifierConfig {
        jwks_path: Some(dir.path().join("nope.json")),
        ..VerifierConfig::default()
    })
    .await;
    assert!(matches!(missing, Err(AuthError::KeySource(_))));
}

#[test]
fn concurrent_first_use_agrees_on_one_key() {
    let dir = TempDir::new("race");
    let kids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    LocalSigner::load_or_create(dir.path())
                        .unwrap()
                        .kid()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(kids.windows(2).all(|pair| pair[0] == pair[1]), "{kids:?}");
    let on_disk = LocalSigner::load_or_create(dir.path()).unwrap();
    assert_eq!(on_disk.kid(), kids[0]);
}

#[test]
fn debug_output_hides_the_key() {
    let dir = TempDir::new("debug");
    let signer = LocalSigner::load_or_create(dir.path()).unwrap();
    let shown = format!("{signer:?}");
    assert!(shown.contains(signer.kid()));
    assert!(!shown.to_lowercase().contains("private"));
}
