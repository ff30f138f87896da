//! `bro serve` configuration: defaults, then the TOML file, then environment
//! variables (`BRO_*`), then command-line flags — each overriding the last.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The configuration file. Every key is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the event store lives.
    pub data_dir: Option<PathBuf>,
    /// `[audit]`: where the audit log's head is exported.
    pub audit: Option<AuditFile>,
    /// `[store]`: the event store and audit log on a database server instead.
    pub store: Option<StoreFile>,
    /// gRPC listen address.
    pub listen: Option<SocketAddr>,
    /// Admin (metrics) listen address; absent: no admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Largest request in bytes.
    pub max_request_bytes: Option<usize>,
    /// Unary call deadline in seconds.
    pub request_timeout_secs: Option<u64>,
    /// How long a stop waits for open connections, in seconds.
    pub shutdown_grace_secs: Option<u64>,
    /// Server streams one caller may have open at once.
    pub max_streams_per_caller: Option<usize>,
    /// How long a server stream lives, in seconds.
    pub max_stream_secs: Option<u64>,
    /// HTTP/2 limits of the gRPC listener.
    pub http2: Option<Http2File>,
    /// WebAssembly adapters.
    pub adapters: Option<crate::adapters::AdaptersConfig>,
    /// External systems (`[[systems]]`).
    #[serde(default)]
    pub systems: Vec<SystemFile>,
    /// The master key file (`bro keygen`).
    pub key_file: Option<PathBuf>,
    /// TLS.
    pub tls: Option<TlsFile>,
    /// The identity provider whose tokens persons (and token-using systems) present.
    pub identity: Option<IdentityFile>,
    /// Per-client rate limit.
    pub rate_limit: Option<RateLimitFile>,
    /// Where the parents' plan pages are served (loopback, behind a TLS proxy).
    pub pages_listen: Option<SocketAddr>,
    /// The public base URL of plan links, e.g. `https://plan.kommune.dk`.
    pub pages_base_url: Option<String>,
    /// The proxies in front of the plan pages whose `X-Forwarded-For` names
    /// the client (addresses or `address/prefix`), e.g. `["127.0.0.1"]`.
    pub pages_trusted_proxies: Option<Vec<String>>,
    /// The § 78 coordination checks.
    pub coordination: Option<CoordinationFile>,
}

/// `[store]`: where the event store and the audit log live when not in the
/// embedded SQLite of `data_dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// `postgres://user@host/db` (or a key-value connection string).
    pub url: Option<String>,
    /// How long a delivery worker holds a (system, case) queue between
    /// renewals: after a replica dies, its queues wait this long (default 30).
    pub delivery_lease_secs: Option<u64>,
}

/// `[http2]`: limits of the gRPC listener's HTTP/2 connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http2File {
    /// Concurrent streams per connection (default 200).
    pub max_concurrent_streams: Option<u32>,
    /// Seconds without frames before a ping (default 60).
    pub keepalive_secs: Option<u64>,
    /// Seconds a ping may go unanswered (default 20).
    pub keepalive_timeout_secs: Option<u64>,
    /// Seconds after which a connection is told to go away (default 14400).
    pub max_connection_age_secs: Option<u64>,
}

/// `[audit]`: the audit head export (one replica exports once per period).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Seconds between exports of the head (default 300).
    pub head_export_secs: Option<u64>,
    /// A file each export appends a signed head to (one JSON line; besides the log line).
    pub head_export_file: Option<PathBuf>,
    /// The Ed25519 key exported heads are signed with (`bro keygen --audit-signing`);
    /// required off loopback, made in the data directory on loopback.
    pub signing_key: Option<PathBuf>,
}

/// Checks a store URL names a backend bro has: PostgreSQL.
pub fn check_store_url(url: &str) -> anyhow::Result<()> {
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains("dbname=");
    if !postgres {
        bail!(
            "store url must be a postgres:// URL (or a PostgreSQL connection string); leave it out for embedded SQLite"
        );
    }
    Ok(())
}

