//! Test support: a real gateway on a loopback port with a fresh embedded
//! store, its own development identity provider and audit log, clients that
//! present tokens for any role, and builders for synthetic cases.
//!
//! Every CPR number here fails the modulus-11 check: none is a real person's.

pub mod process;
pub mod receiver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bro_api::v1 as pb;
use bro_api::v1::case_event::Kind;
use bro_api::v1::case_service_client::CaseServiceClient;
use bro_dev::{DevClaims, DevIdentityProvider};
use bro_server::ServeOptions;
use bro_server::access::client::{AuthChannel, CallerInterceptor};
use bro_server::access::{Purpose, Role};
use bro_store_sqlite::SqliteStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A synthetic CPR number (fails modulus 11).
pub const CPR_1: &str = "0101901234";
/// Another synthetic CPR number (fails modulus 11).
pub const CPR_2: &str = "2207921238";

/// The municipality the default test caseworker works for.
pub const TEST_CVR: &str = "12345678";

/// The gateway's keys for a data directory (made once, kept beside the store).
pub fn test_keys(data_dir: &std::path::Path) -> Arc<bro_store::Keyring> {
    let path = data_dir.join("test.key");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        let text = bro_store::Keyring::generate();
        std::fs::create_dir_all(data_dir).expect("data directory");
        std::fs::write(&path, &text).expect("write the test key");
        text
    });
    Arc::new(bro_store::Keyring::parse(&text).expect("a test key"))
}

/// Security settings for a test gateway in `data_dir`: development
/// identities, the SQLite audit log, no TLS (loopback), a generous rate limit.
pub fn test_security(data_dir: &std::path::Path) -> anyhow::Result<(bro_server::Security, Arc<DevIdentityProvider>)> {
    test_security_at(data_dir, Arc::new(bro_server::clock::SystemClock))
}

/// [`test_security`] for a gateway on `clock`: its tokens are issued at that clock's now.
pub fn test_security_at(
    data_dir: &std::path::Path,
    clock: Arc<dyn bro_server::clock::Clock>,
) -> anyhow::Result<(bro_server::Security, Arc<DevIdentityProvider>)> {
    let keys = test_keys(data_dir);
    let idp = Arc::new(DevIdentityProvider::load_or_create(data_dir)?.with_clock(clock));
    let audit = Arc::new(bro_store_sqlite::SqliteAuditLog::open(data_dir, (*keys).clone())?);
    let signer_path = data_dir.join("audit-signing.key");
    if !signer_path.exists() {
        std::fs::write(&signer_path, bro_store::AuditSigner::generate())?;
    }
    let audit_signer = Arc::new(bro_store::AuditSigner::parse(&std::fs::read_to_string(&signer_path)?)?);
    let security = bro_server::Security {
        keys,
        audit,
        audit_signer,
        jwt: Some(idp.settings()),
        tls: None,
        rate_limit: bro_server::access::ratelimit::RateLimit { per_second: 100_000.0, burst: 100_000.0 },
    };
    Ok((security, idp))
}

/// A gateway serving on 127.0.0.1 (port 0) in this process.
pub struct TestGateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its identity provider: tokens for any role.
    pub idp: Arc<DevIdentityProvider>,
    /// Its keys.
    pub keys: Arc<bro_store::Keyring>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), bro_server::ServeError>>>,
    _temp: Option<tempfile::TempDir>,
}

impl TestGateway {
    /// Starts a gateway on a fresh temporary store.
    pub async fn start() -> anyhow::Result<TestGateway> {
        Self::start_with(ServeOptions::default()).await
    }

    /// Starts a gateway on a fresh temporary store with `options`.
    pub async fn start_with(options: ServeOptions) -> anyhow::Result<TestGateway> {
        let temp = tempfile::tempdir()?;
        let mut gw = Self::start_in(temp.path().to_path_buf(), options).await?;
        gw._temp = Some(temp);
        Ok(gw)
    }

