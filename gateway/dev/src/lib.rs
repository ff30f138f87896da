//! Development identities: an identity provider that lives in memory (an
//! Ed25519 key, its JWKS, tokens for any role) and a private CA with server
//! and client certificates. `bro demo`, `bro dev` and the tests use them so
//! the gateway runs authenticated with no set-up. Never for production: the
//! gateway's own library does not link this crate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bro_server::access::jwt::{ClaimNames, JwksSource, JwtSettings, REFETCH_AFTER};
use bro_server::access::{Assurance, Role};
use bro_server::clock::{Clock, SystemClock};
use ring::signature::KeyPair as _;
use serde_json::{Value, json};

/// The development provider's issuer.
pub const DEV_ISSUER: &str = "https://idp.bro.invalid/dev";
/// The audience its tokens are for.
pub const DEV_AUDIENCE: &str = "bro";

/// An identity provider in memory; its tokens are issued at its clock's now.
pub struct DevIdentityProvider {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
}

/// What a development token claims.
#[derive(Clone, Debug)]
pub struct DevClaims {
    /// Subject.
    pub subject: String,
    /// Municipality CVR.
    pub municipality: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Assurance level.
    pub assurance: Assurance,
    /// Valid for this long from now.
    pub valid_for: Duration,
}

impl DevClaims {
    /// A caseworker of municipality `cvr` at NSIS substantial, valid 12 hours.
    pub fn caseworker(subject: &str, cvr: &str) -> DevClaims {
        DevClaims {
            subject: subject.into(),
            municipality: Some(cvr.into()),
            roles: vec![Role::Caseworker],
            assurance: Assurance::Substantial,
            valid_for: Duration::from_secs(12 * 3600),
        }
    }

    /// A person with one role (auditor, administrator) of municipality `cvr`.
    pub fn with_role(subject: &str, cvr: &str, role: Role) -> DevClaims {
        DevClaims { roles: vec![role], ..DevClaims::caseworker(subject, cvr) }
    }
}

impl DevIdentityProvider {
    /// A provider with a fresh key.
    pub fn generate() -> DevIdentityProvider {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
        Self::from_pkcs8(pkcs8.as_ref()).expect("a fresh key loads")
    }

    /// A provider with a stored key (PKCS#8 DER).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<DevIdentityProvider, String> {
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&ring::digest::digest(&ring::digest::SHA256, &public).as_ref()[..8]);
        Ok(DevIdentityProvider {
            pkcs8: pkcs8.to_vec(),
            public,
            kid,
            issuer: DEV_ISSUER.into(),
            audience: DEV_AUDIENCE.into(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider issuing tokens at `clock`'s now (a gateway on a
    /// fixed clock accepts only tokens valid at its time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> DevIdentityProvider {
        self.clock = clock;
        self
    }

    /// Loads `idp.key` from `dir`, or makes one there.
    pub fn load_or_create(dir: &Path) -> std::io::Result<DevIdentityProvider> {
        let path = dir.join("idp.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let der = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            return Self::from_pkcs8(&der).map_err(std::io::Error::other);
        }
        let idp = Self::generate();
        std::fs::create_dir_all(dir)?;
        bro_store::write_private(&path, &base64::engine::general_purpose::STANDARD.encode(&idp.pkcs8))?;
        Ok(idp)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set, as the provider's `jwks_uri` would serve it.
    pub fn jwks(&self) -> String {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.kid,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public),
        }]})
        .to_string()
    }

    /// Settings that accept this provider's tokens.
    pub fn settings(&self) -> JwtSettings {
        JwtSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            jwks: JwksSource::Inline(self.jwks()),
            claims: ClaimNames::default(),
            leeway: Duration::from_secs(30),
            refetch_after: REFETCH_AFTER,
            refresh_after: bro_server::access::jwt::REFRESH_AFTER,
            max_stale: bro_server::access::jwt::MAX_STALE,
        }
    }

    /// Signs any claims (tests use this for tokens that must be refused).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8))
            .expect("signing in memory does not fail")
    }

    /// The standard claims of a token valid from now for `valid_for`.
    pub fn base_claims(&self, subject: &str, valid_for: Duration) -> Value {
        let now = self.clock.now().timestamp().max(0) as u64;
        json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + valid_for.as_secs(),
        })
    }

    /// A person's token.
    pub fn token(&self, claims: &DevClaims) -> String {
        let names = ClaimNames::default();
        let mut value = self.base_claims(&claims.subject, claims.valid_for);
        let map = value.as_object_mut().expect("an object");
        if let Some(cvr) = &claims.municipality {
            map.insert(names.municipality, json!(cvr));
        }
        map.insert(names.roles, json!(claims.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()));
        let loa = match claims.assurance {
            Assurance::Low => "Low",
            Assurance::Substantial => "Substantial",
            Assurance::High => "High",
        };
        map.insert(names.assurance, json!(format!("https://data.gov.dk/concept/core/nsis/loa/{loa}")));
        self.sign(&value)
    }

    /// A system's client-credentials token.
    pub fn client_token(&self, client_id: &str, valid_for: Duration) -> String {
        let mut value = self.base_claims(client_id, valid_for);
        value.as_object_mut().expect("an object").insert(ClaimNames::default().client_id, json!(client_id));
        self.sign(&value)
    }
}

/// A PEM certificate and its private key.
#[derive(Clone, Debug)]
pub struct PemPair {
    /// The certificate (PEM).
    pub cert: String,
    /// The private key (PEM, PKCS#8).
    pub key: String,
    /// SHA-256 of the certificate's DER, hex: what `certificate_sha256` pins.
    pub sha256: String,
}

/// A private CA, a server certificate for `localhost`/127.0.0.1/::1, and one
/// client certificate per name.
#[derive(Clone, Debug)]
pub struct DevCertificates {
    /// The CA certificate (PEM): clients trust it, and the server checks client certificates with it.
    pub ca: String,
    /// The server's certificate and key.
    pub server: PemPair,
    /// Client certificates by name.
    pub clients: Vec<(String, PemPair)>,
}

impl DevCertificates {
    /// Makes a CA and certificates for `clients`.
    pub fn generate(clients: &[&str]) -> Result<DevCertificates, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "bro development CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| -> Result<PemPair, rcgen::Error> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer)?;
            let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, cert.der()).as_ref());
            Ok(PemPair { cert: cert.pem(), key: key.serialize_pem(), sha256 })
        };
        let server = leaf(
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let clients = clients
            .iter()
            .map(|name| Ok(((*name).to_owned(), leaf(Vec::new(), name, ExtendedKeyUsagePurpose::ClientAuth)?)))
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        Ok(DevCertificates { ca: ca_cert.pem(), server, clients })
    }

    /// A client's certificate.
    pub fn client(&self, name: &str) -> Option<&PemPair> {
        self.clients.iter().find(|(n, _)| n == name).map(|(_, pair)| pair)
    }
}
