//! Adapter packages: a component, its `adapter.toml` manifest and an ed25519
//! signature, checked against the vendor keys the gateway trusts.
//!
//! The signature covers a canonical text of the manifest (name, version, WIT
//! version, the component's SHA-256 and the probe's), so a changed
//! component, a renamed adapter or a downgraded version all fail
//! verification. A vendor key is trusted for the adapter names configured
//! for it only: a valid signature by a key that may not sign the name is
//! refused, naming both.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{HostError, WIT_VERSION};

/// The manifest file's name in a package directory.
pub const MANIFEST_FILE: &str = "adapter.toml";
/// The signature file's name in a package directory.
pub const SIGNATURE_FILE: &str = "adapter.sig";

/// `adapter.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The adapter's name: lowercase letters, digits and `-`.
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// The WIT package version it was built against.
    pub wit_version: String,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// A known-good message the adapter must translate (synthetic data):
    /// tried at load, and again after a crash to tell whose fault it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeManifest>,
}

/// `[probe]` in `adapter.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeManifest {
    /// The message file, relative to the manifest.
    pub file: String,
    /// Its content type.
    pub content_type: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

impl Manifest {
    /// The text the signature covers.
    pub fn signing_payload(&self) -> Vec<u8> {
        let mut text = format!(
            "bro-adapter-v1\nname={}\nversion={}\nwit={}\nsha256={}\n",
            self.name, self.version, self.wit_version, self.sha256
        );
        if let Some(probe) = &self.probe {
            text.push_str(&format!("probe={} {}\n", probe.sha256, probe.content_type));
        }
        text.into_bytes()
    }
}

/// The SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn package_error(adapter: &str, reason: impl Into<String>) -> HostError {
    HostError::Package { adapter: adapter.to_owned(), reason: reason.into() }
}

/// A package read from disk, its hash checked, its signature not yet.
#[derive(Clone, Debug)]
pub struct Package {
    /// The directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub wasm: Vec<u8>,
    /// The signature, if the package has one.
    pub signature: Option<Signature>,
    /// The probe message's bytes, if the manifest names one.
    pub probe: Option<Vec<u8>>,
}

impl Package {
    /// Reads a package directory and checks the manifest against the component.
    pub fn read(dir: &Path) -> Result<Package, HostError> {
        let shown = dir.display().to_string();
        let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
            .map_err(|e| package_error(&shown, format!("cannot read {MANIFEST_FILE}: {e}")))?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| package_error(&shown, format!("invalid {MANIFEST_FILE}: {e}")))?;
        let name = &manifest.name;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(package_error(
                &shown,
                format!("adapter name {name:?} must be lowercase letters, digits and '-'"),
            ));
        }
        if semver::Version::parse(&manifest.version).is_err() {
            return Err(package_error(name, format!("version {:?} is not a semantic version", manifest.version)));
        }
        if manifest.wit_version != WIT_VERSION {
            return Err(package_error(
                name,
                format!("built against bro:adapter@{}, this gateway implements @{WIT_VERSION}", manifest.wit_version),
            ));
        }
        let wasm = read_listed(dir, name, "component", &manifest.component, &manifest.sha256)?;
        let probe = match &manifest.probe {
            Some(p) => Some(read_listed(dir, name, "probe.file", &p.file, &p.sha256)?),
            None => None,
        };
        let signature = match std::fs::read_to_string(dir.join(SIGNATURE_FILE)) {
            Ok(text) => {
                let bytes = B64
                    .decode(text.trim())
                    .map_err(|e| package_error(name, format!("{SIGNATURE_FILE} is not base64: {e}")))?;
                let bytes: [u8; 64] =
                    bytes.try_into().map_err(|_| package_error(name, format!("{SIGNATURE_FILE} is not 64 bytes")))?;
                Some(Signature::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(package_error(name, format!("cannot read {SIGNATURE_FILE}: {e}"))),
        };
        Ok(Package { dir: dir.to_path_buf(), manifest, wasm, signature, probe })
    }

    /// Checks the signature against the trusted keys; returns the signer's name
    /// (`None` for an unsigned package the policy allows).
    pub fn verify(&self, trust: &TrustPolicy) -> Result<Option<String>, HostError> {
        let name = &self.manifest.name;
        let Some(signature) = &self.signature else {
            return if trust.allow_unsigned {
                tracing::warn!(adapter = %name, "loading an UNSIGNED adapter (development setting allow_unsigned)");
                Ok(None)
            } else {
                Err(package_error(
                    name,
                    format!("unsigned ({SIGNATURE_FILE} missing), and unsigned adapters are not allowed"),
                ))
            };
        };
        let payload = self.manifest.signing_payload();
        let Some(vendor) = trust.keys.iter().find(|v| v.key.verify(&payload, signature).is_ok()) else {
            return Err(package_error(name, "the signature does not verify against any trusted vendor key"));
        };
        if !vendor.adapters.iter().any(|a| a == name) {
            return Err(package_error(
                name,
                format!(
                    "signed by vendor {:?}, whose key is trusted only for {:?}, not for {name:?}",
                    vendor.vendor, vendor.adapters
                ),
            ));
        }
        Ok(Some(vendor.vendor.clone()))
    }

    /// The probe as a message, if the package has one.
    pub fn probe_message(&self) -> Option<crate::Message> {
        let (probe, body) = (self.manifest.probe.as_ref()?, self.probe.clone()?);
        let metadata = vec![("message-id".to_owned(), format!("probe-{}", self.manifest.name))];
        Some(crate::Message { content_type: probe.content_type.clone(), body, metadata })
    }
}

