//! Bearer tokens from the municipal identity provider: the signature is
//! checked against a JWKS (a file or an `https://` URL, cached, fetched again
//! when a token names a key it does not hold, so keys can rotate), then the
//! issuer, audience, and — by the gateway's [`Clock`] — expiry and
//! not-before; the claims give the subject, the municipality (CVR), the roles
//! and the NSIS assurance level. (How old the cached key set is, is measured
//! on the monotonic clock, so a clock stepping back cannot stop refetches.)
//!
//! An identity provider that is down or slow does not stop authentication:
//! a key set older than `refresh_after` is refreshed in the background while
//! the cached keys keep verifying, for at most `max_stale` more; fetches are
//! single-flight (one at a time, whoever asks) and at most one per
//! `refetch_after`; no verification waits for a fetch unless its token names
//! a key the cache does not hold.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::{Assurance, Person, Role};
use crate::clock::{Clock, Stopwatch};

/// Where the identity provider's public keys are.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A JWKS file, read again when a token names an unknown key.
    File(PathBuf),
    /// The provider's `jwks_uri` (`https://…`; `http://` only on loopback).
    Url(String),
    /// A JWKS document held in memory (development identities).
    Inline(String),
}

/// Claim names; the defaults are those of the Danish NSIS/OIDC profile.
#[derive(Clone, Debug)]
pub struct ClaimNames {
    /// The employing municipality's CVR number.
    pub municipality: String,
    /// The roles (a list of strings, or one space-separated string).
    pub roles: String,
    /// The NSIS assurance level.
    pub assurance: String,
    /// A system's client id (client-credentials tokens).
    pub client_id: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            municipality: "https://data.gov.dk/model/core/eid/professional/cvr".into(),
            roles: "roles".into(),
            assurance: "https://data.gov.dk/concept/core/nsis/loa".into(),
            client_id: "client_id".into(),
        }
    }
}

/// How tokens are checked.
#[derive(Clone, Debug)]
pub struct JwtSettings {
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud` (bro's client id at the provider).
    pub audience: String,
    /// The keys.
    pub jwks: JwksSource,
    /// Claim names.
    pub claims: ClaimNames,
    /// Allowed clock skew for `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two fetches of the key set (prompted by unknown
    /// keys or by age, failed or not).
    pub refetch_after: Duration,
    /// Age after which the key set is refreshed (in the background).
    pub refresh_after: Duration,
    /// How long past `refresh_after` cached keys keep verifying while no
    /// refresh succeeds; then tokens are refused until one does.
    pub max_stale: Duration,
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSubject {
    /// A person.
    Person(Person),
    /// A system's client credentials: its client id.
    Client(String),
}

/// Why a token was refused (never contains the token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all.
    #[error("the bearer token is not a JWT: {0}")]
    Malformed(String),
    /// `alg` is none or not an accepted signature algorithm.
    #[error("the token's algorithm {0:?} is not accepted (use RS256, PS256, ES256, ES384 or EdDSA)")]
    Algorithm(String),
    /// The JWKS holds no key with the token's `kid`.
    #[error("the token is signed with key {0:?}, which the identity provider's key set does not hold")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Expired.
    #[error("the token has expired")]
    Expired,
    /// Not yet valid.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// Wrong issuer.
    #[error("the token was issued by another issuer than the configured one")]
    Issuer,
    /// Wrong audience.
    #[error("the token is meant for another audience than bro")]
    Audience,
    /// Claims missing or wrong.
    #[error("the token's claims are unusable: {0}")]
    Claims(String),
    /// The key set could not be read.
    #[error("the identity provider's key set cannot be read: {0}")]
    Keys(String),
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// The default least time between two fetches of the key set.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// The default age after which the key set is refreshed.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// The default time cached keys outlive a failing refresh.
pub const MAX_STALE: Duration = Duration::from_secs(12 * 3600);
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct KeyCache {
    keys: JwkSet,
    /// Since the keys were fetched (monotonic: a clock stepping back must not stop refetches).
    fetched: Stopwatch,
    /// Since the last fetch was tried, succeeded or not (the rate limit).
    tried: Stopwatch,
}

/// The key set, shared with background refreshes.
#[derive(Clone)]
struct Keys {
    source: JwksSource,
    refetch_after: Duration,
    cache: Arc<RwLock<KeyCache>>,
    /// Held by the one fetch in flight.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl Keys {
    /// Fetches the key set unless one was tried within `refetch_after`;
    /// the caller holds `fetching`. The cache is locked only to swap it in.
    async fn fetch_now(&self) {
        if self.cache.read().await.tried.elapsed() < self.refetch_after {
            return;
        }
        let loaded = load(&self.source).await;
        // The limit counts from the end of an attempt: a slow provider is not asked again at once.
        let mut cache = self.cache.write().await;
        cache.tried = Stopwatch::start();
        match loaded {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = Stopwatch::start();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the identity provider's key set; keeping the cached one")
            }
        }
    }

    /// Starts a refresh in the background, unless one is in flight.
    fn refresh_in_background(&self) {
        let keys = self.clone();
        tokio::spawn(async move {
            if let Ok(_fetching) = keys.fetching.try_lock() {
                keys.fetch_now().await;
            }
        });
    }
}

/// Verifies bearer tokens.
pub struct JwtVerifier {
    settings: JwtSettings,
    clock: Arc<dyn Clock>,
    keys: Keys,
}

impl JwtVerifier {
    /// A verifier judging time by `clock`; the key set is loaded now so a bad
    /// configuration fails at start-up.
    pub async fn new(settings: JwtSettings, clock: Arc<dyn Clock>) -> Result<JwtVerifier, TokenError> {
        let loaded = load(&settings.jwks).await?;
        let cache = KeyCache { keys: loaded, fetched: Stopwatch::start(), tried: Stopwatch::start() };
        let keys = Keys {
            source: settings.jwks.clone(),
            refetch_after: settings.refetch_after,
            cache: Arc::new(RwLock::new(cache)),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        };
        Ok(JwtVerifier { settings, clock, keys })
    }

