//! The configured external systems: who each is (a municipality's own
//! system, another sector's, or one that only sends), how it authenticates,
//! what it subscribes to and how it receives. The bottom of the server:
//! authentication, the policy, the pipeline and the services all read it.

use std::path::PathBuf;
use std::time::Duration;

use bro_api::v1 as pb;
use bro_rules::sharing::{Recipient, Recorder};

/// How a system receives its deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The system only sends; it receives nothing.
    None,
    /// POST to a URL with an `Idempotency-Key` header.
    Http {
        /// The receiving URL: `https://…`, or `http://…` on loopback only
        /// (unless [`SystemConfig::plaintext_off_loopback`]).
        url: String,
    },
    /// Atomic write of one file per delivery into a drop directory.
    File {
        /// The drop directory.
        dir: PathBuf,
    },
    /// The system streams its deliveries over gRPC and acknowledges them.
    Pull,
}

/// What a system may read and be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemAccess {
    /// Bound to no municipality and no sector: what [`SystemConfig::new`]
    /// starts from, and what [`Systems::new`] refuses (every system must be
    /// bound, so none is matched to any municipality's case or labels its
    /// items as any sector).
    Unbound,
    /// A system of the municipality itself (its journal or case system): the
    /// cases that municipality places, in full.
    Municipal {
        /// The municipality's CVR number.
        cvr: String,
    },
    /// Another sector's system: only its own sector's items, of custody
    /// holders whose consent in `scope` holds.
    Sector {
        /// Its sector.
        sector: pb::Sector,
        /// The consent scope that covers it, e.g. `share:jobcenter`.
        scope: String,
    },
}

impl SystemAccess {
    /// The usual consent scope of a sector: `share:jobcenter`,
    /// `share:psychiatry`, `share:addiction-treatment`, `share:health`.
    pub fn default_scope(sector: pb::Sector) -> Option<&'static str> {
        match sector {
            pb::Sector::Jobcentre => Some("share:jobcenter"),
            pb::Sector::Psychiatry => Some("share:psychiatry"),
            pb::Sector::AddictionTreatment => Some("share:addiction-treatment"),
            pb::Sector::Health => Some("share:health"),
            pb::Sector::Other | pb::Sector::Unspecified => None,
        }
    }
}

/// One configured external system.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// Its id, e.g. `psykiatri-regionh`.
    pub name: String,
    /// The adapter that translates its messages.
    pub adapter: String,
    /// The `from-canonical` target (the format it wants).
    pub target: String,
    /// Event types it is sent, e.g. `correspondence_recorded`.
    pub subscribe: Vec<String>,
    /// How it receives.
    pub transport: Transport,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// What it may read and be sent.
    pub access: SystemAccess,
    /// The client id its client-credentials tokens carry, if it uses tokens.
    pub client_id: Option<String>,
    /// SHA-256 fingerprints (hex) of the client certificates it may present.
    pub certificates: Vec<String>,
    /// For another sector's system: the one municipality (CVR) whose cases it
    /// serves, e.g. a municipal jobcentre; none: every municipality's here.
    pub serves: Option<String>,
    /// Settings its adapter is given with every outbound batch
    /// (`AdapterBatch.settings`), e.g. registered identifiers.
    pub adapter_settings: std::collections::BTreeMap<String, String>,
    /// How an `https://` receiver is verified and whom bro presents itself
    /// as; none: the public roots, no client certificate.
    pub receiver_tls: Option<ReceiverTls>,
    /// Allows an `http://` receiver off loopback: people's data in clear
    /// over the network. Off unless configured, and logged at start.
    pub plaintext_off_loopback: bool,
}

/// The TLS client side of deliveries to one system's `https://` receiver:
/// the CAs its certificate must chain to and, optionally, the client
/// certificate bro presents.
#[derive(Clone)]
pub struct ReceiverTls {
    connector: tokio_rustls::TlsConnector,
    /// What it trusts and presents, for logs and errors.
    pub described: String,
}

impl std::fmt::Debug for ReceiverTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverTls").field("described", &self.described).finish()
    }
}