/// `[coordination]`: what the § 78 coordination checks allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinationFile {
    /// Most meetings with different professionals a parent has in one week (default 3).
    pub max_meetings_per_week: Option<usize>,
    /// Drop the built-in tag rules and use only `tag_conflicts`.
    #[serde(default)]
    pub replace_default_tag_conflicts: bool,
    /// More rules: tags that pull against each other (`[[coordination.tag_conflicts]]`).
    #[serde(default)]
    pub tag_conflicts: Vec<TagConflictFile>,
}

/// One rule of the tag table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConflictFile {
    /// A stable id, e.g. `night-shift-vs-contact`.
    pub id: String,
    /// A tag (`full-time`, or `aim:contact` / `aim:homecoming` for the children's authority's goals).
    pub tag: String,
    /// The tag it pulls against.
    pub against: String,
    /// Why, in plain language.
    pub why: String,
}

impl CoordinationFile {
    /// The checks' policy: the defaults, changed as the file says.
    pub fn to_policy(&self) -> anyhow::Result<bro_rules::coordination::CoordinationPolicy> {
        use bro_rules::coordination::{CoordinationPolicy, TagConflict};
        let mut policy = CoordinationPolicy::default();
        if let Some(n) = self.max_meetings_per_week {
            if !(1..=50).contains(&n) {
                bail!("[coordination] max_meetings_per_week must be 1 to 50, not {n}");
            }
            policy.max_meetings_per_week = n;
        }
        if self.replace_default_tag_conflicts {
            policy.tag_conflicts.clear();
        }
        let tag_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 63
                && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b':'))
        };
        for rule in &self.tag_conflicts {
            if !tag_ok(&rule.id) || !tag_ok(&rule.tag) || !tag_ok(&rule.against) {
                bail!(
                    "[[coordination.tag_conflicts]] {:?}: id, tag and against are 1-63 of a-z, 0-9, '-', '_', ':'",
                    rule.id
                );
            }
            if rule.why.trim().is_empty() {
                bail!("[[coordination.tag_conflicts]] {:?}: say why the tags pull apart", rule.id);
            }
            if policy.tag_conflicts.iter().any(|r| r.id == rule.id) {
                bail!("[[coordination.tag_conflicts]] {:?} is defined twice (or repeats a built-in rule)", rule.id);
            }
            policy.tag_conflicts.push(TagConflict {
                id: rule.id.clone(),
                tag: rule.tag.clone(),
                against: rule.against.clone(),
                why: rule.why.clone(),
            });
        }
        Ok(policy)
    }
}

/// `[tls]`: the server's certificate, and the CA of systems' client certificates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Server certificate chain (PEM).
    pub certificate: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA certificate(s) that client certificates must chain to (PEM).
    pub client_ca: Option<PathBuf>,
}

/// `[identity]`: the municipal identity provider (OIDC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud`.
    pub audience: String,
    /// The provider's key set as a file…
    pub jwks_file: Option<PathBuf>,
    /// …or its `jwks_uri` (https).
    pub jwks_url: Option<String>,
    /// Claim with the municipality's CVR number.
    pub municipality_claim: Option<String>,
    /// Claim with the roles.
    pub roles_claim: Option<String>,
    /// Claim with the NSIS assurance level.
    pub assurance_claim: Option<String>,
    /// Claim with a system's client id.
    pub client_id_claim: Option<String>,
    /// Allowed clock skew in seconds (default 30).
    pub leeway_secs: Option<u64>,
    /// Age in seconds after which the key set is refreshed, in the background (default 3600).
    pub jwks_refresh_secs: Option<u64>,
    /// How long in seconds cached keys keep verifying past that while the
    /// provider does not answer (default 43200, 12 h); then tokens are refused.
    pub jwks_max_stale_secs: Option<u64>,
}

/// `[rate_limit]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    /// Sustained calls per second per client.
    pub per_second: f64,
    /// Burst size.
    pub burst: f64,
}