    /// The settings.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    async fn key(&self, kid: Option<&str>) -> Result<Jwk, TokenError> {
        let find = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(kid) => set.find(kid).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        let usable_for = self.settings.refresh_after + self.settings.max_stale;
        let (found, age) = {
            let cache = self.keys.cache.read().await;
            (find(&cache.keys), cache.fetched.elapsed())
        };
        if age >= self.settings.refresh_after {
            self.keys.refresh_in_background();
        }
        match found {
            Some(key) if age < usable_for => return Ok(key),
            _ => {}
        }
        // An unknown key (or keys too old to trust): wait for the one fetch, or make it.
        {
            let _fetching = self.keys.fetching.lock().await;
            self.keys.fetch_now().await;
        }
        let cache = self.keys.cache.read().await;
        if cache.fetched.elapsed() >= usable_for {
            return Err(TokenError::Keys(format!(
                "the cached keys are older than {} s and the identity provider does not answer",
                usable_for.as_secs()
            )));
        }
        find(&cache.keys).ok_or_else(|| TokenError::UnknownKey(kid.unwrap_or("(none)").chars().take(64).collect()))
    }

    /// Verifies a token and reads its subject.
    pub async fn verify(&self, token: &str) -> Result<TokenSubject, TokenError> {
        self.verify_until(token).await.map(|(subject, _)| subject)
    }

