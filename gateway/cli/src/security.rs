//! The security settings of `bro serve` (keys, audit log, identity provider,
//! TLS) and the key and audit-log commands `bro keygen` and `bro audit verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use bro_store::Keyring;

use crate::config::Settings;

/// The key file used when none is configured (loopback only).
pub const DEFAULT_KEY_FILE: &str = "bro.key";

/// The audit head signing key used when none is configured (loopback only).
pub const DEFAULT_SIGNING_KEY_FILE: &str = "audit-signing.key";

/// Reads an audit head signing key file.
pub fn read_signer(path: &Path) -> anyhow::Result<bro_store::AuditSigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the audit signing key {}", path.display()))?;
    bro_store::AuditSigner::parse(&text).with_context(|| format!("{}", path.display()))
}

/// The audit head signing key of `bro serve`: the configured one, or — on a
/// loopback address only — `DATA_DIR/audit-signing.key`, made on first start.
/// It is never the master key file: the two are kept apart.
pub fn load_signer(settings: &Settings) -> anyhow::Result<bro_store::AuditSigner> {
    if let Some(path) = &settings.audit_signing_key {
        if settings.key_file.as_ref().is_some_and(|k| k.canonicalize().ok() == path.canonicalize().ok()) {
            bail!("[audit] signing_key is the master key file; the audit signing key must be a key of its own");
        }
        return read_signer(path);
    }
    if !settings.listen.ip().is_loopback() {
        bail!(
            "[audit] signing_key is required when listening on {}: make one with `bro keygen --audit-signing --out /etc/bro/audit-signing.key` and set it",
            settings.listen
        );
    }
    let path = settings.data_dir.join(DEFAULT_SIGNING_KEY_FILE);
    if !path.exists() {
        std::fs::create_dir_all(&settings.data_dir)?;
        bro_store::write_private(&path, &bro_store::AuditSigner::generate())
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::warn!(signing_key = %path.display(), "no [audit] signing_key configured: made a development key beside the data (loopback only)");
    }
    read_signer(&path)
}

/// Reads a key file.
pub fn read_keys(path: &Path) -> anyhow::Result<Keyring> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
    Keyring::parse(&text).with_context(|| format!("{}", path.display()))
}

/// The keys of `bro serve`: the configured key file, or — on a loopback
/// address only — `DATA_DIR/bro.key`, made on first start.
pub fn load_keys(settings: &Settings) -> anyhow::Result<Keyring> {
    if let Some(path) = &settings.key_file {
        let keys = read_keys(path)?;
        if path.parent().is_some_and(|p| p.canonicalize().ok() == settings.data_dir.canonicalize().ok()) {
            tracing::warn!(key_file = %path.display(), "the key file lies in the data directory it protects; keep it elsewhere");
        }
        return Ok(keys);
    }
    if !settings.listen.ip().is_loopback() {
        bail!(
            "key_file is required when listening on {}: make one with `bro keygen --out /etc/bro/bro.key` and set key_file",
            settings.listen
        );
    }
    let path = settings.data_dir.join(DEFAULT_KEY_FILE);
    if path.exists() {
        return read_keys(&path);
    }
    std::fs::create_dir_all(&settings.data_dir)?;
    bro_store::write_private(&path, &Keyring::generate())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(key_file = %path.display(), "no key_file configured: made a development key beside the data (loopback only)");
    read_keys(&path)
}

/// The security settings of `bro serve`; the audit log lives with the
/// event store: in `postgres` when the store is there, else beside the
/// embedded store in the data directory.
pub fn from_settings(
    settings: &Settings,
    postgres: Option<&bro_store_postgres::PostgresStore>,
) -> anyhow::Result<bro_server::Security> {
    let keys = load_keys(settings)?;
    tracing::info!(key_id = keys.key_id(), "keys loaded");
    let audit_signer = Arc::new(load_signer(settings)?);
    let verifier = audit_signer.verifier();
    tracing::info!(key_id = %verifier.key_id(), public_key = %verifier.public_key(), "audit head signing key loaded");
    let audit: Arc<dyn bro_store::AuditLog> = match postgres {
        Some(store) => Arc::new(bro_store_postgres::PostgresAuditLog::new(store, keys.clone())),
        None => Arc::new(
            bro_store_sqlite::SqliteAuditLog::open(&settings.data_dir, keys.clone())
                .with_context(|| format!("cannot open the audit log in {}", settings.data_dir.display()))?,
        ),
    };
    let jwt = settings.identity.as_ref().map(|i| i.to_settings()).transpose()?;
    let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
    let tls = match &settings.tls {
        None => None,
        Some(t) => Some(bro_server::TlsSettings {
            cert_pem: read(&t.certificate)?,
            key_pem: read(&t.key)?,
            client_ca_pem: t.client_ca.as_ref().map(read).transpose()?,
        }),
    };
    let certificates = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
    if jwt.is_none() && !certificates {
        bail!("nobody could call: configure [identity] (tokens) or [tls] client_ca (systems' client certificates)");
    }
    Ok(bro_server::Security { keys: Arc::new(keys), audit, audit_signer, jwt, tls, rate_limit: settings.rate_limit })
}

