//! `bro adapter …`: the vendor's tools. `new` makes a project that builds on
//! its own; `run` translates one file and shows what production would
//! enforce; `test` runs golden fixtures; `check` validates a component;
//! `keygen`, `sign` and `verify` handle packages and signatures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bro_plugin_host::package::{self, Package, TrustPolicy, TrustedVendor};
use bro_plugin_host::{AdapterEngine, AdapterLimits, CallReport, EngineOptions, HostError, LoadedAdapter, Message};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// The party `bro adapter` calls are made for (in the host's health figures).
const PARTY: &str = "bro-adapter-cli";

/// Limits a vendor can set on the command line (defaults: production's).
#[derive(Clone, Debug, clap::Args)]
pub struct LimitArgs {
    /// Wall-clock backstop per call, in milliseconds (fuel is the CPU limit).
    #[arg(long, default_value_t = 2000)]
    pub deadline_ms: u64,
    /// Memory limit, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
    /// Fuel budget per call.
    #[arg(long, default_value_t = 2_000_000_000)]
    pub fuel: u64,
}

impl LimitArgs {
    fn limits(&self) -> AdapterLimits {
        AdapterLimits {
            deadline: Duration::from_millis(self.deadline_ms),
            memory_bytes: self.memory_mib << 20,
            fuel: self.fuel,
            ..AdapterLimits::default()
        }
    }
}

fn batch_descriptor() -> anyhow::Result<MessageDescriptor> {
    let pool = DescriptorPool::decode(bro_api::FILE_DESCRIPTOR_SET).context("bro's descriptor set")?;
    pool.get_message_by_name("bro.v1.AdapterBatch").context("bro.v1.AdapterBatch is in the descriptor set")
}

/// Canonical batch bytes as pretty JSON (proto3 JSON mapping).
pub fn batch_to_json(bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
    let message = DynamicMessage::decode(batch_descriptor()?, bytes)
        .context("the adapter's output is not a bro.v1.AdapterBatch")?;
    Ok(serde_json::to_value(&message)?)
}

/// Canonical batch JSON to protobuf bytes.
pub fn batch_from_json(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let message =
        DynamicMessage::deserialize(batch_descriptor()?, &mut de).context("not a bro.v1.AdapterBatch in JSON")?;
    Ok(prost::Message::encode_to_vec(&message))
}

/// A message's content type from a file extension.
fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "xml" => "application/xml",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn load_component(engine: &Arc<AdapterEngine>, path: &Path, limits: AdapterLimits) -> anyhow::Result<LoadedAdapter> {
    let wasm = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "adapter".into());
    let component = engine.compile(&name, &wasm)?;
    Ok(LoadedAdapter::load(engine.clone(), &name, &component, limits, package::sha256_hex(&wasm))?)
}

/// An engine that never quarantines or throttles: a vendor's tool shows every verdict.
fn tool_engine() -> anyhow::Result<Arc<AdapterEngine>> {
    Ok(Arc::new(AdapterEngine::new(EngineOptions {
        quarantine_after: u32::MAX,
        throttle_after: u32::MAX,
        ..EngineOptions::default()
    })?))
}

fn print_figures(report: &CallReport, limits: &AdapterLimits) {
    println!("--- figures (production limits)");
    println!("fuel         {:>14} of {:>14}", report.fuel_used, limits.fuel);
    println!("peak memory  {:>14} of {:>14} bytes", report.peak_memory_bytes, limits.memory_bytes);
    println!("wall time    {:>14?} of {:>14?}", report.wall_time, limits.deadline);
    println!(
        "log          {:>14} of {:>14} bytes{}",
        report.log_bytes,
        limits.max_log_bytes,
        if report.log_dropped_bytes > 0 { format!(" ({} dropped)", report.log_dropped_bytes) } else { String::new() }
    );
    for line in &report.log {
        println!("log [{}] {}", line.level, line.message);
    }
}

/// `bro adapter run`.
pub fn run(
    adapter: &Path,
    op: &str,
    input: &Path,
    target: Option<&str>,
    content_type: Option<&str>,
    limits: &LimitArgs,
) -> anyhow::Result<bool> {
    let engine = tool_engine()?;
    let loaded = load_component(&engine, adapter, limits.limits())?;
    let body = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let outcome = match op {
        "to-canonical" => {
            let message = Message {
                content_type: content_type.unwrap_or_else(|| content_type_of(input)).into(),
                body,
                metadata: vec![(
                    "message-id".into(),
                    input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                )],
            };
            loaded.to_canonical(PARTY, &message).map(|t| {
                let shown = t.result.as_ref().map_err(bro_plugin_host::describe_error).and_then(|bytes| {
                    batch_to_json(bytes)
                        .map_err(|e| format!("{e:#}"))
                        .and_then(|j| serde_json::to_string_pretty(&j).map_err(|e| e.to_string()))
                });
                (shown, t.report)
            })
        }
        "from-canonical" => {
            let text = String::from_utf8(body).context("the canonical input must be JSON text")?;
            let batch = batch_from_json(&text)?;
            let target = target.context("--target is required for from-canonical")?;
            loaded.from_canonical(PARTY, &batch, target).map(|t| {
                let shown = t
                    .result
                    .as_ref()
                    .map_err(bro_plugin_host::describe_error)
                    .map(|m| format!("content-type: {}\n\n{}", m.content_type, String::from_utf8_lossy(&m.body)));
                (shown, t.report)
            })
        }
        other => bail!("--op must be to-canonical or from-canonical, not {other:?}"),
    };
    match outcome {
        Ok((Ok(text), report)) => {
            println!("{text}");
            print_figures(&report, loaded.limits());
            Ok(true)
        }
        Ok((Err(error), report)) => {
            println!("adapter error: {error}");
            print_figures(&report, loaded.limits());
            Ok(false)
        }
        Err(host) => {
            println!("stopped: {host}");
            Ok(false)
        }
    }
}

