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
    /// WebAssembly adapters.
    pub adapters: Option<crate::adapters::AdaptersConfig>,
    /// External systems (`[[systems]]`).
    #[serde(default)]
    pub systems: Vec<SystemFile>,
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
        /// The URL (`http://…`).
        url: String,
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
    /// The server's form of this system.
    pub fn to_system(&self) -> bro_server::pipeline::SystemConfig {
        use bro_server::pipeline::{SystemConfig, Transport};
        let transport = match &self.transport {
            TransportFile::None => Transport::None,
            TransportFile::Http { url } => Transport::Http { url: url.clone() },
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
        system
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the event store lives.
    pub data_dir: PathBuf,
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
    /// WebAssembly adapters (from the file only).
    pub adapters: crate::adapters::AdaptersConfig,
    /// External systems (from the file only).
    pub systems: Vec<SystemFile>,
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
            listen: self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            admin_listen: self.admin_listen.or(file.admin_listen),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            max_request_bytes: self.max_request_bytes.or(file.max_request_bytes).unwrap_or(4 * 1024 * 1024),
            request_timeout_secs: self.request_timeout_secs.or(file.request_timeout_secs).unwrap_or(30),
            adapters: file.adapters.unwrap_or_default(),
            systems: file.systems,
        };
        if !(1024..=256 * 1024 * 1024).contains(&settings.max_request_bytes) {
            bail!("max_request_bytes must be between 1 KiB and 256 MiB, not {}", settings.max_request_bytes);
        }
        if settings.request_timeout_secs == 0 {
            bail!("request_timeout_secs must be at least 1");
        }
        let systems: Vec<_> = settings.systems.iter().map(SystemFile::to_system).collect();
        bro_server::pipeline::Systems::new(systems).map_err(|e| anyhow::anyhow!("invalid [[systems]]: {e}"))?;
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
             [adapters.trusted_keys]\nacme = \"AAAA\"\n[adapters.limits_by_adapter.medcom]\ndeadline_ms = 250\n",
        )
        .unwrap();
        let s = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.adapters.directory, Some(PathBuf::from("/etc/bro/adapters")));
        assert!(s.adapters.allow_unsigned);
        assert_eq!(s.adapters.limits_by_adapter["medcom"].deadline_ms, Some(250));
    }

    #[test]
    fn systems_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bro.toml");
        let config = "[adapters]\ndirectory = \"/etc/bro/adapters\"\n\
             [[systems]]\nname = \"psykiatri\"\nadapter = \"medcom\"\ntarget = \"xdis91\"\n\
             subscribe = [\"correspondence_recorded\"]\ntransport = { kind = \"http\", url = \"http://127.0.0.1:9000/in\" }\n\
             max_attempts = 3\n\
             [[systems]]\nname = \"journal\"\nadapter = \"sdi\"\n";
        std::fs::write(&path, config).unwrap();
        let s = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(s.systems.len(), 2);
        let psych = s.systems[0].to_system();
        assert_eq!(psych.transport, bro_server::pipeline::Transport::Http { url: "http://127.0.0.1:9000/in".into() });
        assert_eq!(psych.max_attempts, 3);
        assert_eq!(s.systems[1].transport, TransportFile::None);
        std::fs::write(&path, config.replace("correspondence_recorded", "letter_sent")).unwrap();
        let err = Overrides { config: Some(path.clone()), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("unknown event type \"letter_sent\""), "{err:#}");
        std::fs::write(&path, config.replace("name = \"journal\"", "name = \"psykiatri\"")).unwrap();
        let err = Overrides { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("configured twice"), "{err:#}");
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
}