/// `bro keygen --out FILE`.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists; a key is never overwritten (data sealed with it would be lost)", out.display());
    }
    let text = Keyring::generate();
    bro_store::write_private(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    let keys = Keyring::parse(&text)?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "wrote {} (key id {}); keep a copy offline: without it, sealed data cannot be read",
            out.display(),
            keys.key_id()
        );
    }
    Ok(())
}

/// `bro keygen --audit-signing --out FILE`: prints the public key to pin.
pub fn keygen_audit_signing(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} exists; a key is never overwritten (heads signed with it could no longer be told apart)",
            out.display()
        );
    }
    let text = bro_store::AuditSigner::generate();
    bro_store::write_private(out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    let verifier = bro_store::AuditSigner::parse(&text)?.verifier();
    #[allow(clippy::print_stdout)]
    {
        println!(
            "wrote {} (key id {}); public key {} — give it to whoever keeps the exported heads",
            out.display(),
            verifier.key_id(),
            verifier.public_key()
        );
    }
    Ok(())
}

/// Signed heads to check a log against, and the key they must be signed with.
pub struct PinnedHeads<'a> {
    /// The file of signed heads (JSON lines).
    pub file: &'a Path,
    /// The public key, base64.
    pub public_key: Option<&'a str>,
    /// Or the signing key file, whose public half is used.
    pub signing_key: Option<&'a Path>,
}

impl PinnedHeads<'_> {
    /// The pinned key: given, or from the signing key file (default: the data directory's).
    fn verifier(&self, source: &AuditSource<'_>) -> anyhow::Result<bro_store::AuditVerifier> {
        if let Some(public) = self.public_key {
            return Ok(bro_store::AuditVerifier::parse_public(public)?);
        }
        let path = match (self.signing_key, source) {
            (Some(path), _) => path.to_path_buf(),
            (None, AuditSource::DataDir(dir)) => dir.join(DEFAULT_SIGNING_KEY_FILE),
            (None, AuditSource::Postgres(_)) => bail!("--public-key or --signing-key is required with --store"),
        };
        Ok(read_signer(&path)?.verifier())
    }

    /// Checks every head in the file against the log; returns how many.
    fn check(&self, source: &AuditSource<'_>, records: &[bro_store::StoredAuditRecord]) -> anyhow::Result<usize> {
        let verifier = self.verifier(source)?;
        let text = std::fs::read_to_string(self.file)
            .with_context(|| format!("cannot read the signed heads {}", self.file.display()))?;
        let heads = bro_store::SignedHead::parse_lines(&text).with_context(|| format!("{}", self.file.display()))?;
        if heads.is_empty() {
            bail!("{} holds no signed head", self.file.display());
        }
        for head in &heads {
            verifier.verify(head)?;
            bro_store::audit_head::extends(records, head)
                .with_context(|| format!("the head signed at {}", head.time))?;
        }
        Ok(heads.len())
    }
}

/// Where `bro audit verify` reads the log.
pub enum AuditSource<'a> {
    /// `DATA_DIR/audit.sqlite3`.
    DataDir(&'a Path),
    /// The PostgreSQL database at this URL.
    Postgres(&'a str),
}

/// A whole audit log: its records in order, its head, its people index, and
/// how many records of committed writes wait to be chained.
type WholeAuditLog = (Vec<bro_store::StoredAuditRecord>, bro_store::AuditHead, Vec<(Vec<u8>, u64)>, u64);

/// Reads a whole audit log.
fn read_audit(source: &AuditSource<'_>) -> Result<WholeAuditLog, bro_store::StoreError> {
    match source {
        AuditSource::DataDir(data_dir) => {
            let (records, head) = bro_store_sqlite::SqliteAuditLog::read_all(data_dir)?;
            let index = bro_store_sqlite::SqliteAuditLog::read_index(data_dir)?;
            Ok((records, head, index, 0))
        }
        AuditSource::Postgres(url) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| bro_store::StoreError::Backend(e.to_string()))?;
            runtime.block_on(async {
                let store = bro_store_postgres::PostgresStore::open(url).await?;
                let (records, head, index) = bro_store_postgres::PostgresAuditLog::read_all(&store).await?;
                let pending = bro_store_postgres::PostgresAuditLog::pending(&store).await?;
                Ok((records, head, index, pending))
            })
        }
    }
}

