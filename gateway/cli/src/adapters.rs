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
use bro_plugin_host::package::{self, TrustPolicy, TrustedVendor};
use bro_plugin_host::{AdapterEngine, AdapterLimits, AdapterRegistry, EngineOptions};
use serde::Deserialize;

/// Limits in the configuration; absent values keep the defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Fuel (instruction budget) per call: the CPU limit.
    pub fuel: Option<u64>,
    /// Wall-clock backstop per call, in milliseconds (well above what the fuel takes).
    pub deadline_ms: Option<u64>,
    /// Memory, in MiB.
    pub memory_mib: Option<usize>,
    /// Largest input, in KiB.
    pub max_input_kib: Option<usize>,
    /// Largest output, in KiB.
    pub max_output_kib: Option<usize>,
    /// Log bytes per call, in KiB.
    pub max_log_kib: Option<usize>,
    /// Calls of the adapter that may run at the same time.
    pub max_concurrent_calls: Option<u32>,
    /// How long a call may wait for a free slot, in milliseconds, before it
    /// is answered busy (`UNAVAILABLE` with a retry delay).
    pub queue_timeout_ms: Option<u64>,
}

impl LimitsConfig {
    fn apply(&self, mut limits: AdapterLimits) -> AdapterLimits {
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(n) = self.max_concurrent_calls {
            limits.max_concurrent_calls = n;
        }
        if let Some(ms) = self.queue_timeout_ms {
            limits.queue_timeout = Duration::from_millis(ms);
        }
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

/// `[adapters.vendors.NAME]`: a vendor's key and the adapters it may sign.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// The vendor's public key (base64 ed25519).
    pub key: String,
    /// The adapter names this key's signature is accepted for.
    pub adapters: Vec<String>,
}

/// `[adapters]` in the configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdaptersConfig {
    /// Directory whose subdirectories are adapter packages.
    pub directory: Option<PathBuf>,
    /// Where compiled code is cached (default: `<data_dir>/adapter-cache`).
    pub cache_dir: Option<PathBuf>,
    /// Trusted vendors, by name: each key signs only the adapters listed for it.
    #[serde(default)]
    pub vendors: BTreeMap<String, VendorConfig>,
    /// The former list of keys trusted for every name; refused with a pointer to `vendors`.
    pub trusted_keys: Option<BTreeMap<String, String>>,
    /// Load unsigned packages. Development only.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Load a lower version than the one in service (an explicit rollback).
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Default limits of every adapter.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Limits of one adapter, by name, over the defaults.
    #[serde(default)]
    pub limits_by_adapter: BTreeMap<String, LimitsConfig>,
    /// Consecutive failures of an adapter's own before it is quarantined.
    pub quarantine_after: Option<u32>,
    /// Consecutive limit-breaking messages of one sender or receiver before
    /// that party alone is throttled.
    pub throttle_after: Option<u32>,
    /// Calls of all adapters that may run at the same time (below the pool's 64 instances).
    pub max_running_calls: Option<u32>,
}

impl AdaptersConfig {
    fn limits_for(&self, name: &str) -> AdapterLimits {
        let base = self.limits.apply(AdapterLimits::default());
        self.limits_by_adapter.get(name).map_or(base.clone(), |l| l.apply(base))
    }

    fn trust(&self) -> anyhow::Result<TrustPolicy> {
        if self.trusted_keys.is_some() {
            anyhow::bail!(
                "adapters.trusted_keys trusted a key for every adapter name and is no longer read: \
                 list each vendor as [adapters.vendors.NAME] with key = \"…\" and adapters = [\"…\"]"
            );
        }
        let mut trust = TrustPolicy {
            allow_unsigned: self.allow_unsigned,
            allow_downgrade: self.allow_downgrade,
            ..TrustPolicy::default()
        };
        for (vendor, config) in &self.vendors {
            let key = package::parse_public_key(&config.key)
                .map_err(|e| anyhow::anyhow!("adapters.vendors.{vendor}.key: {e}"))?;
            if config.adapters.is_empty() {
                anyhow::bail!("adapters.vendors.{vendor}.adapters is empty: name the adapters its key may sign");
            }
            trust.keys.push(TrustedVendor { vendor: vendor.clone(), key, adapters: config.adapters.clone() });
        }
        Ok(trust)
    }

    fn engine_options(&self) -> EngineOptions {
        let mut options = EngineOptions::default();
        if let Some(n) = self.quarantine_after {
            options.quarantine_after = n;
        }
        if let Some(n) = self.throttle_after {
            options.throttle_after = n;
        }
        if let Some(n) = self.max_running_calls {
            options.max_running_calls = n;
        }
        options
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
        let engine = Arc::new(AdapterEngine::new(config.engine_options())?);
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