impl IdentityFile {
    /// The server's form.
    pub fn to_settings(&self) -> anyhow::Result<bro_server::access::jwt::JwtSettings> {
        use bro_server::access::jwt::{ClaimNames, JwksSource, JwtSettings, check_jwks_url};
        let jwks = match (&self.jwks_file, &self.jwks_url) {
            (Some(file), None) => JwksSource::File(file.clone()),
            (None, Some(url)) => {
                check_jwks_url(url).map_err(anyhow::Error::msg)?;
                JwksSource::Url(url.clone())
            }
            _ => bail!("[identity] needs exactly one of jwks_file and jwks_url"),
        };
        let defaults = ClaimNames::default();
        Ok(JwtSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            jwks,
            claims: ClaimNames {
                municipality: self.municipality_claim.clone().unwrap_or(defaults.municipality),
                roles: self.roles_claim.clone().unwrap_or(defaults.roles),
                assurance: self.assurance_claim.clone().unwrap_or(defaults.assurance),
                client_id: self.client_id_claim.clone().unwrap_or(defaults.client_id),
            },
            leeway: std::time::Duration::from_secs(self.leeway_secs.unwrap_or(30)),
            refetch_after: bro_server::access::jwt::REFETCH_AFTER,
            refresh_after: std::time::Duration::from_secs(self.jwks_refresh_secs.unwrap_or(3600).max(60)),
            max_stale: std::time::Duration::from_secs(self.jwks_max_stale_secs.unwrap_or(12 * 3600)),
        })
    }
}

/// An external system: the adapter that speaks its format, what it is sent
/// and how.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFile {
    /// Its id, e.g. `psykiatri-regionh`.
    pub name: String,
    /// The adapter (by name, from `[adapters] directory`).
    pub adapter: String,
    /// The adapter's `from-canonical` target, e.g. `xdis91`.
    #[serde(default)]
    pub target: String,
    /// Event types it is sent, e.g. `["correspondence_recorded"]`.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// How it receives: `{ kind = "http", url = "…" }`, `{ kind = "file", dir = "…" }`, `{ kind = "pull" }`.
    #[serde(default)]
    pub transport: TransportFile,
    /// Attempts before a delivery is dead-lettered (default 8).
    pub max_attempts: Option<u32>,
    /// First retry delay in milliseconds (default 2000); doubles per attempt.
    pub backoff_base_ms: Option<u64>,
    /// Longest retry delay in milliseconds (default 600000).
    pub backoff_max_ms: Option<u64>,
    /// A system of this municipality (CVR): it reads and is sent its cases in
    /// full. With `sector`: the one municipality whose cases that sector's
    /// system serves (e.g. the municipality's jobcentre).
    pub municipality: Option<String>,
    /// Another sector's system: `jobcentre`, `psychiatry`, `addiction_treatment`, `health`, `other`.
    pub sector: Option<String>,
    /// The consent scope covering a sector system (default by sector, e.g. `share:jobcenter`).
    pub consent_scope: Option<String>,
    /// The client id of its client-credentials tokens.
    pub client_id: Option<String>,
    /// SHA-256 fingerprints (hex) of its client certificates.
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    /// Settings its adapter gets with every batch sent to it, e.g. the
    /// identifiers a message infrastructure registered (see the adapter's
    /// README for the keys it reads).
    #[serde(default)]
    pub adapter_settings: std::collections::BTreeMap<String, String>,
}

/// A system's transport in the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransportFile {
    /// Sends only.
    #[default]
    None,
    /// POST to a URL.
    Http {
        /// The URL: `https://…`, or `http://…` on loopback.
        url: String,
        /// PEM file of the CA(s) an `https://` receiver's certificate must
        /// chain to (default: the public web roots bundled with bro).
        ca: Option<PathBuf>,
        /// PEM file of the client certificate (chain) bro presents to it.
        client_certificate: Option<PathBuf>,
        /// PEM file of that certificate's private key.
        client_key: Option<PathBuf>,
        /// Allows `http://` off loopback (people's data in clear on the network).
        #[serde(default)]
        allow_plaintext: bool,
    },
    /// A drop directory.
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// Streams over gRPC.
    Pull,
}

