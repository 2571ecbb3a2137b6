//! Keys fetched from a URL, served by a tiny hand-written HTTP server on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use auth::{AuthError, JwkSet, LocalSigner, MintRequest, Role, Verifier, VerifierConfig};
use common::signer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves whatever status and body are currently set, counting requests.
struct JwksServer {
    url: String,
    response: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let response = Arc::new(Mutex::new((200, body)));
        let hits = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (Arc::clone(&response), Arc::clone(&hits));
        // The task ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = shared.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        JwksServer {
            url,
            response,
            hits,
        }
    }

    fn serve(&self, status: u16, body: String) {
        *self.response.lock().unwrap() = (status, body);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn jwks_json(signers: &[&LocalSigner]) -> String {
    let keys = signers.iter().flat_map(|s| s.jwks().keys).collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

fn token(signer: &LocalSigner) -> String {
    signer
        .mint(&MintRequest::new("u", [Role::MealOrganizer]))
        .unwrap()
}

async fn load(url: &str) -> Result<Verifier, AuthError> {
    Verifier::load(VerifierConfig {
        jwks_url: Some(url.to_owned()),
        issuer: Some("portal-local".into()),
        ..VerifierConfig::default()
    })
    .await
}

#[tokio::test]
async fn load_fetches_and_a_new_kid_triggers_one_refetch() {
    let (_da, a) = signer("url-a");
    let (_db, b) = signer("url-b");
    let (_dc, c) = signer("url-c");
    let server = JwksServer::start(jwks_json(&[&a])).await;

    let verifier = load(&server.url).await.unwrap();
    assert_eq!(server.hits(), 1);
    assert_eq!(verifier.key_ids(), [a.kid().to_owned()]);
    assert!(verifier.verify(&token(&a)).is_ok());
    assert!(verifier.verify_refreshing(&token(&a)).await.is_ok());
    assert_eq!(server.hits(), 1, "known keys need no fetch");

    // The provider rotates: B is published next to A.
    server.serve(200, jwks_json(&[&a, &b]));
    let rotated = token(&b);
    assert_eq!(
        verifier.verify(&rotated),
        Err(AuthError::UnknownKey(b.kid().to_owned())),
        "plain verify never fetches"
    );
    let principal = verifier.verify_refreshing(&rotated).await.unwrap();
    assert!(principal.has_role(Role::MealOrganizer));
    assert_eq!(server.hits(), 2);
    assert!(verifier.verify(&rotated).is_ok(), "keys are cached");

    // Another unknown kid within the minute does not fetch again.
    assert_eq!(
        verifier.verify_refreshing(&token(&c)).await,
        Err(AuthError::UnknownKey(c.kid().to_owned()))
    );
    assert_eq!(server.hits(), 2);
    assert!(verifier.verify(&token(&a)).is_ok());
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let (_da, a) = signer("url-conc-a");
    let (_db, b) = signer("url-conc-b");
    let server = JwksServer::start(jwks_json(&[&a])).await;
    let verifier = Arc::new(load(&server.url).await.unwrap());
    server.serve(200, jwks_json(&[&a, &b]));

    let rotated = token(&b);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (verifier, rotated) = (Arc::clone(&verifier), rotated.clone());
            tokio::spawn(async move { verifier.verify_refreshing(&rotated).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn failing_source_is_a_key_source_error_and_old_keys_stay() {
    let (_da, a) = signer("url-fail-a");
    let (_db, b) = signer("url-fail-b");
    let server = JwksServer::start("oops".into()).await;

    let err = load(&server.url).await.unwrap_err();
    assert!(matches!(err, AuthError::KeySource(_)), "{err:?}");
    server.serve(500, "{}".into());
    let err = load(&server.url).await.unwrap_err();
    assert!(matches!(err, AuthError::KeySource(_)), "{err:?}");
    server.serve(200, r#"{"keys":[]}"#.into());
    let err = load(&server.url).await.unwrap_err();
    assert!(matches!(err, AuthError::KeySource(_)), "{err:?}");

    server.serve(200, jwks_json(&[&a]));
    let verifier = load(&server.url).await.unwrap();
    let hits = server.hits();
    server.serve(503, "{}".into());
    let result = verifier.verify_refreshing(&token(&b)).await;
    assert!(matches!(result, Err(AuthError::KeySource(_))), "{result:?}");
    assert_eq!(result.unwrap_err().status(), 503);
    assert_eq!(server.hits(), hits + 1);
    // Rate limited now: no second attempt, just the unknown key.
    assert_eq!(
        verifier.verify_refreshing(&token(&b)).await,
        Err(AuthError::UnknownKey(b.kid().to_owned()))
    );
    assert_eq!(server.hits(), hits + 1);
    assert!(verifier.verify(&token(&a)).is_ok(), "old keys still work");

    // An explicit refresh ignores the rate limit.
    server.serve(200, jwks_json(&[&a, &b]));
    verifier.refresh().await.unwrap();
    assert!(verifier.verify(&token(&b)).is_ok());
}
