//! The gateway's adapters: configuration, loading every package of the
//! adapter directory at start, and reloading on SIGHUP (new and changed
//! packages are swapped in atomically; a package that fails to load leaves
//! the version in service untouched).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bro_plugin_host::cache::CompiledCache;
use bro_plugin_host::package::{self, TrustPolicy};
use bro_plugin_host::{AdapterEngine, AdapterLimits, AdapterRegistry, EngineOptions};
use serde::Deserialize;

/// Limits in the configuration; absent values keep the defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Deadline per call, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory, in MiB.
    pub memory_mib: Option<usize>,
    /// Largest input, in KiB.
    pub max_input_kib: Option<usize>,
    /// Largest output, in KiB.
    pub max_output_kib: Option<usize>,
    /// Log bytes per call, in KiB.
    pub max_log_kib: Option<usize>,
}

impl LimitsConfig {
    fn apply(&self, mut limits: AdapterLimits) -> AdapterLimits {
        if let Some(ms) = self.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(m) = self.memory_mib {
            limits.memory_bytes = m << 20;
        }
        if let Some(k) = self.max_input_kib {
            limits.max_input_bytes = k << 10;
        }
        if let Some(k) = self.max_output_kib {
            limits.max_output_bytes = k << 10;
        }
        if let Some(k) = self.max_log_kib {
            limits.max_log_bytes = k << 10;
        }
        limits
    }
}

/// `[adapters]` in the configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdaptersConfig {
    /// Directory whose subdirectories are adapter packages.
    pub directory: Option<PathBuf>,
    /// Where compiled code is cached (default: `<data_dir>/adapter-cache`).
    pub cache_dir: Option<PathBuf>,
    /// Trusted vendor public keys (base64 ed25519), by vendor name.
    #[serde(default)]
    pub trusted_keys: BTreeMap<String, String>,
    /// Load unsigned packages. Development only.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Default limits of every adapter.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Limits of one adapter, by name, over the defaults.
    #[serde(default)]
    pub limits_by_adapter: BTreeMap<String, LimitsConfig>,
    /// Consecutive failures before quarantine.
    pub quarantine_after: Option<u32>,
}

impl AdaptersConfig {
    fn limits_for(&self, name: &str) -> AdapterLimits {
        let base = self.limits.apply(AdapterLimits::default());
        self.limits_by_adapter.get(name).map_or(base.clone(), |l| l.apply(base))
    }

    fn trust(&self) -> anyhow::Result<TrustPolicy> {
        let mut trust = TrustPolicy { allow_unsigned: self.allow_unsigned, ..TrustPolicy::default() };
        for (vendor, key) in &self.trusted_keys {
            let key =
                package::parse_public_key(key).map_err(|e| anyhow::anyhow!("adapters.trusted_keys.{vendor}: {e}"))?;
            trust.keys.push((vendor.clone(), key));
        }
        Ok(trust)
    }
}

/// The gateway's adapters and where they come from.
pub struct Adapters {
    /// The registry the gateway calls.
    pub registry: Arc<AdapterRegistry>,
    config: AdaptersConfig,
}

impl Adapters {
    /// Builds the engine, the cache and the registry, and loads every package.
    pub fn start(config: &AdaptersConfig, data_dir: &Path) -> anyhow::Result<Adapters> {
        let mut options = EngineOptions::default();
        if let Some(n) = config.quarantine_after {
            options.quarantine_after = n;
        }
        let engine = Arc::new(AdapterEngine::new(options)?);
        let cache_dir = config.cache_dir.clone().unwrap_or_else(|| data_dir.join("adapter-cache"));
        let cache =
            CompiledCache::open(&cache_dir).with_context(|| format!("adapter cache in {}", cache_dir.display()))?;
        let registry = Arc::new(AdapterRegistry::new(engine, Some(cache), config.trust()?));
        if config.allow_unsigned {
            tracing::warn!("adapters.allow_unsigned is set: unsigned adapters will load (development only)");
        }
        let adapters = Adapters { registry, config: config.clone() };
        adapters.load_all();
        Ok(adapters)
    }

    /// Loads every package directory; returns how many loaded.
    pub fn load_all(&self) -> usize {
        let Some(dir) = &self.config.directory else { return 0 };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the adapter directory");
                return 0;
            }
        };
        let mut loaded = 0;
        let mut packages: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.join(package::MANIFEST_FILE).exists()).collect();
        packages.sort();
        for path in packages {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match self.registry.load_package(&path, self.config.limits_for(&name)) {
                Ok(adapter) => {
                    loaded += 1;
                    tracing::info!(adapter = adapter.name(), version = %adapter.info().version, "adapter ready");
                }
                Err(e) => tracing::error!(package = %path.display(), error = %e, "adapter not loaded"),
            }
        }
        loaded
    }

    /// Reloads all packages whenever SIGHUP arrives (until the task is dropped).
    pub fn reload_on_sighup(self: Arc<Self>) {
        #[cfg(unix)]
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::error!("cannot listen for SIGHUP; adapters will not hot-reload");
                return;
            };
            while hup.recv().await.is_some() {
                let this = self.clone();
                let loaded = tokio::task::spawn_blocking(move || this.load_all()).await.unwrap_or(0);
                tracing::info!(loaded, "adapters reloaded on SIGHUP");
            }
        });
    }
}