/// Reads a file a manifest lists and checks its hash.
fn read_listed(dir: &Path, name: &str, field: &str, file: &str, sha256: &str) -> Result<Vec<u8>, HostError> {
    if file.is_empty() || file.contains('/') || file.contains('\\') || file.starts_with('.') {
        return Err(package_error(name, format!("{field} must be a file name in the package directory")));
    }
    let bytes = std::fs::read(dir.join(file)).map_err(|e| package_error(name, format!("cannot read {file}: {e}")))?;
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(package_error(name, format!("{file} has SHA-256 {actual}, but the manifest says {sha256}")));
    }
    Ok(bytes)
}

/// A vendor key and the adapter names it may sign.
#[derive(Clone, Debug)]
pub struct TrustedVendor {
    /// The vendor's name.
    pub vendor: String,
    /// Its public key.
    pub key: VerifyingKey,
    /// The adapter names its signature is accepted for.
    pub adapters: Vec<String>,
}

/// Which signatures the gateway accepts.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    /// Trusted vendor keys.
    pub keys: Vec<TrustedVendor>,
    /// Load unsigned packages (development only).
    pub allow_unsigned: bool,
    /// Load a lower version than the one in service (an explicit rollback).
    pub allow_downgrade: bool,
}

/// Parses a base64 ed25519 public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = B64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an ed25519 public key is 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key: {e}"))
}

/// Parses a base64 ed25519 secret key (its 32-byte seed).
pub fn parse_secret_key(text: &str) -> Result<SigningKey, String> {
    let bytes = B64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an ed25519 secret key is 32 bytes".to_owned())?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A new signing key from the OS's randomness: (secret, public), both base64.
pub fn generate_key() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((B64.encode(key.to_bytes()), B64.encode(key.verifying_key().to_bytes())))
}

/// Writes `adapter.toml` for a component placed in `dir`.
pub fn write_manifest(dir: &Path, name: &str, version: &str, component_file: &str) -> Result<Manifest, HostError> {
    let wasm = std::fs::read(dir.join(component_file))
        .map_err(|e| package_error(name, format!("cannot read {component_file}: {e}")))?;
    let manifest = Manifest {
        name: name.to_owned(),
        version: version.to_owned(),
        wit_version: WIT_VERSION.to_owned(),
        sha256: sha256_hex(&wasm),
        component: component_file.to_owned(),
        probe: None,
    };
    let text = toml::to_string(&manifest).map_err(|e| package_error(name, e.to_string()))?;
    std::fs::write(dir.join(MANIFEST_FILE), text).map_err(|e| package_error(name, e.to_string()))?;
    Ok(manifest)
}

/// Adds a probe message (a file already in `dir`) to the package's
/// manifest; sign after.
pub fn add_probe(dir: &Path, file: &str, content_type: &str) -> Result<Manifest, HostError> {
    let shown = dir.display().to_string();
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .map_err(|e| package_error(&shown, format!("cannot read {MANIFEST_FILE}: {e}")))?;
    let mut manifest: Manifest =
        toml::from_str(&text).map_err(|e| package_error(&shown, format!("invalid {MANIFEST_FILE}: {e}")))?;
    let bytes =
        std::fs::read(dir.join(file)).map_err(|e| package_error(&manifest.name, format!("cannot read {file}: {e}")))?;
    manifest.probe = Some(ProbeManifest {
        file: file.to_owned(),
        content_type: content_type.to_owned(),
        sha256: sha256_hex(&bytes),
    });
    let text = toml::to_string(&manifest).map_err(|e| package_error(&manifest.name, e.to_string()))?;
    std::fs::write(dir.join(MANIFEST_FILE), text).map_err(|e| package_error(&manifest.name, e.to_string()))?;
    Ok(manifest)
}

