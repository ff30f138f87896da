//! The adapters a gateway has loaded, by name, swapped atomically on reload.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::cache::CompiledCache;
use crate::package::{Package, TrustPolicy};
use crate::{AdapterEngine, AdapterLimits, HostError, LoadedAdapter};

/// Loaded adapters. A reload builds and checks the new version completely
/// before it replaces the old one; calls in flight hold an `Arc` to the old
/// version and finish on it.
pub struct AdapterRegistry {
    engine: Arc<AdapterEngine>,
    cache: Option<CompiledCache>,
    trust: TrustPolicy,
    adapters: RwLock<HashMap<String, Arc<LoadedAdapter>>>,
    /// The package version in service, by adapter name.
    versions: RwLock<HashMap<String, String>>,
}

impl AdapterRegistry {
    /// An empty registry.
    pub fn new(engine: Arc<AdapterEngine>, cache: Option<CompiledCache>, trust: TrustPolicy) -> Self {
        AdapterRegistry {
            engine,
            cache,
            trust,
            adapters: RwLock::new(HashMap::new()),
            versions: RwLock::new(HashMap::new()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<AdapterEngine> {
        &self.engine
    }

    /// Loads (or reloads) the package in `dir`: reads it, verifies its
    /// signature, refuses a lower version than the one in service unless
    /// the policy allows a rollback, compiles or fetches its code, checks it
    /// (and its probe message), then swaps it in. On any failure the version
    /// already loaded stays in service.
    pub fn load_package(&self, dir: &Path, limits: AdapterLimits) -> Result<Arc<LoadedAdapter>, HostError> {
        let package = Package::read(dir)?;
        let signer = package.verify(&self.trust)?;
        let name = package.manifest.name.clone();
        let running = self.versions.read().ok().and_then(|v| v.get(&name).cloned());
        if let Some(running) = running {
            self.check_version(&name, &running, &package.manifest.version)?;
        }
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &name, &package.wasm)?.0,
            None => self.engine.compile(&name, &package.wasm)?,
        };
        let mut loaded =
            LoadedAdapter::load(self.engine.clone(), &name, &component, limits, package.manifest.sha256.clone())?;
        if let Some(probe) = package.probe_message() {
            loaded = loaded.with_probe(probe)?;
        }
        let loaded = Arc::new(loaded);
        if loaded.info().name != name {
            return Err(HostError::Package {
                adapter: name.clone(),
                reason: format!("the component describes itself as {:?}, the manifest as {name:?}", loaded.info().name),
            });
        }
        let previous = self
            .adapters
            .write()
            .map_err(|_| HostError::Host { adapter: name.clone(), reason: "registry lock poisoned".into() })?
            .insert(name.clone(), loaded.clone());
        if let Ok(mut versions) = self.versions.write() {
            versions.insert(name.clone(), package.manifest.version.clone());
        }
        tracing::info!(
            adapter = %name,
            version = %package.manifest.version,
            signer = signer.as_deref().unwrap_or("UNSIGNED"),
            replaced = previous.as_ref().map(|p| p.info().version.as_str()).unwrap_or("-"),
            "adapter loaded"
        );
        Ok(loaded)
    }

    /// Refuses `candidate` if it is lower than `running` and rollbacks are not allowed.
    fn check_version(&self, name: &str, running: &str, candidate: &str) -> Result<(), HostError> {
        let parse = |v: &str| semver::Version::parse(v).ok();
        let (Some(old), Some(new)) = (parse(running), parse(candidate)) else { return Ok(()) };
        if new < old && !self.trust.allow_downgrade {
            return Err(HostError::Package {
                adapter: name.to_owned(),
                reason: format!(
                    "version {new} is lower than {old} in service; a rollback needs the setting adapters.allow_downgrade"
                ),
            });
        }
        Ok(())
    }

    /// Adds an adapter loaded by the caller (embedding and tests), replacing
    /// one of the same name.
    pub fn insert(&self, adapter: Arc<LoadedAdapter>) -> Result<(), HostError> {
        let name = adapter.name().to_owned();
        self.adapters
            .write()
            .map_err(|_| HostError::Host { adapter: name.clone(), reason: "registry lock poisoned".into() })?
            .insert(name, adapter);
        Ok(())
    }

    /// The adapter currently in service under `name`.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedAdapter>, HostError> {
        self.adapters
            .read()
            .map_err(|_| HostError::Host { adapter: name.to_owned(), reason: "registry lock poisoned".into() })?
            .get(name)
            .cloned()
            .ok_or_else(|| HostError::NotLoaded(name.to_owned()))
    }

    /// Names of loaded adapters, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.adapters.read().map(|a| a.keys().cloned().collect()).unwrap_or_default();
        names.sort();
        names
    }
}
