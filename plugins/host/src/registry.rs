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
}

impl AdapterRegistry {
    /// An empty registry.
    pub fn new(engine: Arc<AdapterEngine>, cache: Option<CompiledCache>, trust: TrustPolicy) -> Self {
        AdapterRegistry { engine, cache, trust, adapters: RwLock::new(HashMap::new()) }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<AdapterEngine> {
        &self.engine
    }

    /// Loads (or reloads) the package in `dir`: reads it, verifies its
    /// signature, compiles or fetches its code, checks it, then swaps it in.
    /// On any failure the version already loaded stays in service.
    pub fn load_package(&self, dir: &Path, limits: AdapterLimits) -> Result<Arc<LoadedAdapter>, HostError> {
        let package = Package::read(dir)?;
        let signer = package.verify(&self.trust)?;
        let name = package.manifest.name.clone();
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &name, &package.wasm)?.0,
            None => self.engine.compile(&name, &package.wasm)?,
        };
        let loaded = Arc::new(LoadedAdapter::load(
            self.engine.clone(),
            &name,
            &component,
            limits,
            package.manifest.sha256.clone(),
        )?);
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
        tracing::info!(
            adapter = %name,
            version = %package.manifest.version,
            signer = signer.as_deref().unwrap_or("UNSIGNED"),
            replaced = previous.as_ref().map(|p| p.info().version.as_str()).unwrap_or("-"),
            "adapter loaded"
        );
        Ok(loaded)
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
