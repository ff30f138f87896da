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
        };
        if !(1024..=256 * 1024 * 1024).contains(&settings.max_request_bytes) {
            bail!("max_request_bytes must be between 1 KiB and 256 MiB, not {}", settings.max_request_bytes);
        }
        if settings.request_timeout_secs == 0 {
            bail!("request_timeout_secs must be at least 1");
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
