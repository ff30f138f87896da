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

/// An identity provider's JWKS endpoint on loopback: it answers with its
/// key set, or — while `down` — holds each request for a while, then fails.
struct FlakyJwks {
    url: String,
    down: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyJwks {
    async fn start(jwks: String) -> FlakyJwks {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (d, r) = (down.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (d, r, jwks) = (d.clone(), r.clone(), jwks.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let answer = if d.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                    } else {
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}", jwks.len())
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        FlakyJwks { url, down, requests }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_outage_neither_stops_nor_serialises_authentication() {
    let idp = DevIdentityProvider::generate();
    let stranger = DevIdentityProvider::generate();
    let provider = FlakyJwks::start(idp.jwks()).await;
    let settings = JwtSettings {
        jwks: JwksSource::Url(provider.url.clone()),
        refetch_after: Duration::from_millis(400),
        refresh_after: Duration::from_millis(300),
        max_stale: Duration::from_millis(2500),
        ..idp.settings()
    };
    let verifier = Arc::new(JwtVerifier::new(settings, Arc::new(SystemClock)).await.expect("loads"));
    assert_eq!(provider.requests(), 1);
    let token = idp.token(&DevClaims::caseworker("c", "12345678"));

    // The provider goes down; the keys age past their refresh.
    provider.set_down(true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let checks: Vec<_> = (0..20)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for check in checks {
        assert!(matches!(check.await.expect("task"), Ok(TokenSubject::Person(_))), "the cached keys verify");
    }
    assert!(started.elapsed() < Duration::from_millis(1000), "nobody waited for the hanging fetch");
    let asked = std::time::Instant::now();
    while provider.requests() < 2 && asked.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(provider.requests(), 2, "one refresh in flight for twenty checks");

    // Unknown keys while it is down: no flood of fetches.
    for _ in 0..10 {
        let unknown = verifier.verify(&stranger.token(&DevClaims::caseworker("c", "12345678"))).await;
        assert!(matches!(unknown, Err(TokenError::UnknownKey(_))), "{unknown:?}");
    }
    assert!(provider.requests() <= 4, "fetches are rate-limited: {}", provider.requests());

    // Past the stale period the cached keys are no longer trusted.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let refused = verifier.verify(&token).await;
    assert!(matches!(refused, Err(TokenError::Keys(_))), "{refused:?}");

    // The provider is back: a check after the fetch in flight and the rate limit fetches and verifies.
    provider.set_down(false);
    let back = std::time::Instant::now();
    while !matches!(verifier.verify(&token).await, Ok(TokenSubject::Person(_))) {
        assert!(back.elapsed() < Duration::from_secs(5), "the keys are fetched again once the provider answers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