impl SystemFile {
    /// What the system may read and be sent.
    pub fn access(&self) -> anyhow::Result<bro_server::systems::SystemAccess> {
        use bro_api::v1::Sector;
        use bro_server::systems::SystemAccess;
        Ok(match (&self.municipality, &self.sector) {
            (Some(cvr), None) => SystemAccess::Municipal { cvr: cvr.clone() },
            (_, Some(sector)) => {
                let sector = match sector.as_str() {
                    "jobcentre" => Sector::Jobcentre,
                    "psychiatry" => Sector::Psychiatry,
                    "addiction_treatment" => Sector::AddictionTreatment,
                    "health" => Sector::Health,
                    "other" => Sector::Other,
                    other => bail!(
                        "system {:?}: sector {other:?} is not one of jobcentre, psychiatry, addiction_treatment, health, other",
                        self.name
                    ),
                };
                let scope = match (&self.consent_scope, SystemAccess::default_scope(sector)) {
                    (Some(scope), _) => scope.clone(),
                    (None, Some(default)) => default.to_owned(),
                    (None, None) => bail!("system {:?}: sector \"other\" needs a consent_scope", self.name),
                };
                SystemAccess::Sector { sector, scope }
            }
            (None, None) => bail!(
                "system {:?} is bound to no municipality and no sector: give it `municipality` (a system of that \
                 municipality), `sector` (another sector's system), or both (a sector's system serving one municipality)",
                self.name
            ),
        })
    }

    /// The server's form of this system.
    pub fn to_system(&self) -> anyhow::Result<bro_server::systems::SystemConfig> {
        use bro_server::systems::{SystemConfig, Transport};
        let transport = match &self.transport {
            TransportFile::None => Transport::None,
            TransportFile::Http { url, .. } => Transport::Http { url: url.clone() },
            TransportFile::File { dir } => Transport::File { dir: dir.clone() },
            TransportFile::Pull => Transport::Pull,
        };
        let subscribe: Vec<&str> = self.subscribe.iter().map(String::as_str).collect();
        let mut system = SystemConfig::new(&self.name, &self.adapter, &self.target, &subscribe, transport);
        if let Some(n) = self.max_attempts {
            system.max_attempts = n;
        }
        if let Some(ms) = self.backoff_base_ms {
            system.backoff_base = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = self.backoff_max_ms {
            system.backoff_max = std::time::Duration::from_millis(ms);
        }
        system.access = self.access()?;
        if self.sector.is_some() {
            // A sector system with a municipality serves only that municipality's cases.
            system.serves = self.municipality.clone();
        }
        system.client_id = self.client_id.clone();
        system.certificates = self.certificate_sha256.iter().map(|f| f.replace(':', "").to_ascii_lowercase()).collect();
        for (key, value) in &self.adapter_settings {
            let fine = |t: &str, max: usize| t.len() <= max && !t.chars().any(char::is_control);
            if key.is_empty() || !fine(key, 128) || !fine(value, 1024) {
                bail!(
                    "system {:?}: adapter setting {key:?} must have a name of 1 to 128 characters and a value of at most 1024, without control characters",
                    self.name
                );
            }
        }
        system.adapter_settings = self.adapter_settings.clone();
        if let TransportFile::Http { ca, client_certificate, client_key, allow_plaintext, url } = &self.transport {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p)
                    .with_context(|| format!("system {:?}: cannot read {}", self.name, p.display()))
            };
            let client = match (client_certificate, client_key) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                _ => bail!("system {:?}: client_certificate and client_key go together", self.name),
            };
            if ca.is_some() || client.is_some() {
                let ca = ca.as_ref().map(read).transpose()?;
                let client = client.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
                let tls = bro_server::systems::ReceiverTls::new(ca.as_deref(), client)
                    .map_err(|e| anyhow::anyhow!("system {:?}: {e}", self.name))?;
                system.receiver_tls = Some(tls);
            }
            if *allow_plaintext {
                tracing::warn!(system = %self.name, url = %url, "allow_plaintext: deliveries to this system may cross the network unencrypted");
            }
            system.plaintext_off_loopback = *allow_plaintext;
        }
        Ok(system)
    }
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))
    }
}