/// Signs the package in `dir` (its manifest must match its component).
pub fn sign(dir: &Path, key: &SigningKey) -> Result<Manifest, HostError> {
    let package = Package::read(dir)?;
    let signature = key.sign(&package.manifest.signing_payload());
    std::fs::write(dir.join(SIGNATURE_FILE), B64.encode(signature.to_bytes()) + "\n")
        .map_err(|e| package_error(&package.manifest.name, e.to_string()))?;
    Ok(package.manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(dir: &Path) {
        std::fs::write(dir.join("a.wasm"), b"\0asm component bytes").unwrap();
        write_manifest(dir, "demo", "1.0.0", "a.wasm").unwrap();
    }

    #[test]
    fn signed_packages_verify_and_tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        package(dir.path());
        let (secret, public) = generate_key().unwrap();
        let vendor = |adapters: &[&str]| TrustedVendor {
            vendor: "vendor".into(),
            key: parse_public_key(&public).unwrap(),
            adapters: adapters.iter().map(|a| a.to_string()).collect(),
        };
        let trust = TrustPolicy { keys: vec![vendor(&["demo"])], ..TrustPolicy::default() };
        let unsigned = Package::read(dir.path()).unwrap().verify(&trust).unwrap_err();
        assert!(unsigned.to_string().contains("unsigned"), "{unsigned}");
        sign(dir.path(), &parse_secret_key(&secret).unwrap()).unwrap();
        assert_eq!(Package::read(dir.path()).unwrap().verify(&trust).unwrap().as_deref(), Some("vendor"));
        // The same valid signature by a key not trusted for this name is refused, naming both.
        let elsewhere = TrustPolicy { keys: vec![vendor(&["medcom"])], ..TrustPolicy::default() };
        let refused = Package::read(dir.path()).unwrap().verify(&elsewhere).unwrap_err().to_string();
        assert!(refused.contains(r#"trusted only for ["medcom"], not for "demo""#), "{refused}");

        // A probe joins the signed text: adding one needs a new signature.
        std::fs::write(dir.path().join("probe.txt"), b"known good").unwrap();
        add_probe(dir.path(), "probe.txt", "text/plain").unwrap();
        assert!(Package::read(dir.path()).unwrap().verify(&trust).is_err(), "the probe is covered");
        sign(dir.path(), &parse_secret_key(&secret).unwrap()).unwrap();
        let package = Package::read(dir.path()).unwrap();
        assert!(package.verify(&trust).is_ok());
        assert_eq!(package.probe_message().unwrap().body, b"known good");
        std::fs::write(dir.path().join("probe.txt"), b"changed").unwrap();
        assert!(Package::read(dir.path()).unwrap_err().to_string().contains("probe.txt has SHA-256"));
        write_manifest(dir.path(), "demo", "1.0.0", "a.wasm").unwrap();
        sign(dir.path(), &parse_secret_key(&secret).unwrap()).unwrap();

        // A changed component no longer matches its manifest.
        std::fs::write(dir.path().join("a.wasm"), b"\0asm other bytes").unwrap();
        assert!(Package::read(dir.path()).unwrap_err().to_string().contains("SHA-256"));
        // A manifest rewritten for the new bytes no longer matches the signature.
        write_manifest(dir.path(), "demo", "1.0.0", "a.wasm").unwrap();
        let forged = Package::read(dir.path()).unwrap().verify(&trust).unwrap_err();
        assert!(forged.to_string().contains("does not verify"), "{forged}");
        // Another vendor's key does not verify it either.
        let (other_secret, _) = generate_key().unwrap();
        sign(dir.path(), &parse_secret_key(&other_secret).unwrap()).unwrap();
        assert!(Package::read(dir.path()).unwrap().verify(&trust).is_err());
        // Unsigned loads only with the development setting.
        std::fs::remove_file(dir.path().join(SIGNATURE_FILE)).unwrap();
        let dev = TrustPolicy { allow_unsigned: true, ..trust };
        assert_eq!(Package::read(dir.path()).unwrap().verify(&dev).unwrap(), None);
    }

    #[test]
    fn bad_manifests_are_named() {
        let dir = tempfile::tempdir().unwrap();
        package(dir.path());
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text.replace("0.1.0", "9.9.9")).unwrap();
        assert!(Package::read(dir.path()).unwrap_err().to_string().contains("bro:adapter@9.9.9"));
        std::fs::write(dir.path().join(MANIFEST_FILE), text.replace("a.wasm", "../a.wasm")).unwrap();
        assert!(Package::read(dir.path()).unwrap_err().to_string().contains("file name"));
        std::fs::write(dir.path().join(MANIFEST_FILE), "nme = 1").unwrap();
        assert!(Package::read(dir.path()).unwrap_err().to_string().contains("invalid adapter.toml"));
    }
}