    /// Starts a gateway on the store in `data_dir`. Unless `options` bring
    /// their own security settings, it gets development identities; each
    /// configured system without credentials gets its name as client id.
    pub async fn start_in(data_dir: PathBuf, mut options: ServeOptions) -> anyhow::Result<TestGateway> {
        let (security, idp) = test_security_at(&data_dir, options.clock.clone())?;
        let keys = security.keys.clone();
        if options.security.is_none() {
            options.security = Some(security);
        }
        let systems: Vec<_> =
            options
                .systems
                .all()
                .iter()
                .cloned()
                .map(|s| {
                    if s.client_id.is_none() && s.certificates.is_empty() {
                        s.clone().with_client_id(&s.name)
                    } else {
                        s
                    }
                })
                .collect();
        options.systems = Arc::new(bro_server::systems::Systems::new(systems).map_err(anyhow::Error::msg)?);
        let store = SqliteStore::open(&data_dir)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(bro_server::run(listener, None, Arc::new(store), options, shutdown));
        Ok(TestGateway { addr, data_dir, idp, keys, stop: Some(stop), task: Some(task), _temp: None })
    }

    /// A channel with no credentials at all.
    pub async fn bare_channel(&self) -> anyhow::Result<Channel> {
        Channel::from_shared(format!("http://{}", self.addr))?.connect().await.context("connect to the test gateway")
    }

    /// A channel whose calls carry `token` (if any) and `purpose`.
    pub async fn channel_with(&self, token: Option<&str>, purpose: Purpose) -> anyhow::Result<AuthChannel> {
        let interceptor = CallerInterceptor::new(token, purpose).map_err(anyhow::Error::msg)?;
        Ok(tonic::service::interceptor::InterceptedService::new(self.bare_channel().await?, interceptor))
    }

    /// A caseworker of municipality `cvr`'s token.
    pub fn caseworker_token(&self, cvr: &str) -> String {
        self.idp.token(&DevClaims::caseworker(&format!("caseworker-{cvr}"), cvr))
    }

    /// A channel of a caseworker of municipality `cvr`, for case handling.
    pub async fn caseworker(&self, cvr: &str) -> anyhow::Result<AuthChannel> {
        self.channel_with(Some(&self.caseworker_token(cvr)), Purpose::CaseHandling).await
    }

    /// A channel of a person with `role` (of [`TEST_CVR`]) for `purpose`.
    pub async fn person(&self, role: Role, purpose: Purpose) -> anyhow::Result<AuthChannel> {
        let token = self.idp.token(&DevClaims::with_role(&format!("{}-1", role.as_str()), TEST_CVR, role));
        self.channel_with(Some(&token), purpose).await
    }

    /// A channel of configured system `name` (client id = name), exchanging messages.
    pub async fn system(&self, name: &str) -> anyhow::Result<AuthChannel> {
        let token = self.idp.client_token(name, std::time::Duration::from_secs(3600));
        self.channel_with(Some(&token), Purpose::Exchange).await
    }

    /// The default channel: a caseworker of [`TEST_CVR`].
    pub async fn channel(&self) -> anyhow::Result<AuthChannel> {
        self.caseworker(TEST_CVR).await
    }

    /// A case client of a caseworker of [`TEST_CVR`].
    pub async fn client(&self) -> anyhow::Result<CaseServiceClient<AuthChannel>> {
        Ok(CaseServiceClient::new(self.channel().await?).max_decoding_message_size(64 * 1024 * 1024))
    }

    /// The whole audit log, read by a supervisor.
    pub async fn audit_records(&self) -> Vec<pb::AuditRecord> {
        let channel = self.person(Role::Supervisor, Purpose::Supervision).await.expect("channel");
        let mut auditor = bro_api::v1::audit_service_client::AuditServiceClient::new(channel);
        let mut records = Vec::new();
        let mut token = String::new();
        loop {
            let page = auditor
                .list_audit_records(pb::ListAuditRecordsRequest { page_size: 1000, page_token: token })
                .await
                .expect("the auditor reads the log")
                .into_inner();
            records.extend(page.records);
            if page.next_page_token.is_empty() {
                return records;
            }
            token = page.next_page_token;
        }
    }

