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
    Ok(bro_server::Security { keys: Arc::new(keys), audit, jwt, tls, rate_limit: settings.rate_limit })
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
pub fn verify_audit(source: AuditSource<'_>, key_file: Option<&Path>) -> ExitCode {
    let key_path = match (key_file, &source) {
        (Some(path), _) => path.to_path_buf(),
        (None, AuditSource::DataDir(data_dir)) => data_dir.join(DEFAULT_KEY_FILE),
        (None, AuditSource::Postgres(_)) => {
            eprintln!("bro audit verify: --key-file is required with --store");
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
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("audit log BROKEN: {broken}");
            ExitCode::FAILURE
        }
    }
}
