//! The development provider's tokens against the gateway's verifier: a
//! rotated key is fetched when a token names it, and expiry and not-before
//! are judged by the gateway's clock.

use std::sync::Arc;
use std::time::Duration;

use bro_dev::{DevClaims, DevIdentityProvider};
use bro_server::access::jwt::{JwksSource, JwtSettings, JwtVerifier, TokenError, TokenSubject};
use bro_server::clock::{Clock, FixedClock, SystemClock};

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bro-jwks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let dir = tempfile_dir();
    let old = DevIdentityProvider::generate();
    let new = DevIdentityProvider::generate();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, old.jwks()).expect("write");
    let settings =
        JwtSettings { jwks: JwksSource::File(jwks.clone()), refetch_after: Duration::ZERO, ..old.settings() };
    let verifier = JwtVerifier::new(settings, Arc::new(SystemClock)).await.expect("loads");
    let claims = DevClaims::caseworker("c", "12345678");
    assert!(matches!(verifier.verify(&old.token(&claims)).await, Ok(TokenSubject::Person(_))));
    assert!(matches!(verifier.verify(&new.token(&claims)).await, Err(TokenError::UnknownKey(_))));
    // The provider publishes the new key beside the old one: both verify, without a restart.
    let both: serde_json::Value = serde_json::json!({"keys": [
        serde_json::from_str::<serde_json::Value>(&old.jwks()).expect("json")["keys"][0],
        serde_json::from_str::<serde_json::Value>(&new.jwks()).expect("json")["keys"][0],
    ]});
    std::fs::write(&jwks, both.to_string()).expect("write");
    assert!(matches!(verifier.verify(&new.token(&claims)).await, Ok(TokenSubject::Person(_))));
    assert!(matches!(verifier.verify(&old.token(&claims)).await, Ok(TokenSubject::Person(_))));
    // A key set that cannot be read keeps the cached keys.
    std::fs::write(&jwks, "not json").expect("write");
    assert!(matches!(verifier.verify(&new.token(&claims)).await, Ok(TokenSubject::Person(_))));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn expiry_and_not_before_are_judged_by_the_gateways_clock() {
    let issued_at = SystemClock.now();
    let idp = DevIdentityProvider::generate().with_clock(Arc::new(FixedClock(issued_at)));
    let claims = DevClaims { valid_for: Duration::from_secs(600), ..DevClaims::caseworker("c", "12345678") };
    let token = idp.token(&claims);
    let at = |offset_secs: i64| -> Arc<dyn Clock> {
        Arc::new(FixedClock(issued_at + chrono::Duration::seconds(offset_secs)))
    };
    // The settings allow 30 s of skew either way.
    for (offset, expected) in [(-31, "not yet valid"), (-29, "valid"), (629, "valid"), (631, "expired")] {
        let verifier = JwtVerifier::new(idp.settings(), at(offset)).await.expect("loads");
        let verdict = match verifier.verify(&token).await {
            Ok(_) => "valid",
            Err(TokenError::NotYetValid) => "not yet valid",
            Err(TokenError::Expired) => "expired",
            Err(e) => panic!("unexpected refusal: {e}"),
        };
        assert_eq!(verdict, expected, "{offset} s after issue");
    }
}