    /// Asks the gateway to stop and waits until it has (store closed).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits until `check` holds (polling every 50 ms, for up to 20 s).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A date for the wire from `YYYY-MM-DD` (test input; panics on a typo).
pub fn date(s: &str) -> pb::Date {
    let d: chrono::NaiveDate = s.parse().expect("test dates are valid");
    bro_api::convert::date_to_pb(d)
}

/// A small seeded generator (SplitMix64) for randomized tests and benches:
/// the same seed gives the same run, so a failure can name its seed.
pub struct SeededRng(pub u64);

impl SeededRng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A day in the `span_days` days from `from` (`YYYY-MM-DD`).
    pub fn day(&mut self, from: &str, span_days: u64) -> chrono::NaiveDate {
        let from: chrono::NaiveDate = from.parse().expect("test dates are valid");
        from + chrono::Days::new(self.below(span_days))
    }
}

/// An event on a date.
pub fn event(on: &str, kind: Kind) -> pb::CaseEvent {
    pb::CaseEvent { occurred_on: Some(date(on)), kind: Some(kind), ..Default::default() }
}

/// A custody holder with a synthetic CPR number.
pub fn parent(id: &str, cpr: &str, name: &str) -> pb::Party {
    pb::Party {
        party_id: id.into(),
        identifier: Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: cpr.into() }),
        display_name: name.into(),
    }
}

/// A CreateCase request for two parents in municipality `cvr`.
pub fn new_case(case_id: &str, cvr: &str) -> pb::CreateCaseRequest {
    pb::CreateCaseRequest {
        child: Some(pb::Child { identifier: None, journal_reference: format!("27.24.00-G01-{case_id}") }),
        custody_holders: vec![parent("parent-1", CPR_1, "Anna Testesen"), parent("parent-2", CPR_2, "Bo Testesen")],
        placing_municipality: Some(pb::Organisation {
            display_name: "Bro Kommune".into(),
            cvr: cvr.into(),
            ..Default::default()
        }),
        opened_on: Some(date("2026-01-10")),
        case_id: case_id.into(),
        request_id: format!("create-{case_id}"),
    }
}

/// A placement start under § 46.
pub fn placement_started(on: &str) -> pb::CaseEvent {
    event(
        on,
        Kind::PlacementStarted(pb::PlacementStarted {
            basis: pb::PlacementBasis::Bl46.into(),
            site_kind: pb::PlacementSiteKind::FosterFamily.into(),
        }),
    )
}

/// A support-person offer.
pub fn offered(on: &str, holder: &str) -> pb::CaseEvent {
    event(on, Kind::SupportPersonOffered(pb::SupportPersonOffered { custody_holder: holder.into() }))
}

/// A § 79 revision offer (no fields; handy filler).
pub fn revision_offered(on: &str) -> pb::CaseEvent {
    event(on, Kind::RevisionOffered(pb::RevisionOffered {}))
}

/// An append request.
pub fn append(case: &str, request_id: &str, events: Vec<pb::CaseEvent>, etag: &str) -> pb::AppendCaseEventsRequest {
    pb::AppendCaseEventsRequest {
        parent: format!("cases/{case}"),
        events,
        etag: etag.into(),
        request_id: request_id.into(),
    }
}