/// The effective settings of `bro serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the event store lives (and, without `store_url`, the audit log).
    pub data_dir: PathBuf,
    /// The event store and audit log on PostgreSQL instead of `data_dir`.
    pub store_url: Option<String>,
    /// How long a delivery lease lasts between renewals, in seconds.
    pub delivery_lease_secs: u64,
    /// The audit head export.
    pub head_export: bro_server::jobs::HeadExport,
    /// The audit head signing key file.
    pub audit_signing_key: Option<PathBuf>,
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin_listen: Option<SocketAddr>,
    /// Log format.
    pub log_format: LogFormat,
    /// Largest request in bytes.
    pub max_request_bytes: usize,
    /// Unary call deadline in seconds.
    pub request_timeout_secs: u64,
    /// How long a stop waits for open connections, in seconds.
    pub shutdown_grace_secs: u64,
    /// Server streams: per caller, and for how long (from the file only).
    pub streams: bro_server::context::StreamLimits,
    /// HTTP/2 limits (from the file only).
    pub http2: bro_server::Http2Limits,
    /// WebAssembly adapters (from the file only).
    pub adapters: crate::adapters::AdaptersConfig,
    /// External systems (from the file only).
    pub systems: Vec<SystemFile>,
    /// The master key file.
    pub key_file: Option<PathBuf>,
    /// TLS (from the file only).
    pub tls: Option<TlsFile>,
    /// The identity provider (from the file only).
    pub identity: Option<IdentityFile>,
    /// The per-client rate limit.
    pub rate_limit: bro_server::access::ratelimit::RateLimit,
    /// Where plan pages are served.
    pub pages_listen: Option<SocketAddr>,
    /// The public base URL of plan links.
    pub pages_base_url: Option<String>,
    /// The proxies whose `X-Forwarded-For` the plan pages believe (from the file only).
    pub pages_trusted_proxies: bro_server::plans::http::TrustedProxies,
    /// The § 78 coordination checks (from the file only).
    pub coordination: bro_rules::coordination::CoordinationPolicy,
}

/// Values given on the command line or in the environment (clap merges both).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML).
    #[arg(long, env = "BRO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded event store.
    #[arg(long, env = "BRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The event store and audit log on PostgreSQL: postgres://user@host/db.
    #[arg(long, env = "BRO_STORE")]
    pub store: Option<String>,
    /// gRPC listen address, e.g. 127.0.0.1:50051.
    #[arg(long, env = "BRO_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin listen address for /metrics and /healthz, e.g. 127.0.0.1:9464.
    #[arg(long, env = "BRO_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "BRO_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Largest request message in bytes.
    #[arg(long, env = "BRO_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Deadline of a unary call in seconds.
    #[arg(long, env = "BRO_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Seconds a stop (SIGTERM) waits for open connections before closing them.
    #[arg(long, env = "BRO_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// The master key file (`bro keygen`).
    #[arg(long, env = "BRO_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Listen address of the parents' plan pages (loopback), e.g. 127.0.0.1:8080.
    #[arg(long, env = "BRO_PAGES_LISTEN")]
    pub pages_listen: Option<SocketAddr>,
    /// Public base URL of plan links, e.g. https://plan.kommune.dk.
    #[arg(long, env = "BRO_PAGES_BASE_URL")]
    pub pages_base_url: Option<String>,
}