impl ReceiverTls {
    /// Verification against `ca_pem` (one or more PEM certificates; none:
    /// the public web roots bundled with bro), presenting `client` (a PEM
    /// certificate chain and its PEM private key) if given.
    pub fn new(ca_pem: Option<&str>, client: Option<(&str, &str)>) -> Result<ReceiverTls, String> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        let trusted = match ca_pem {
            Some(pem) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("the receiver CA is not PEM certificates: {e}"))?;
                if certs.is_empty() {
                    return Err("the receiver CA holds no certificate".into());
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| format!("the receiver CA is not a usable certificate: {e}"))?;
                }
                "the configured CA"
            }
            None => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                "the public web roots"
            }
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
        let (config, presents) = match client {
            None => (builder.with_no_client_auth(), ""),
            Some((cert_pem, key_pem)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("the client certificate is not PEM: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| format!("the client key is not a PEM private key: {e}"))?;
                let config = builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the client certificate and key do not fit: {e}"))?;
                (config, ", presenting a client certificate")
            }
        };
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        Ok(ReceiverTls { connector, described: format!("verified against {trusted}{presents}") })
    }

    /// The connector.
    pub fn connector(&self) -> &tokio_rustls::TlsConnector {
        &self.connector
    }
}

/// Whether `host` (as a URL writes it) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SystemConfig {
    /// A system with the default retry policy (8 attempts, 2 s doubling to 10 min).
    pub fn new(name: &str, adapter: &str, target: &str, subscribe: &[&str], transport: Transport) -> Self {
        SystemConfig {
            name: name.into(),
            adapter: adapter.into(),
            target: target.into(),
            subscribe: subscribe.iter().map(|s| (*s).to_owned()).collect(),
            transport,
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            access: SystemAccess::Unbound,
            client_id: None,
            certificates: Vec::new(),
            serves: None,
            adapter_settings: std::collections::BTreeMap::new(),
            receiver_tls: None,
            plaintext_off_loopback: false,
        }
    }

    /// Whether a case of municipality `cvr` is within this system's reach.
    pub fn reaches(&self, cvr: &str) -> bool {
        match &self.access {
            SystemAccess::Unbound => false,
            SystemAccess::Municipal { cvr: own } => own == cvr,
            SystemAccess::Sector { .. } => self.serves.as_deref().is_none_or(|own| own == cvr),
        }
    }

    /// The system as the sharing law judges a reader of cases.
    pub fn recipient(&self) -> Recipient<'_> {
        match &self.access {
            SystemAccess::Unbound => Recipient::Nobody,
            SystemAccess::Municipal { cvr } => Recipient::Municipality { cvr },
            SystemAccess::Sector { sector, scope } => match bro_api::convert::sector_from_pb(*sector) {
                Some(sector) => Recipient::Sector { sector, scope, serves: self.serves.as_deref() },
                None => Recipient::Nobody,
            },
        }
    }

    /// The system as the sharing law judges one who records.
    pub fn recorder(&self) -> Recorder {
        match &self.access {
            SystemAccess::Municipal { .. } => Recorder::Municipality,
            SystemAccess::Sector { sector, .. } => {
                bro_api::convert::sector_from_pb(*sector).map_or(Recorder::Nobody, Recorder::Sector)
            }
            SystemAccess::Unbound => Recorder::Nobody,
        }
    }

    /// The same system with `access`.
    pub fn with_access(mut self, access: SystemAccess) -> Self {
        self.access = access;
        self
    }

    /// The same system authenticating with client-credentials tokens for `client_id`.
    pub fn with_client_id(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// The delay before attempt `attempts + 1`: exponential, capped, with a
    /// jitter of up to half the delay that differs between deliveries.
    pub fn backoff(&self, attempts: u32, delivery_id: &str) -> Duration {
        let exp = self.backoff_base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.backoff_max);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&(delivery_id, attempts), &mut h);
        let fraction = (std::hash::Hasher::finish(&h) % 1000) as f64 / 2000.0;
        capped + capped.mul_f64(fraction)
    }
}