/// A MedCom sample from the `medcom` adapter's fixtures.
pub fn medcom_fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapters/medcom/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether ten digits pass the CPR modulus-11 check (synthetic test
/// numbers must not, so they can never be a real person's).
pub fn passes_modulus_11(digits: &[u8]) -> bool {
    const W: [u32; 10] = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
    digits.iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum::<u32>() % 11 == 0
}

/// `n` synthetic CPR numbers that fail the modulus-11 check.
pub fn synthetic_cprs(n: usize) -> Vec<String> {
    (0..).map(|i| format!("0101{i:06}")).filter(|c| !passes_modulus_11(c.as_bytes())).take(n).collect()
}

/// MedCom's sample XDIS91 letter (`DIS91_1.in.xml`, read as `template`)
/// with the patient's CPR number and the letter id (`B{n}`) replaced: a
/// new message about `cpr` for every `n`.
pub fn xdis91_letter(template: &[u8], cpr: &str, n: usize) -> Vec<u8> {
    let original_cpr = concat!("150282", "4933").as_bytes();
    let mut out = Vec::with_capacity(template.len());
    let mut i = 0;
    while i < template.len() {
        if template[i..].starts_with(original_cpr) {
            out.extend_from_slice(cpr.as_bytes());
            i += original_cpr.len();
        } else if template[i..].starts_with(b"BrevNr00129") {
            out.extend_from_slice(format!("B{n:010}").as_bytes());
            i += b"BrevNr00129".len();
        } else {
            out.push(template[i]);
            i += 1;
        }
    }
    out
}

/// A registry holding the reference adapters `names`, built by `cargo xtask
/// build-adapters` (into `$BRO_ADAPTER_DIR` or `target/adapters`).
pub fn adapter_registry(names: &[&str]) -> Arc<bro_plugin_host::AdapterRegistry> {
    adapter_registry_with(names, bro_plugin_host::AdapterLimits::default())
}

/// [`adapter_registry`] with other limits (a loaded CI machine needs longer deadlines).
pub fn adapter_registry_with(
    names: &[&str],
    limits: bro_plugin_host::AdapterLimits,
) -> Arc<bro_plugin_host::AdapterRegistry> {
    use bro_plugin_host::{AdapterEngine, AdapterRegistry, EngineOptions, LoadedAdapter};
    let dir = std::env::var("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/adapters"));
    let engine = Arc::new(AdapterEngine::new(EngineOptions::default()).expect("engine"));
    let registry =
        Arc::new(AdapterRegistry::new(engine.clone(), None, bro_plugin_host::package::TrustPolicy::default()));
    for name in names {
        let wasm = std::fs::read(dir.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("{name}.wasm (run `cargo xtask build-adapters`): {e}"));
        let component = engine.compile(name, &wasm).expect("compiles");
        let loaded =
            LoadedAdapter::load(engine.clone(), name, &component, limits.clone(), "test".into()).expect("loads");
        registry.insert(Arc::new(loaded)).expect("insert");
    }
    registry
}

/// The custody holder "mother" as MedCom's published test patient: her
/// replacement CPR number is the one MedCom's CareCommunication samples carry.
pub fn medcom_mother() -> pb::Party {
    let mut mother = parent("mother", "0101900000", "Mor Testesen");
    mother.identifier = Some(pb::PersonIdentifier {
        kind: pb::PersonIdentifierKind::ReplacementCpr.into(),
        value: "0703921VJ4".into(),
    });
    mother
}

/// A letter from the municipality to psychiatry about `custody_holder`,
/// written by a caseworker (message id `letter-{n}`).
pub fn letter_to_psychiatry(on: &str, custody_holder: &str, n: usize) -> pb::CaseEvent {
    let org =
        |name: &str, ean: &str| pb::Organisation { display_name: name.into(), ean: ean.into(), ..Default::default() };
    let correspondence = pb::Correspondence {
        message_id: format!("letter-{n}"),
        thread_id: format!("letter-{n}"),
        activity: pb::CorrespondenceActivity::New.into(),
        sector: pb::Sector::Psychiatry.into(),
        sender: Some(org("Bro Kommune, Familieafdelingen", "5790000000005")),
        receiver: Some(org("Psykiatrisk Center", "5790000000012")),
        custody_holder: custody_holder.into(),
        subject: "Koordinering af indsatser".into(),
        entries: vec![pb::CorrespondenceEntry {
            entry_id: format!("letter-{n}-1"),
            text: format!("Kære behandler\nVi foreslår et fælles møde om forældrenes plan ({n}).\nVenlig hilsen"),
            ..Default::default()
        }],
        send_time: Some(prost_types::Timestamp { seconds: 1_772_445_600 + n as i64, nanos: 0 }),
        ..Default::default()
    };
    event(on, Kind::CorrespondenceRecorded(pb::CorrespondenceRecorded { correspondence: Some(correspondence) }))
}