    /// Verifies a token: its subject, and when it stops being accepted
    /// (`exp` and the leeway; a stream opened with it ends then).
    pub async fn verify_until(&self, token: &str) -> Result<(TokenSubject, bro_domain::Timestamp), TokenError> {
        let header_alg = raw_header_alg(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Algorithm(header_alg.clone()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(TokenError::Algorithm(header_alg));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if let Some(key_alg) = jwk.common.key_algorithm
            && format!("{key_alg:?}") != format!("{:?}", header.alg)
        {
            return Err(TokenError::Algorithm(header_alg));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| TokenError::Keys(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry and not-before are judged below, by the gateway's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidSignature => TokenError::Signature,
                K::InvalidAlgorithm => TokenError::Algorithm(header_alg.clone()),
                K::MissingRequiredClaim(c) => TokenError::Claims(format!("{c} is missing")),
                _ => TokenError::Malformed(e.to_string()),
            }
        })?;
        let until = self.check_validity(&data.claims)?;
        Ok((self.subject(&data.claims)?, until))
    }

    /// `exp` and `nbf` against the clock, with the configured leeway (as
    /// RFC 7519: expired once `now > exp + leeway`, valid from `nbf - leeway`).
    fn check_validity(&self, claims: &Map<String, Value>) -> Result<bro_domain::Timestamp, TokenError> {
        let now = self.clock.now().timestamp();
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let seconds = |name: &str| -> Result<Option<i64>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|s| s.is_finite())
                    .map(|s| Some(s as i64))
                    .ok_or_else(|| TokenError::Claims(format!("{name} must be a number of seconds"))),
            }
        };
        let exp = seconds("exp")?.ok_or_else(|| TokenError::Claims("exp is missing".into()))?;
        if exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = seconds("nbf")?
            && nbf.saturating_sub(leeway) > now
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(bro_domain::Timestamp::from_timestamp(exp.saturating_add(leeway), 0)
            .unwrap_or(bro_domain::Timestamp::MAX_UTC))
    }

    fn subject(&self, claims: &Map<String, Value>) -> Result<TokenSubject, TokenError> {
        let names = &self.settings.claims;
        let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 256);
        let sub = sub.ok_or_else(|| TokenError::Claims("sub must be a non-empty string".into()))?;
        // Client credentials: the client is its own subject, and acts in no person's role.
        if let Some(client) = claims.get(&names.client_id).and_then(Value::as_str)
            && client == sub
            && claims.get(&names.roles).is_none()
        {
            return Ok(TokenSubject::Client(client.to_owned()));
        }
        let roles: Vec<Role> = match claims.get(&names.roles) {
            None => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().filter_map(role).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).filter_map(role).collect(),
            Some(_) => return Err(TokenError::Claims(format!("{} must be a list of strings", names.roles))),
        };
        let municipality = match claims.get(&names.municipality) {
            None => None,
            Some(Value::String(cvr)) if cvr.len() == 8 && cvr.bytes().all(|b| b.is_ascii_digit()) => Some(cvr.clone()),
            Some(_) => return Err(TokenError::Claims(format!("{} must be an 8-digit CVR number", names.municipality))),
        };
        let assurance =
            claims.get(&names.assurance).and_then(Value::as_str).and_then(Assurance::parse).ok_or_else(|| {
                TokenError::Claims(format!("{} (the NSIS assurance level) is missing", names.assurance))
            })?;
        Ok(TokenSubject::Person(Person { subject: sub.to_owned(), municipality, roles, assurance }))
    }
}

fn role(name: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| r.as_str() == name)
}

/// The `alg` of a token's header as written, for clear refusals (`none`).
fn raw_header_alg(token: &str) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated parts".into()));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("the header is not base64url".into()))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("the header is not JSON".into()))?;
    let alg = value.get("alg").and_then(Value::as_str).unwrap_or("").chars().take(16).collect::<String>();
    if alg.is_empty() || alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Algorithm(if alg.is_empty() { "(missing)".into() } else { alg }));
    }
    Ok(alg)
}

async fn load(source: &JwksSource) -> Result<JwkSet, TokenError> {
    let text = match source {
        JwksSource::Inline(text) => text.clone(),
        JwksSource::File(path) => {
            tokio::fs::read_to_string(path).await.map_err(|e| TokenError::Keys(format!("{}: {e}", path.display())))?
        }
        JwksSource::Url(url) => fetch(url).await?,
    };
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| TokenError::Keys(format!("not a JWKS: {e}")))?;
    if set.keys.is_empty() {
        return Err(TokenError::Keys("the key set holds no keys".into()));
    }
    Ok(set)
}

async fn fetch(url: &str) -> Result<String, TokenError> {
    use http_body_util::{BodyExt, Empty, Limited};
    let uri: hyper::Uri = url.parse().map_err(|_| TokenError::Keys(format!("{url:?} is not a URL")))?;
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let request = hyper::Request::get(uri)
        .header("accept", "application/json")
        .body(Empty::new())
        .map_err(|e| TokenError::Keys(e.to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| TokenError::Keys(format!("{url} did not answer within 10 s")))?
        .map_err(|e| TokenError::Keys(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(TokenError::Keys(format!("{url} answered {}", response.status())));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| TokenError::Keys(format!("{url}: {e}")))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| TokenError::Keys(format!("{url} sent a key set that is not UTF-8")))
}

/// Checks that a JWKS URL is `https://`, or `http://` to a loopback host.
pub fn check_jwks_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    let loopback = crate::systems::is_loopback(host);
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(format!("jwks_url {url:?} must be https:// (http:// only to a loopback host)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_urls_must_be_https_off_loopback() {
        assert!(check_jwks_url("https://idp.kommune.dk/jwks").is_ok());
        assert!(check_jwks_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_jwks_url("http://idp.kommune.dk/jwks").is_err());
        assert!(check_jwks_url("ftp://x").is_err());
    }
}
