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
                write_atomically(&key_path, &key)?;
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

/// Puts `bytes` at `path` so that after a crash or a power loss the path
/// holds the old file or the whole new one: a temporary file, synced,
/// renamed into place, and the directory synced (the rename is durable only
/// then). Readable by the owner only.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    use std::io::Write;
    let failed = |e: std::io::Error| cache_error(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // A partial file a crash left keeps its mode if reopened: start afresh.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(failed)?;
    sync_dir(path).map_err(failed)
}

/// Syncs the directory holding `path`, so a file created or renamed there survives a power loss.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}