/// Identities for a `bro serve` child process: a development identity
/// provider whose key set the server reads from a file.
pub struct ServeIdentity {
    /// The provider.
    pub idp: Arc<DevIdentityProvider>,
    /// The `[identity]` section pointing at its key set.
    pub toml: String,
}

impl ServeIdentity {
    /// Writes the provider's key set into `dir`.
    pub fn prepare(dir: &std::path::Path) -> anyhow::Result<ServeIdentity> {
        std::fs::create_dir_all(dir)?;
        let idp = Arc::new(DevIdentityProvider::load_or_create(dir)?);
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, idp.jwks())?;
        let toml = format!(
            "[identity]\nissuer = \"{}\"\naudience = \"{}\"\njwks_file = \"{}\"\n",
            bro_dev::DEV_ISSUER,
            bro_dev::DEV_AUDIENCE,
            jwks.display()
        );
        Ok(ServeIdentity { idp, toml })
    }

    /// Writes a configuration file with the `[identity]` section and `extra`; returns its path.
    pub fn config_file(&self, dir: &std::path::Path, extra: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join("bro.toml");
        std::fs::write(&path, format!("{extra}\n{}", self.toml))?;
        Ok(path)
    }

    /// `channel` with a caseworker of municipality `cvr`'s credentials.
    pub fn caseworker(&self, channel: Channel, cvr: &str) -> AuthChannel {
        let token = self.idp.token(&DevClaims::caseworker(&format!("caseworker-{cvr}"), cvr));
        let interceptor = CallerInterceptor::new(Some(&token), Purpose::CaseHandling).expect("a token is ASCII");
        tonic::service::interceptor::InterceptedService::new(channel, interceptor)
    }

    /// `channel` with a person's credentials for `role` and `purpose`.
    pub fn person(&self, channel: Channel, role: Role, purpose: Purpose) -> AuthChannel {
        let token = self.idp.token(&DevClaims::with_role(&format!("{}-1", role.as_str()), TEST_CVR, role));
        let interceptor = CallerInterceptor::new(Some(&token), purpose).expect("a token is ASCII");
        tonic::service::interceptor::InterceptedService::new(channel, interceptor)
    }

    /// A system's client token (its client id is its name).
    pub fn system_token(&self, name: &str) -> String {
        self.idp.client_token(name, std::time::Duration::from_secs(3600))
    }

    /// `channel` with configured system `name`'s credentials, exchanging messages.
    pub fn system(&self, channel: Channel, name: &str) -> AuthChannel {
        let interceptor =
            CallerInterceptor::new(Some(&self.system_token(name)), Purpose::Exchange).expect("a token is ASCII");
        tonic::service::interceptor::InterceptedService::new(channel, interceptor)
    }
}

/// Packages reference adapter `name` for a `bro serve` child: a fresh
/// signing key (`dir/ops.key`, `dir/ops.pub`) made with the `bro` binary at
/// `bro`, and the signed component in `dir/adapters/{name}/`; the key's
/// public half, for the configuration's `[adapters.vendors.ops]`.
pub fn package_adapter(bro: &std::path::Path, dir: &std::path::Path, name: &str) -> String {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bro).args(args).output().expect("run bro");
        assert!(out.status.success(), "bro {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["adapter", "keygen", dir.join("ops").to_str().expect("utf-8")]);
    let built = std::env::var_os("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/adapters"))
        .join(format!("{name}.wasm"));
    assert!(built.exists(), "{} is missing: run `cargo xtask build-adapters`", built.display());
    let package = dir.join("adapters").join(name);
    std::fs::create_dir_all(&package).expect("mkdir");
    let wasm = package.join(format!("{name}.wasm"));
    std::fs::copy(&built, &wasm).expect("copy");
    run(&["adapter", "sign", wasm.to_str().expect("utf-8"), "--key", dir.join("ops.key").to_str().expect("utf-8")]);
    std::fs::read_to_string(dir.join("ops.pub")).expect("pub").trim().to_owned()
}