/// The configured systems; plans the outbox of every write.
#[derive(Clone, Debug, Default)]
pub struct Systems {
    systems: Vec<SystemConfig>,
}

impl Systems {
    /// The systems, checked: unique names, known event types.
    pub fn new(systems: Vec<SystemConfig>) -> Result<Self, String> {
        for (i, s) in systems.iter().enumerate() {
            bro_domain::check_id("name", &s.name).map_err(|v| format!("system {:?}: {v}", s.name))?;
            if systems[..i].iter().any(|t| t.name == s.name) {
                return Err(format!("system {:?} is configured twice", s.name));
            }
            for ty in &s.subscribe {
                if !EVENT_TYPES.contains(&ty.as_str()) && ty != HOLISTIC_PLAN {
                    return Err(format!(
                        "system {:?} subscribes to {ty:?}, which is neither an event type nor {HOLISTIC_PLAN:?}",
                        s.name
                    ));
                }
            }
            if s.transport == Transport::None && !s.subscribe.is_empty() {
                return Err(format!("system {:?} subscribes to events but has no transport", s.name));
            }
            if s.access == SystemAccess::Unbound {
                return Err(format!(
                    "system {:?} is bound to no municipality and no sector: give it `municipality`, `sector`, or both",
                    s.name
                ));
            }
            match &s.access {
                SystemAccess::Municipal { cvr } => {
                    bro_domain::check_cvr("municipality", cvr).map_err(|v| format!("system {:?}: {v}", s.name))?;
                }
                SystemAccess::Sector { sector, scope } => {
                    if *sector == pb::Sector::Unspecified {
                        return Err(format!("system {:?}: the sector is required", s.name));
                    }
                    bro_domain::ConsentScope::parse("consent_scope", scope)
                        .ok()
                        .filter(|c| c.as_str().starts_with("share:"))
                        .ok_or_else(|| format!("system {:?}: consent_scope must be share:{{recipient}}", s.name))?;
                    let sendable =
                        |t: &String| bro_rules::sharing::SECTOR_EVENT_TYPES.contains(&t.as_str()) || t == HOLISTIC_PLAN;
                    if let Some(ty) = s.subscribe.iter().find(|t| !sendable(t)) {
                        return Err(format!(
                            "system {:?} is another sector's system and cannot be sent {ty:?}; it may subscribe to {}, {HOLISTIC_PLAN}",
                            s.name,
                            bro_rules::sharing::SECTOR_EVENT_TYPES.join(", ")
                        ));
                    }
                }
                SystemAccess::Unbound => {}
            }
            if let Some(cvr) = &s.serves {
                if !matches!(s.access, SystemAccess::Sector { .. }) {
                    return Err(format!("system {:?}: only another sector's system serves one municipality", s.name));
                }
                bro_domain::check_cvr("municipality", cvr).map_err(|v| format!("system {:?}: {v}", s.name))?;
            }
            for fingerprint in &s.certificates {
                if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("system {:?}: certificate_sha256 must be 64 hex digits", s.name));
                }
                let taken =
                    systems[..i].iter().any(|t| t.certificates.iter().any(|f| f.eq_ignore_ascii_case(fingerprint)));
                if taken {
                    return Err(format!("system {:?}: its certificate is pinned to another system too", s.name));
                }
            }
            if let Some(client) = &s.client_id
                && (client.is_empty() || systems[..i].iter().any(|t| t.client_id.as_ref() == Some(client)))
            {
                return Err(format!("system {:?}: client_id must be non-empty and unique", s.name));
            }
            if s.max_attempts == 0 {
                return Err(format!("system {:?}: max_attempts must be at least 1", s.name));
            }
            if s.backoff_base.is_zero()
                || s.backoff_max < s.backoff_base
                || s.backoff_max > Duration::from_secs(7 * 86_400)
            {
                return Err(format!("system {:?}: backoff must be 0 < base <= max <= 7 days", s.name));
            }
            if let Transport::Http { url } = &s.transport {
                let uri: Result<hyper::Uri, _> = url.parse();
                let ok = uri.as_ref().is_ok_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https"))
                        && u.host().is_some()
                        && !u.authority().is_some_and(|a| a.as_str().contains('@'))
                });
                let Some(uri) = uri.ok().filter(|_| ok) else {
                    return Err(format!(
                        "system {:?}: {url:?} is not an http(s)://host[:port]/path URL without credentials",
                        s.name
                    ));
                };
                let plaintext = uri.scheme_str() == Some("http");
                if plaintext && !uri.host().is_some_and(is_loopback) && !s.plaintext_off_loopback {
                    return Err(format!(
                        "system {:?}: {url:?} would carry people's data in clear off this machine; use https:// \
                         (or, on a network that encrypts it otherwise, set allow_plaintext = true)",
                        s.name
                    ));
                }
                if plaintext && s.receiver_tls.is_some() {
                    return Err(format!("system {:?}: TLS settings for an http:// receiver; use https://", s.name));
                }
            } else if s.receiver_tls.is_some() {
                return Err(format!("system {:?}: TLS settings without an http transport", s.name));
            }
        }
        Ok(Systems { systems })
    }

    /// A system by name.
    pub fn get(&self, name: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.name == name)
    }

    /// The system a client certificate (SHA-256, hex) is pinned to.
    pub fn by_certificate(&self, sha256_hex: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.certificates.iter().any(|f| f.eq_ignore_ascii_case(sha256_hex)))
    }

    /// The system with a token client id.
    pub fn by_client_id(&self, client_id: &str) -> Option<&SystemConfig> {
        self.systems.iter().find(|s| s.client_id.as_deref() == Some(client_id))
    }

    /// All systems.
    pub fn all(&self) -> &[SystemConfig] {
        &self.systems
    }
}

