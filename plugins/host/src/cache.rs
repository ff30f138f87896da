//! The compiled-code cache: components compiled once, kept on disk keyed by
//! the component's hash and the engine's settings, and deserialized only if
//! this host compiled them.
//!
//! Deserializing compiled code runs it without validation, so an artifact
//! must never come from anyone else. Each artifact is stored with an
//! HMAC-SHA256 under a secret key that the cache creates on first use
//! (`cache.key`, mode 0600, never leaves the directory); an artifact whose MAC
//! does not verify is recompiled and overwritten, never loaded. Key handling:
//! delete `cache.key` to invalidate every artifact; back it up never.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::component::Component;

use crate::HostError;
use crate::engine::AdapterEngine;
use crate::package::sha256_hex;

type HmacSha256 = Hmac<Sha256>;

const KEY_FILE: &str = "cache.key";

/// A directory of compiled components.
pub struct CompiledCache {
    dir: PathBuf,
    key: [u8; 32],
}

fn cache_error(reason: String) -> HostError {
    HostError::Host { adapter: "-".into(), reason }
}

/// How a component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from a verified artifact.
    Hit,
    /// Compiled now (and stored).
    Compiled,
}

impl CompiledCache {
    /// Opens (creating) a cache directory and its secret key.
    pub fn open(dir: &Path) -> Result<CompiledCache, HostError> {
        std::fs::create_dir_all(dir).map_err(|e| cache_error(format!("cannot create {}: {e}", dir.display())))?;
        let key_path = dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                key
            }
            _ => {
                let mut key = [0u8; 32];
                getrandom::getrandom(&mut key)
                    .map_err(|e| cache_error(format!("no randomness for the cache key: {e}")))?;
                write_private(&key_path, &key)?;
                key
            }
        };
        Ok(CompiledCache { dir: dir.to_path_buf(), key })
    }

    fn mac(&self, bytes: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(bytes);
        mac
    }

    /// The cached component for `wasm`, or a fresh compilation (then cached).
    pub fn load_or_compile(
        &self,
        engine: &AdapterEngine,
        name: &str,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), HostError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.wasmtime().precompile_compatibility_hash().hash(&mut hasher);
        let id = format!("{}-{:016x}", sha256_hex(wasm), hasher.finish());
        let artifact = self.dir.join(format!("{id}.cwasm"));
        let mac_path = self.dir.join(format!("{id}.mac"));
        if let (Ok(bytes), Ok(mac)) = (std::fs::read(&artifact), std::fs::read(&mac_path)) {
            if self.mac(&bytes).verify_slice(&mac).is_ok() {
                // SAFETY: the bytes are an artifact this cache wrote with
                // `Component::serialize` for an engine with the same
                // compatibility hash, authenticated by an HMAC under a key
                // that never leaves the cache directory.
                #[allow(unsafe_code)]
                let component = unsafe { Component::deserialize(engine.wasmtime(), &bytes) };
                match component {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => tracing::warn!(adapter = name, error = %e, "cached artifact unusable; recompiling"),
                }
            } else {
                tracing::warn!(adapter = name, artifact = %artifact.display(), "cached artifact fails authentication; recompiling");
            }
        }
        let component = engine.compile(name, wasm)?;
        let bytes = component.serialize().map_err(|e| cache_error(format!("cannot serialize {name}: {e:#}")))?;
        let tag = self.mac(&bytes).finalize().into_bytes();
        write_atomically(&artifact, &bytes)?;
        write_atomically(&mac_path, &tag)?;
        Ok((component, CacheOutcome::Compiled))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| cache_error(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| cache_error(format!("cannot write {}: {e}", path.display())))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| cache_error(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes).map_err(|e| cache_error(format!("cannot write {}: {e}", path.display())))
}