/// One golden fixture: an input and its expected output.
struct Fixture {
    name: String,
    input: PathBuf,
    expected: PathBuf,
    forward: bool,
}

fn fixtures(dir: &Path) -> anyhow::Result<Vec<Fixture>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in &entries {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // NAME.in.EXT → NAME.expected.json (to-canonical)
        if let Some((stem, _)) = file.split_once(".in.") {
            let expected = dir.join(format!("{stem}.expected.json"));
            out.push(Fixture { name: stem.to_owned(), input: path.clone(), expected, forward: true });
        }
        // NAME.canonical.json → NAME.expected.EXT (from-canonical; target in NAME.target)
        if let Some(stem) = file.strip_suffix(".canonical.json") {
            let expected = entries
                .iter()
                .find(|p| {
                    let f = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let forward_too = entries.iter().any(|q| {
                        q.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stem}.in.")))
                    });
                    f.starts_with(&format!("{stem}.expected.")) && !(forward_too && f.ends_with(".json"))
                })
                .cloned()
                .unwrap_or_else(|| dir.join(format!("{stem}.expected.xml")));
            out.push(Fixture { name: stem.to_owned(), input: path.clone(), expected, forward: false });
        }
    }
    Ok(out)
}

fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// `bro adapter test`: every fixture in `dir`; false if any fails.
pub fn test(adapter: &Path, dir: &Path, bless: bool, limits: &LimitArgs) -> anyhow::Result<bool> {
    let engine = tool_engine()?;
    let loaded = load_component(&engine, adapter, limits.limits())?;
    let fixtures = fixtures(dir)?;
    if fixtures.is_empty() {
        bail!(
            "no fixtures in {} (NAME.in.EXT with NAME.expected.json, or NAME.canonical.json with NAME.expected.EXT)",
            dir.display()
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for f in &fixtures {
        let result = run_fixture(&loaded, f, bless);
        match result {
            Ok(None) => {
                passed += 1;
                println!("ok    {}", f.name);
            }
            Ok(Some(problem)) => {
                failed += 1;
                println!("FAIL  {}\n{problem}", f.name);
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {}: {e:#}", f.name);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Runs one fixture: `None` if it passes, else what differs. With `bless`,
/// the actual output replaces the expected file.
fn run_fixture(adapter: &LoadedAdapter, f: &Fixture, bless: bool) -> anyhow::Result<Option<String>> {
    let body = std::fs::read(&f.input).with_context(|| format!("cannot read {}", f.input.display()))?;
    let actual: Vec<u8> = if f.forward {
        let message = Message {
            content_type: content_type_of(&f.input).into(),
            body,
            metadata: vec![("message-id".into(), f.name.clone())],
        };
        let t = adapter.to_canonical(PARTY, &message).map_err(|e: HostError| anyhow::anyhow!(e))?;
        let text = match t.result {
            Ok(bytes) => serde_json::to_string_pretty(&batch_to_json(&bytes)?)? + "\n",
            Err(e) => format!("{{\"error\": {}}}\n", serde_json::to_string(&bro_plugin_host::describe_error(&e))?),
        };
        text.into_bytes()
    } else {
        let target_file = f.input.with_file_name(format!("{}.target", f.name));
        let target = std::fs::read_to_string(&target_file).map(|t| t.trim().to_owned()).unwrap_or_default();
        let batch = batch_from_json(&String::from_utf8(body)?)?;
        let t = adapter.from_canonical(PARTY, &batch, &target).map_err(|e: HostError| anyhow::anyhow!(e))?;
        match t.result {
            // Compared byte for byte: a legacy format's encoding is part of the output.
            Ok(m) => m.body,
            Err(e) => format!("error: {}\n", bro_plugin_host::describe_error(&e)).into_bytes(),
        }
    };
    if bless {
        std::fs::write(&f.expected, &actual).with_context(|| format!("cannot write {}", f.expected.display()))?;
        return Ok(None);
    }
    let expected = std::fs::read(&f.expected).with_context(|| format!("cannot read {}", f.expected.display()))?;
    let same = if f.forward {
        let a: serde_json::Value = serde_json::from_slice(&actual)?;
        let e: serde_json::Value =
            serde_json::from_slice(&expected).with_context(|| format!("{} is not JSON", f.expected.display()))?;
        a == e
    } else {
        actual.trim_ascii_end() == expected.trim_ascii_end()
    };
    Ok((!same).then(|| diff(&String::from_utf8_lossy(&expected), &String::from_utf8_lossy(&actual))))
}

/// `bro adapter check`: the component against the world and the limits.
pub fn check(adapter: &Path, limits: &LimitArgs) -> anyhow::Result<bool> {
    let engine = tool_engine()?;
    match load_component(&engine, adapter, limits.limits()) {
        Ok(loaded) => {
            let info = loaded.info();
            println!(
                "ok: {} {} ({:?}), bro:adapter@{}",
                info.name,
                info.version,
                info.system_kind,
                bro_plugin_host::WIT_VERSION
            );
            for t in &info.reads {
                println!("  reads  {} ({})", t.name, t.content_types.join(", "));
            }
            for t in &info.writes {
                println!("  writes {} ({})", t.name, t.content_types.join(", "));
            }
            println!("  sha256 {}", loaded.sha256());
            println!(
                "  imports only what bro grants; describe() ran within {:?} and {} MiB",
                limits.limits().deadline,
                limits.memory_mib
            );
            Ok(true)
        }
        Err(e) => {
            println!("not ok: {e:#}");
            Ok(false)
        }
    }
}

/// `bro adapter keygen`: writes PREFIX.key (secret) and PREFIX.pub.
pub fn keygen(prefix: &Path) -> anyhow::Result<()> {
    let (secret, public) = package::generate_key().map_err(anyhow::Error::msg)?;
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&key_path).with_context(|| format!("cannot create {}", key_path.display()))?;
        writeln!(file, "{secret}")?;
    }
    std::fs::write(&pub_path, format!("{public}\n"))?;
    println!("secret key: {} (keep it secret)\npublic key: {} — {public}", key_path.display(), pub_path.display());
    Ok(())
}

/// `bro adapter sign`: writes adapter.toml and adapter.sig beside the
/// component, with the probe message (copied beside it) if one is given.
pub fn sign(
    component: &Path,
    key: &Path,
    name: Option<&str>,
    version: Option<&str>,
    probe: Option<(&Path, Option<&str>)>,
) -> anyhow::Result<()> {
    let dir = component.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = component.file_name().context("the component path names a file")?.to_string_lossy().into_owned();
    let engine = tool_engine()?;
    let loaded = load_component(&engine, component, AdapterLimits::default())?;
    let name = name.map(str::to_owned).unwrap_or_else(|| loaded.info().name.clone());
    let version = version.map(str::to_owned).unwrap_or_else(|| loaded.info().version.clone());
    package::write_manifest(dir, &name, &version, &file)?;
    if let Some((probe, content_type)) = probe {
        let probe_file = probe.file_name().context("the probe path names a file")?.to_string_lossy().into_owned();
        let beside = dir.join(&probe_file);
        if std::fs::canonicalize(probe).ok() != std::fs::canonicalize(&beside).ok() {
            std::fs::copy(probe, &beside).with_context(|| format!("cannot copy {}", probe.display()))?;
        }
        let content_type = content_type.unwrap_or_else(|| content_type_of(probe));
        package::add_probe(dir, &probe_file, content_type)?;
        let message = Package::read(dir)?.probe_message().context("the probe was just added")?;
        loaded.with_probe(message)?;
    }
    let secret = std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let key = package::parse_secret_key(&secret).map_err(anyhow::Error::msg)?;
    let manifest = package::sign(dir, &key)?;
    println!("signed {} {} (sha256 {}) in {}", manifest.name, manifest.version, manifest.sha256, dir.display());
    Ok(())
}

/// `bro adapter verify`: a package against trusted public keys.
pub fn verify(dir: &Path, keys: &[PathBuf]) -> anyhow::Result<bool> {
    // Each key given is trusted for the package's own name: this checks the signature.
    let named = Package::read(dir).map(|p| p.manifest.name).unwrap_or_default();
    let mut trust = TrustPolicy::default();
    for k in keys {
        let text = std::fs::read_to_string(k).with_context(|| format!("cannot read {}", k.display()))?;
        let key = package::parse_public_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", k.display()))?;
        trust.keys.push(TrustedVendor { vendor: k.display().to_string(), key, adapters: vec![named.clone()] });
    }
    match Package::read(dir).and_then(|p| p.verify(&trust).map(|signer| (p, signer))) {
        Ok((p, signer)) => {
            println!("ok: {} {} signed by {}", p.manifest.name, p.manifest.version, signer.unwrap_or_default());
            Ok(true)
        }
        Err(e) => {
            println!("not ok: {e}");
            Ok(false)
        }
    }
}