/// The subscription to § 78 holistic plans: the system is sent its view of
/// each plan of a case whenever that view changes.
pub const HOLISTIC_PLAN: &str = "holistic_plan";

/// Every event type name, as in `CaseEvent.kind`.
pub const EVENT_TYPES: &[&str] = &[
    "case_opened",
    "placement_recommended",
    "placement_started",
    "placement_ended",
    "support_person_offered",
    "support_person_accepted",
    "support_person_declined",
    "support_person_chosen",
    "support_person_approved",
    "support_person_refused",
    "support_decided",
    "support_started",
    "consent_given",
    "consent_withdrawn",
    "plan_prepared",
    "plan_omitted",
    "revision_offered",
    "revision_made",
    "revision_assessed",
    "homecoming_period_started",
    "homecoming_period_ended",
    "contact_suspended",
    "contact_resumed",
    "sector_contact_added",
    "sector_contact_ended",
    "correspondence_recorded",
    "sector_plan_recorded",
    "appointment_scheduled",
    "appointment_cancelled",
    "legal_basis_recorded",
    "legal_basis_ended",
    "plan_coordinator_named",
    "plan_goals_updated",
    "homecoming_period_waived",
    "custody_holder_moved",
    "case_handover_sent",
];

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn every_event_type_is_known_to_subscriptions() {
        let set = prost_types::FileDescriptorSet::decode(bro_api::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let event = set
            .file
            .iter()
            .flat_map(|f| f.message_type.iter())
            .find(|m| m.name() == "CaseEvent")
            .expect("bro.v1.CaseEvent");
        let kinds: Vec<&str> = event.field.iter().filter(|f| f.oneof_index.is_some()).map(|f| f.name()).collect();
        assert_eq!(kinds, EVENT_TYPES, "EVENT_TYPES must list CaseEvent's kinds, in order");
    }

    #[test]
    fn systems_are_checked() {
        let municipal = SystemAccess::Municipal { cvr: "29189846".into() };
        let http = |url: &str| {
            SystemConfig::new("s", "a", "t", &["consent_given"], Transport::Http { url: url.into() })
                .with_access(municipal.clone())
        };
        assert!(Systems::new(vec![http("http://127.0.0.1:9000/in")]).is_ok());
        for bad in ["http://user:pw@x/in", "https://user@x/in", "not a url", "file:///tmp", "ftp://x/in"] {
            assert!(Systems::new(vec![http(bad)]).is_err(), "{bad} must be refused");
        }
        // No plaintext off the machine, unless explicitly allowed.
        for local in ["http://localhost:9000/in", "http://[::1]:9000/in", "http://127.0.0.2/in", "https://x.dk/in"] {
            assert!(Systems::new(vec![http(local)]).is_ok(), "{local} is fine");
        }
        for remote in ["http://10.0.0.5:8080/in", "http://journal.kommune.dk/in", "http://[2001:db8::1]/in"] {
            let err = Systems::new(vec![http(remote)]).unwrap_err();
            assert!(err.contains("in clear off this machine"), "{remote}: {err}");
            let allowed = SystemConfig { plaintext_off_loopback: true, ..http(remote) };
            assert!(Systems::new(vec![allowed]).is_ok(), "{remote} when allowed");
        }
        let tls = ReceiverTls::new(None, None).expect("public roots");
        assert!(tls.described.contains("public web roots"));
        let confused = SystemConfig { receiver_tls: Some(tls.clone()), ..http("http://127.0.0.1/in") };
        assert!(Systems::new(vec![confused]).unwrap_err().contains("use https://"));
        assert!(ReceiverTls::new(Some("not a certificate"), None).unwrap_err().contains("no certificate"));
        let mut slow = http("https://x/in");
        slow.backoff_max = Duration::from_secs(30 * 86_400);
        assert!(Systems::new(vec![slow]).unwrap_err().contains("backoff"));
        let deaf = SystemConfig::new("s", "a", "t", &["consent_given"], Transport::None).with_access(municipal.clone());
        assert!(Systems::new(vec![deaf]).unwrap_err().contains("no transport"));
        let unbound = SystemConfig::new("s", "a", "t", &[], Transport::None);
        assert!(Systems::new(vec![unbound]).unwrap_err().contains("bound to no municipality and no sector"));
        let jobcentre = SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "share:jobcenter".into() };
        let nosy =
            SystemConfig::new("s", "a", "t", &["placement_started"], Transport::Pull).with_access(jobcentre.clone());
        assert!(Systems::new(vec![nosy]).unwrap_err().contains("cannot be sent \"placement_started\""));
        let consent_scope = SystemAccess::Sector { sector: pb::Sector::Jobcentre, scope: "bl78".into() };
        let odd = SystemConfig::new("s", "a", "t", &[], Transport::None).with_access(consent_scope);
        assert!(Systems::new(vec![odd]).unwrap_err().contains("share:"));
        let pinned = |name: &str| {
            let mut s = SystemConfig::new(name, "a", "t", &[], Transport::None).with_access(municipal.clone());
            s.certificates = vec!["ab".repeat(32)];
            s
        };
        assert!(Systems::new(vec![pinned("a"), pinned("b")]).unwrap_err().contains("pinned to another system"));
        let systems = Systems::new(vec![
            pinned("a"),
            SystemConfig::new("b", "a", "t", &[], Transport::None).with_access(municipal).with_client_id("b-client"),
        ])
        .expect("valid");
        assert_eq!(systems.by_certificate(&"AB".repeat(32)).map(|s| s.name.as_str()), Some("a"));
        assert_eq!(systems.by_client_id("b-client").map(|s| s.name.as_str()), Some("b"));
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let mut s = SystemConfig::new("x", "a", "t", &[], Transport::Pull);
        s.backoff_base = Duration::from_secs(2);
        s.backoff_max = Duration::from_secs(60);
        let first = s.backoff(1, "d1");
        assert!(first >= Duration::from_secs(2) && first <= Duration::from_secs(3), "{first:?}");
        let fourth = s.backoff(4, "d1");
        assert!(fourth >= Duration::from_secs(16) && fourth <= Duration::from_secs(24), "{fourth:?}");
        let late = s.backoff(30, "d1");
        assert!(late >= Duration::from_secs(60) && late <= Duration::from_secs(90), "{late:?}");
        let spread: std::collections::HashSet<Duration> = (0..20).map(|i| s.backoff(3, &format!("d{i}"))).collect();
        assert!(spread.len() > 10, "deliveries retry at different times: {spread:?}");
    }
}