/// `bro audit verify`: exit 0 if the chain is whole, 1 if broken, 2 if it cannot be read.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn verify_audit(source: AuditSource<'_>, key_file: Option<&Path>, heads: Option<PinnedHeads<'_>>) -> ExitCode {
    let key_path = match master_key_path(&source, key_file) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("bro audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = match read_keys(&key_path) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bro audit verify: {e:#}");
            return ExitCode::from(2);
        }
    };
    let (records, head, index, pending) = match read_audit(&source) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("bro audit verify: {e}");
            return ExitCode::from(2);
        }
    };
    let checked = bro_store::audit::verify(&keys, records.clone(), &head)
        .and_then(|n| bro_store::audit::verify_index(&records, &index).map(|()| n));
    match checked {
        Ok(n) => {
            let mac: String = head.mac.iter().take(8).map(|b| format!("{b:02x}")).collect();
            println!("audit log intact: {n} records; head {} {mac}…", head.sequence);
            if pending > 0 {
                println!(
                    "{pending} records of committed writes wait to be chained (the next audit append, or `bro serve` starting, chains them)"
                );
            }
            let Some(heads) = heads else { return ExitCode::SUCCESS };
            match heads.check(&source, &records) {
                Ok(count) => {
                    println!("the log extends all {count} signed heads in {}", heads.file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("audit log BROKEN against its signed heads: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(broken) => {
            println!("audit log BROKEN: {broken}");
            ExitCode::FAILURE
        }
    }
}

/// The master key file: given, or the data directory's.
fn master_key_path(source: &AuditSource<'_>, key_file: Option<&Path>) -> anyhow::Result<PathBuf> {
    match (key_file, source) {
        (Some(path), _) => Ok(path.to_path_buf()),
        (None, AuditSource::DataDir(data_dir)) => Ok(data_dir.join(DEFAULT_KEY_FILE)),
        (None, AuditSource::Postgres(_)) => bail!("--key-file is required with --store"),
    }
}

/// `bro audit export-head`: chains what writes left pending (PostgreSQL),
/// checks the whole log, signs its head and appends it to `out` (or prints
/// it). Exit 0 when exported, 1 if the log is broken (nothing is signed), 2
/// if it cannot be read or written.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn export_head(
    source: AuditSource<'_>,
    key_file: Option<&Path>,
    signing_key: Option<&Path>,
    out: Option<&Path>,
) -> ExitCode {
    match signed_head(&source, key_file, signing_key) {
        Ok(Ok(head)) => {
            let line = head.to_line();
            let written = match out {
                None => {
                    print!("{line}");
                    Ok(())
                }
                Some(path) => append_synced(path, &line),
            };
            match written {
                Ok(()) => {
                    eprintln!("signed the head of record {} at {} (key {})", head.sequence, head.time, head.key_id);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bro audit export-head: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Ok(Err(broken)) => {
            println!("audit log BROKEN: {broken}; no head was signed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bro audit export-head: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The signed head of a log that verifies, or how it is broken.
fn signed_head(
    source: &AuditSource<'_>,
    key_file: Option<&Path>,
    signing_key: Option<&Path>,
) -> anyhow::Result<Result<bro_store::SignedHead, bro_store::audit::AuditBreak>> {
    let keys = read_keys(&master_key_path(source, key_file)?)?;
    let signer_path = match (signing_key, source) {
        (Some(path), _) => path.to_path_buf(),
        (None, AuditSource::DataDir(dir)) => dir.join(DEFAULT_SIGNING_KEY_FILE),
        (None, AuditSource::Postgres(_)) => bail!("--signing-key is required with --store"),
    };
    let signer = read_signer(&signer_path)?;
    if let AuditSource::Postgres(url) = source {
        // The head signed covers every write committed so far.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let store = bro_store_postgres::PostgresStore::open(url).await?;
            bro_store::AuditLog::settle(&bro_store_postgres::PostgresAuditLog::new(&store, keys.clone())).await
        })?;
    }
    let (records, head, index, _) = read_audit(source)?;
    let checked = bro_store::audit::verify(&keys, records.clone(), &head)
        .and_then(|_| bro_store::audit::verify_index(&records, &index));
    Ok(checked.map(|()| signer.sign(&head, bro_domain::Timestamp::from(std::time::SystemTime::now()))))
}

/// Appends `line` to `path` and syncs it.
fn append_synced(path: &Path, line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_data().with_context(|| format!("cannot sync {}", path.display()))
}