impl Overrides {
    /// Resolves the settings: flags and environment over the file over defaults.
    pub fn resolve(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let settings = Settings {
            data_dir: self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("bro-data")),
            store_url: self.store.clone().or(file.store.as_ref().and_then(|s| s.url.clone())),
            delivery_lease_secs: file.store.as_ref().and_then(|s| s.delivery_lease_secs).unwrap_or(30),
            head_export: bro_server::jobs::HeadExport {
                every: std::time::Duration::from_secs(
                    file.audit.as_ref().and_then(|a| a.head_export_secs).unwrap_or(300),
                ),
                file: file.audit.as_ref().and_then(|a| a.head_export_file.clone()),
            },
            audit_signing_key: file.audit.as_ref().and_then(|a| a.signing_key.clone()),
            listen: self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            admin_listen: self.admin_listen.or(file.admin_listen),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            max_request_bytes: self.max_request_bytes.or(file.max_request_bytes).unwrap_or(4 * 1024 * 1024),
            request_timeout_secs: self.request_timeout_secs.or(file.request_timeout_secs).unwrap_or(30),
            shutdown_grace_secs: self.shutdown_grace_secs.or(file.shutdown_grace_secs).unwrap_or(10),
            streams: {
                let default = bro_server::context::StreamLimits::default();
                bro_server::context::StreamLimits {
                    per_caller: file.max_streams_per_caller.unwrap_or(default.per_caller),
                    max_lifetime: file.max_stream_secs.map_or(default.max_lifetime, std::time::Duration::from_secs),
                }
            },
            http2: {
                let default = bro_server::Http2Limits::default();
                let h = file.http2.clone().unwrap_or_default();
                let secs = |v: Option<u64>, d: std::time::Duration| v.map_or(d, std::time::Duration::from_secs);
                bro_server::Http2Limits {
                    max_concurrent_streams: h.max_concurrent_streams.unwrap_or(default.max_concurrent_streams),
                    keepalive_interval: secs(h.keepalive_secs, default.keepalive_interval),
                    keepalive_timeout: secs(h.keepalive_timeout_secs, default.keepalive_timeout),
                    max_connection_age: secs(h.max_connection_age_secs, default.max_connection_age),
                    ..default
                }
            },
            adapters: file.adapters.unwrap_or_default(),
            systems: file.systems,
            key_file: self.key_file.clone().or(file.key_file),
            tls: file.tls,
            identity: file.identity,
            rate_limit: file
                .rate_limit
                .map(|r| bro_server::access::ratelimit::RateLimit { per_second: r.per_second, burst: r.burst })
                .unwrap_or_default(),
            pages_listen: self.pages_listen.or(file.pages_listen),
            pages_base_url: self.pages_base_url.clone().or(file.pages_base_url),
            pages_trusted_proxies: bro_server::plans::http::TrustedProxies::parse(
                file.pages_trusted_proxies.as_deref().unwrap_or_default(),
            )
            .map_err(|e| anyhow::anyhow!("pages_trusted_proxies: {e}"))?,
            coordination: file.coordination.unwrap_or_default().to_policy()?,
        };
        if let Some(url) = &settings.store_url {
            check_store_url(url)?;
        }
        if !(1..=86_400).contains(&settings.head_export.every.as_secs()) {
            bail!("[audit] head_export_secs must be between 1 and 86400");
        }
        if !(2..=3600).contains(&settings.delivery_lease_secs) {
            bail!("[store] delivery_lease_secs must be between 2 and 3600");
        }
        if settings.pages_listen.is_some_and(|a| !a.ip().is_loopback()) {
            bail!("pages_listen must be a loopback address: serve plan pages behind a TLS-terminating proxy");
        }
        if settings.pages_base_url.is_some() && settings.pages_listen.is_none() {
            bail!("pages_base_url needs pages_listen");
        }
        if !(settings.rate_limit.per_second > 0.0 && settings.rate_limit.burst >= 1.0) {
            bail!("rate_limit needs per_second > 0 and burst >= 1");
        }
        if let Some(identity) = &settings.identity {
            identity.to_settings()?;
        }
        if !(1024..=256 * 1024 * 1024).contains(&settings.max_request_bytes) {
            bail!("max_request_bytes must be between 1 KiB and 256 MiB, not {}", settings.max_request_bytes);
        }
        if settings.request_timeout_secs == 0 {
            bail!("request_timeout_secs must be at least 1");
        }
        if settings.streams.per_caller == 0 || settings.streams.max_lifetime.is_zero() {
            bail!("max_streams_per_caller and max_stream_secs must be at least 1");
        }
        let h = &settings.http2;
        if h.max_concurrent_streams == 0 || h.keepalive_interval.is_zero() || h.keepalive_timeout.is_zero() {
            bail!("[http2] max_concurrent_streams, keepalive_secs and keepalive_timeout_secs must be at least 1");
        }
        if h.max_connection_age < std::time::Duration::from_secs(60) {
            bail!("[http2] max_connection_age_secs must be at least 60");
        }
        let systems: Vec<_> = settings.systems.iter().map(SystemFile::to_system).collect::<anyhow::Result<_>>()?;
        bro_server::systems::Systems::new(systems).map_err(|e| anyhow::anyhow!("invalid [[systems]]: {e}"))?;
        if !settings.systems.is_empty() && settings.adapters.directory.is_none() {
            bail!("[[systems]] need adapters: set [adapters] directory");
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/bro\"\nlog_format = \"json\"\n").unwrap();
        let o = Overrides {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let s = o.resolve().unwrap();
        assert_eq!(s.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/srv/bro"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.max_request_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn the_adapters_section_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        std::fs::write(
            &path,
            "[adapters]\ndirectory = \"/etc/bro/adapters\"\nallow_unsigned = true\n\
             [adapters.vendors.acme]\nkey = \"AAAA\"\nadapters = [\"acme-journal\"]\n\
             [adapters.limits_by_adapter.medcom]\ndeadline_ms = 250\nfuel = 500000000\nmax_concurrent_calls = 4\n",
        )
        .unwrap();
        let s = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.adapters.directory, Some(PathBuf::from("/etc/bro/adapters")));
        assert!(s.adapters.allow_unsigned);
        assert_eq!(s.adapters.vendors["acme"].adapters, ["acme-journal"]);
        let medcom = &s.adapters.limits_by_adapter["medcom"];
        assert_eq!(
            (medcom.deadline_ms, medcom.fuel, medcom.max_concurrent_calls),
            (Some(250), Some(500_000_000), Some(4))
        );
    }

    #[test]
    fn systems_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        let config = "[adapters]\ndirectory = \"/etc/bro/adapters\"\n\
             [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\ntarget = \"xdis91\"\n\
             sector = \"psychiatry\"\nsubscribe = [\"correspondence_recorded\"]\ntransport = { kind = \"http\", url = \"http://127.0.0.1:9000/in\" }\n\
             max_attempts = 3\n\
             [[systems]]\nname = \"journal\"\nadapter = \"sdi\"\nmunicipality = \"29189846\"\n";
        std::fs::write(&path, config).unwrap();
        let s = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.systems.len(), 2);
        let psych = s.systems[0].to_system().unwrap();
        assert_eq!(psych.transport, bro_server::systems::Transport::Http { url: "http://127.0.0.1:9000/in".into() });
        assert_eq!(psych.max_attempts, 3);
        assert_eq!(s.systems[1].transport, TransportFile::None);
        std::fs::write(&path, config.replace("correspondence_recorded", "letter_sent")).unwrap();
        let err = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("subscribes to \"letter_sent\""), "{err:#}");
        std::fs::write(&path, config.replace("name = \"journal\"", "name = \"psykiatri\"")).unwrap();
        let err = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("configured twice"), "{err:#}");
    }

    #[test]
    fn the_coordination_table_extends_or_replaces_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        let rule = "[[coordination.tag_conflicts]]\nid = \"night-vs-contact\"\ntag = \"night-shift\"\n\
                    against = \"aim:contact\"\nwhy = \"night shifts leave no energy for the contact visits\"\n";
        std::fs::write(&path, format!("[coordination]\nmax_meetings_per_week = 5\n{rule}")).unwrap();
        let s = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.coordination.max_meetings_per_week, 5);
        let defaults = bro_rules::coordination::CoordinationPolicy::default().tag_conflicts.len();
        assert_eq!(s.coordination.tag_conflicts.len(), defaults + 1);
        std::fs::write(&path, format!("[coordination]\nreplace_default_tag_conflicts = true\n{rule}")).unwrap();
        let s = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.coordination.tag_conflicts.len(), 1);
        std::fs::write(&path, "[coordination]\nmax_meetings_per_week = 0\n").unwrap();
        let err = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("max_meetings_per_week"), "{err}");
        std::fs::write(&path, rule.replace("night-shift", "Night Shift")).unwrap();
        let err = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("1-63 of a-z"), "{err}");
        let err = Overrides { pages_listen: Some("10.0.0.1:8080".parse().unwrap()), ..Default::default() }
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:6000\"\n").unwrap();
        let err = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `listne`"), "{err:#}");
        let err = Overrides { max_request_bytes: Some(1), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("max_request_bytes"), "{err}");
    }

    #[test]
    fn the_replica_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        let defaults = Overrides::default().resolve().unwrap();
        assert_eq!((defaults.delivery_lease_secs, defaults.head_export.every.as_secs()), (30, 300));
        assert_eq!(defaults.shutdown_grace_secs, 10, "a stop waits 10 s for open connections");
        assert_eq!((defaults.streams.per_caller, defaults.streams.max_lifetime.as_secs()), (64, 3600));
        assert_eq!(defaults.http2.max_concurrent_streams, 200);
        assert_eq!(defaults.head_export.file, None);
        std::fs::write(
            &path,
            "max_streams_per_caller = 4\nmax_stream_secs = 600\n\
             [audit]\nhead_export_secs = 60\nhead_export_file = \"/var/lib/bro/heads\"\nsigning_key = \"/etc/bro/audit.key\"\n\
             [http2]\nmax_concurrent_streams = 50\nkeepalive_secs = 30\nmax_connection_age_secs = 600\n\
             [store]\nurl = \"postgres://bro@db/bro\"\ndelivery_lease_secs = 10\n",
        )
        .unwrap();
        let s = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!((s.delivery_lease_secs, s.head_export.every.as_secs()), (10, 60));
        assert_eq!(s.head_export.file, Some(PathBuf::from("/var/lib/bro/heads")));
        assert_eq!(s.audit_signing_key, Some(PathBuf::from("/etc/bro/audit.key")));
        assert_eq!((s.streams.per_caller, s.streams.max_lifetime.as_secs()), (4, 600));
        let h = &s.http2;
        assert_eq!(
            (h.max_concurrent_streams, h.keepalive_interval.as_secs(), h.max_connection_age.as_secs()),
            (50, 30, 600)
        );
        for (bad, named) in [
            ("max_streams_per_caller = 0\n", "max_streams_per_caller"),
            ("[http2]\nmax_connection_age_secs = 5\n", "max_connection_age_secs"),
            ("[http2]\nkeepalive = 5\n", "unknown field `keepalive`"),
            ("[store]\ndelivery_lease_secs = 1\n", "delivery_lease_secs"),
            ("[audit]\nhead_export_secs = 0\n", "head_export_secs"),
            ("[audit]\nhead_export_every = 5\n", "unknown field `head_export_every`"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap_err();
            assert!(format!("{err:#}").contains(named), "{bad}: {err:#}");
        }
    }

    #[test]
    fn a_systems_adapter_settings_are_read_and_checked() {
        let system = |settings: &str| -> SystemFile {
            toml::from_str(&format!(
                "name = \"sdi\"\nadapter = \"sdi\"\nmunicipality = \"29189846\"\nadapter_settings = {settings}\n"
            ))
            .unwrap()
        };
        let read = system(r#"{ beskedtype = "a1b2", sending_system = "c3d4" }"#).to_system().unwrap();
        let expected: Vec<(&str, &str)> = vec![("beskedtype", "a1b2"), ("sending_system", "c3d4")];
        assert_eq!(read.adapter_settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), expected);
        assert!(system("{}").to_system().unwrap().adapter_settings.is_empty());
        let https = |transport: &str| -> anyhow::Result<bro_server::systems::SystemConfig> {
            let text =
                format!("name = \"r\"\nadapter = \"medcom\"\nmunicipality = \"29189846\"\ntransport = {transport}\n");
            toml::from_str::<SystemFile>(&text).unwrap().to_system()
        };
        let err = https(r#"{ kind = "http", url = "https://r.dk/in", ca = "/nonexistent/ca.pem" }"#).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/ca.pem"), "{err:#}");
        let err = https(r#"{ kind = "http", url = "https://r.dk/in", client_key = "/k.pem" }"#).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        let open = https(r#"{ kind = "http", url = "http://10.0.0.5/in", allow_plaintext = true }"#).unwrap();
        assert!(open.plaintext_off_loopback && open.receiver_tls.is_none());
        let unbound: SystemFile = toml::from_str("name = \"x\"\nadapter = \"medcom\"\n").unwrap();
        let err = unbound.to_system().unwrap_err().to_string();
        assert!(err.contains("bound to no municipality and no sector"), "{err}");
        for bad in [r#"{ "" = "x" }"#, r#"{ a = "line\nbreak" }"#] {
            let err = system(bad).to_system().unwrap_err();
            assert!(err.to_string().contains("adapter setting"), "{bad}: {err}");
        }
    }
}
