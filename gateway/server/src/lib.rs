//! bro's gateway server: the gRPC services over the case ledger, standard
//! health checking and reflection, the parents' plan pages, Prometheus
//! metrics on an admin listener, and a serve loop with graceful shutdown.
//!
//! The modules are layered; none imports one above it (ARCHITECTURE.md has
//! the map): [`clock`], [`error`], [`paging`], [`names`] and [`systems`] at
//! the bottom; [`metrics`]; [`access`]; [`context`]; [`pipeline`] and
//! [`plans`]; [`services`]; and `run`, here, which builds them.
//!
//! Invariants: errors become `Status` only in [`error`]; "now" and "today"
//! come only from the [`clock::Clock`] passed in; no log line carries a CPR
//! number or a name (requests are never logged whole).

pub mod access;
pub mod clock;
pub mod context;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod names;
pub mod paging;
pub mod pipeline;
pub mod plans;
pub mod services;
pub mod systems;
pub mod worklist;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bro_api::v1::adapter_service_server::AdapterServiceServer;
use bro_api::v1::audit_service_server::AuditServiceServer;
use bro_api::v1::case_service_server::CaseServiceServer;
use bro_api::v1::delivery_service_server::DeliveryServiceServer;
use bro_api::v1::ingest_service_server::IngestServiceServer;
use bro_api::v1::obligation_service_server::ObligationServiceServer;
use bro_api::v1::plan_service_server::PlanServiceServer;
use bro_store::{CaseLedger, EventStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::access::audit::AuditTrail;
use crate::access::gate::{Authenticator, Gate, GateState};
use crate::clock::Clock;
use crate::context::Context;
use crate::metrics::Metrics;
use crate::pipeline::worker::DeliveryWorker;
use crate::services::cases::CaseApi;

/// Tunables of a running gateway.
#[derive(Clone)]
pub struct ServeOptions {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// Deadline for a unary call (and for a stream's first response).
    pub request_timeout: Duration,
    /// How long a stop waits for open connections (a client that stops
    /// reading keeps one open); then they are closed and the store with them.
    pub shutdown_grace: Duration,
    /// The loaded WebAssembly adapters, if any (their metrics are served).
    pub adapters: Option<Arc<bro_plugin_host::AdapterRegistry>>,
    /// The external systems: what they send (ingest) and are sent (outbox).
    pub systems: Arc<systems::Systems>,
    /// Authentication, keys and the audit log; required.
    pub security: Option<Security>,
    /// What the § 78 coordination checks allow (meetings a week, the tag table).
    pub coordination: Arc<bro_rules::coordination::CoordinationPolicy>,
    /// Where the parents' plan pages are served, if anywhere.
    pub plan_pages: Option<PlanPagesSettings>,
    /// How often (and where) the audit log's head is exported.
    pub head_export: jobs::HeadExport,
    /// How long a delivery worker holds a (system, case) queue before it
    /// must renew its lease; a replica that dies releases its queues this
    /// long after its last renewal.
    pub delivery_lease: Duration,
    /// Server streams: per caller, and for how long.
    pub streams: context::StreamLimits,
    /// HTTP/2 limits of the gRPC listener.
    pub http2: Http2Limits,
}

/// HTTP/2 limits of the gRPC listener: a client cannot hold unbounded
/// streams or a connection forever, and a dead peer is noticed.
#[derive(Clone, Copy, Debug)]
pub struct Http2Limits {
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// A ping after this long without frames (a dead peer is dropped when it is not answered).
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered.
    pub keepalive_timeout: Duration,
    /// A connection older than this is told to go away (GOAWAY), and closed
    /// `max_connection_age_grace` later; clients reconnect.
    pub max_connection_age: Duration,
    /// See `max_connection_age`.
    pub max_connection_age_grace: Duration,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_concurrent_streams: 200,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            max_connection_age: Duration::from_secs(4 * 3600),
            max_connection_age_grace: Duration::from_secs(60),
        }
    }
}

/// The parents' plan pages: a loopback listener (behind the municipality's
/// TLS-terminating proxy) and the public address links point at.
#[derive(Clone, Debug)]
pub struct PlanPagesSettings {
    /// The listener (loopback only).
    pub listener: Arc<std::net::TcpListener>,
    /// The base URL of links, e.g. `https://plan.kommune.dk`.
    pub base_url: String,
    /// The proxies whose `X-Forwarded-For` names the client (rate limits
    /// are per client); none: the connection's own address counts.
    pub trusted_proxies: plans::http::TrustedProxies,
}

impl PlanPagesSettings {
    /// Pages on `listener`, linked as `base_url` (default: the listener's own
    /// `http://` address). Refuses a listener off loopback, and a base URL
    /// that is not `https://` unless it is a loopback address.
    pub fn new(listener: std::net::TcpListener, base_url: Option<String>) -> Result<Self, String> {
        let addr = listener.local_addr().map_err(|e| format!("the pages listener has no address: {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve plan pages on {addr}: listen on a loopback address behind a TLS-terminating proxy"
            ));
        }
        let base_url = base_url.unwrap_or_else(|| format!("http://{addr}"));
        let uri: hyper::Uri = base_url.parse().map_err(|_| format!("pages_base_url {base_url:?} is not a URL"))?;
        let loopback = uri.host().is_some_and(|h| {
            h == "localhost" || h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
        let ok = match uri.scheme_str() {
            Some("https") => uri.host().is_some(),
            Some("http") => loopback,
            _ => false,
        };
        if !ok || uri.query().is_some() {
            return Err(format!(
                "pages_base_url {base_url:?} must be an https:// URL without a query (http:// only on a loopback address)"
            ));
        }
        Ok(PlanPagesSettings {
            listener: Arc::new(listener),
            base_url: base_url.trim_end_matches('/').to_owned(),
            trusted_proxies: Default::default(),
        })
    }
}

/// Who may call, with what keys, and where their calls are recorded.
#[derive(Clone)]
pub struct Security {
    /// The gateway's keys (keyed-hash index, audit chain, sealing).
    pub keys: Arc<bro_store::Keyring>,
    /// The audit log.
    pub audit: Arc<dyn bro_store::AuditLog>,
    /// The key the exported audit heads are signed with (apart from `keys`).
    pub audit_signer: Arc<bro_store::AuditSigner>,
    /// Bearer tokens: the identity provider's settings (none: certificates only).
    pub jwt: Option<access::jwt::JwtSettings>,
    /// TLS; required unless the listener is on a loopback address.
    pub tls: Option<TlsSettings>,
    /// The per-client rate limit.
    pub rate_limit: access::ratelimit::RateLimit,
}

/// The server's certificate and the CA its clients' certificates chain to.
#[derive(Clone)]
pub struct TlsSettings {
    /// Server certificate chain (PEM).
    pub cert_pem: String,
    /// Server private key (PEM).
    pub key_pem: String,
    /// CA certificates client certificates must chain to (PEM); none: no client certificates.
    pub client_ca_pem: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            clock: Arc::new(clock::SystemClock),
            max_request_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            adapters: None,
            systems: Arc::new(systems::Systems::default()),
            security: None,
            coordination: Arc::new(bro_rules::coordination::CoordinationPolicy::default()),
            plan_pages: None,
            delivery_lease: Duration::from_secs(30),
            streams: context::StreamLimits::default(),
            http2: Http2Limits::default(),
            head_export: jobs::HeadExport::default(),
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The admin listener failed.
    #[error("admin listener failed: {0}")]
    Admin(std::io::Error),
    /// The configuration does not allow serving.
    #[error("{0}")]
    Config(String),
    /// Closing the store failed.
    #[error("closing the event store failed: {0}")]
    Store(#[from] bro_store::StoreError),
}

/// Largest answer a service sends (a case with a long history, a page of plans).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Serves the gateway on `grpc` (and metrics on `admin`) until `shutdown`
/// resolves; then stops accepting, lets in-flight calls finish, ends watch
/// streams, and closes the store.
pub async fn run(
    grpc: TcpListener,
    admin: Option<TcpListener>,
    store: Arc<dyn EventStore>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let security = options
        .security
        .clone()
        .ok_or_else(|| ServeError::Config("no security settings: keys and an audit log are required".into()))?;
    let grpc_addr = grpc_address(&grpc, &security)?;
    // Writes' records a stop left unchained (PostgreSQL) join the chain first.
    match security.audit.settle().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "chained the audit records of writes committed before the last stop"),
        Err(e) => return Err(ServeError::Config(format!("the audit log cannot be written: {e}"))),
    }
    let metrics = Arc::new(Metrics::new(options.adapters.clone()));
    let (trail, trail_task) = AuditTrail::start(security.audit.clone(), Some(metrics.clone()));
    let gate = gate(&options, &security, trail.clone()).await?;
    let ctx = context(&options, &security, store.clone(), trail, metrics);
    let (worker, worker_task) = start_worker(&ctx, options.delivery_lease);
    let follower_task = follow_store(&ctx, &worker);
    let head_export_task = jobs::start_head_export(&ctx, options.head_export.clone(), security.audit_signer.clone());
    let worklist_task = start_worklist(&ctx).await?;
    let pages_task = serve_pages(&ctx, options.plan_pages.as_ref())?;
    let admin_task = admin.map(|listener| serve_admin(listener, ctx.metrics.clone(), ctx.stopping.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CaseServiceServer<CaseApi>>().await;
    health.set_serving::<ObligationServiceServer<services::obligations::ObligationApi>>().await;
    health.set_serving::<PlanServiceServer<services::plans::PlanApi>>().await;
    {
        let stopping = ctx.stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight calls");
            health.set_not_serving::<CaseServiceServer<CaseApi>>().await;
            stopping.cancel();
        });
    }

    tracing::info!(addr = %grpc_addr, tls = security.tls.is_some(), "gRPC listening");
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca)).client_auth_optional(true);
        }
        builder = builder.tls_config(config).map_err(ServeError::Transport)?;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(bro_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().expect("the compiled descriptor set is valid");
    let reflection_v1alpha = reflection().build_v1alpha().expect("the compiled descriptor set is valid");
    let max_request = options.max_request_bytes;
    let plans = services::plans::PlanApi::new(ctx.clone(), options.plan_pages.as_ref().map(|p| p.base_url.clone()));
    let stopping = ctx.stopping.clone();
    let http2 = options.http2;
    let served = builder
        .timeout(options.request_timeout)
        .max_concurrent_streams(http2.max_concurrent_streams)
        .http2_keepalive_interval(Some(http2.keepalive_interval))
        .http2_keepalive_timeout(Some(http2.keepalive_timeout))
        .max_connection_age(http2.max_connection_age)
        .max_connection_age_grace(http2.max_connection_age_grace)
        .layer(gate)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            CaseServiceServer::new(CaseApi::new(ctx.clone()))
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_ANSWER_BYTES),
        )
        .add_service(ObligationServiceServer::new(services::obligations::ObligationApi::new(ctx.clone())))
        .add_service(
            IngestServiceServer::new(services::ingest::IngestApi::new(ctx.clone()))
                .max_decoding_message_size(max_request),
        )
        .add_service(
            DeliveryServiceServer::new(services::deliveries::DeliveryApi::new(ctx.clone(), worker))
                .max_encoding_message_size(MAX_ANSWER_BYTES),
        )
        .add_service(AuditServiceServer::new(services::audit::AuditApi::new(ctx.clone())))
        .add_service(AdapterServiceServer::new(services::adapters::AdapterApi::new(ctx.clone())))
        .add_service(
            PlanServiceServer::new(plans)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_ANSWER_BYTES),
        )
        // Nagle's algorithm off on every accepted connection: the server
        // builder's `tcp_nodelay` does not reach an incoming stream passed in.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            stopping.clone().cancelled_owned(),
        );
    // The services hold the context from here; the audit writer ends with its last clone.
    drop(ctx);
    let grace = options.shutdown_grace;
    let after_grace = {
        let stopping = stopping.clone();
        async move {
            stopping.cancelled().await;
            tokio::time::sleep(grace).await;
        }
    };
    let served = tokio::select! {
        served = served => served,
        // Dropping the server closes what is still open: a stop is bounded.
        () = after_grace => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "connections still open after the grace period are closed");
            Ok(())
        }
    };
    stopping.cancel();
    finish("admin listener", admin_task).await;
    finish("plan pages", pages_task).await;
    if let Err(e) = worklist_task.await {
        tracing::warn!(error = %e, "worklist task failed");
    }
    // Attempts in flight finish and record their outcome before the store closes.
    if let Err(e) = worker_task.await {
        tracing::warn!(error = %e, "delivery worker task failed");
    }
    // The background tasks end with `stopping`; their clones of the store go with them.
    for (what, task) in [("audit head export", Some(head_export_task)), ("store follower", follower_task)] {
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "{what} task failed");
        }
    }
    served?;
    // Every call answered had its audit record written first.
    drop(trail_task);
    store.close().await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The gRPC listener's address, if the security settings allow serving on
/// it: plain text on a loopback address only.
fn grpc_address(grpc: &TcpListener, security: &Security) -> Result<SocketAddr, ServeError> {
    let addr = grpc.local_addr().map_err(|e| ServeError::Config(format!("the gRPC listener has no address: {e}")))?;
    if security.tls.is_none() {
        if !addr.ip().is_loopback() {
            return Err(ServeError::Config(format!(
                "refusing to serve on {addr} without TLS: plain text is allowed on a loopback address only; \
                 configure [tls] (certificate, key, client CA)"
            )));
        }
        tracing::warn!(%addr, "serving WITHOUT TLS on a loopback address: clients must be on this machine");
    }
    Ok(addr)
}

/// The gate every RPC passes: authentication (the identity provider's keys
/// are loaded now, so a bad configuration fails at start-up), the rate
/// limit, and the audit record of every call.
async fn gate(options: &ServeOptions, security: &Security, trail: AuditTrail) -> Result<Gate, ServeError> {
    let jwt = match &security.jwt {
        None => None,
        Some(settings) => Some(
            access::jwt::JwtVerifier::new(settings.clone(), options.clock.clone())
                .await
                .map_err(|e| ServeError::Config(format!("identity provider: {e}")))?,
        ),
    };
    Ok(Gate::new(Arc::new(GateState::new(
        Authenticator::new(jwt, options.systems.clone()),
        trail,
        security.keys.clone(),
        options.clock.clone(),
        security.rate_limit,
    ))))
}

/// The shared parts: the ledger over the sealed store (personal data is
/// sealed before it reaches any backend), planning the outbox of every
/// write and timed by the metrics.
fn context(
    options: &ServeOptions,
    security: &Security,
    store: Arc<dyn EventStore>,
    trail: AuditTrail,
    metrics: Arc<Metrics>,
) -> Context {
    store.observe_commits(metrics.clone());
    metrics.watch_pool(&store);
    let sealed: Arc<dyn EventStore> = Arc::new(bro_store::SealedStore::new(store, security.keys.clone()));
    let planner = Arc::new(pipeline::outbox::Outbox::new(options.systems.clone(), options.coordination.clone()));
    let ledger = Arc::new(CaseLedger::with_planner(sealed, planner).observed_by(metrics.clone()));
    Context {
        worklist: Arc::new(worklist::Worklist::new(ledger.clone(), options.clock.clone())),
        ledger,
        systems: options.systems.clone(),
        clock: options.clock.clone(),
        metrics,
        keys: security.keys.clone(),
        trail,
        adapters: options.adapters.clone(),
        coordination: options.coordination.clone(),
        stopping: CancellationToken::new(),
        resync: Arc::new(tokio::sync::watch::channel(0).0),
        streams: Arc::new(context::StreamRegistry::new(options.streams)),
    }
}

/// Follows what other replicas commit to a shared store: a case's new
/// version reaches this gateway's watchers (who read the events), moved
/// deliveries wake the worker and the pull streams, and a resync makes
/// every stream re-read what it follows. Nothing to do for a store only
/// this process writes.
fn follow_store(ctx: &Context, worker: &DeliveryWorker) -> Option<JoinHandle<()>> {
    let mut changes = ctx.store().changes()?;
    let (ledger, resync, stopping, worker) =
        (ctx.ledger.clone(), ctx.resync.clone(), ctx.stopping.clone(), worker.clone());
    Some(tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                _ = stopping.cancelled() => return,
                change = changes.recv() => change,
            };
            match change {
                // Deliveries it enqueued are told apart (`Deliveries`): no wake here.
                Ok(bro_store::StoreChange::Case { case_id, version }) => ledger.announce_remote(case_id, version),
                Ok(bro_store::StoreChange::Deliveries) => {
                    worker.wake();
                    worker.pulled().notify_waiters();
                }
                Ok(bro_store::StoreChange::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    resync.send_modify(|n| *n = n.wrapping_add(1));
                    worker.wake();
                    worker.pulled().notify_waiters();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }))
}

/// Starts the delivery worker, woken by every committed change (which may
/// have enqueued deliveries).
fn start_worker(ctx: &Context, lease_for: Duration) -> (DeliveryWorker, JoinHandle<()>) {
    let worker = DeliveryWorker::new(ctx.clone(), lease_for);
    let waker = worker.clone();
    let mut changes = ctx.ledger.subscribe();
    let stopping = ctx.stopping.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopping.cancelled() => break,
                change = changes.recv() => match change {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => waker.wake(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
    let task = tokio::spawn(worker.clone().run(ctx.stopping.clone()));
    (worker, task)
}

/// Makes the worklist entries of an earlier rules revision stale, and
/// starts re-evaluating cases as they change.
async fn start_worklist(ctx: &Context) -> Result<JoinHandle<()>, ServeError> {
    let reset = ctx.worklist.reset().await?;
    if reset > 0 {
        tracing::info!(
            cases = reset,
            "the rules changed: the worklist index re-evaluates these cases on their next read"
        );
    }
    Ok(tokio::spawn(ctx.worklist.clone().run(ctx.ledger.subscribe(), ctx.stopping.clone())))
}

/// Serves the parents' plan pages, if configured.
fn serve_pages(
    ctx: &Context,
    settings: Option<&PlanPagesSettings>,
) -> Result<Option<JoinHandle<std::io::Result<()>>>, ServeError> {
    let Some(settings) = settings else { return Ok(None) };
    let listener = settings
        .listener
        .try_clone()
        .and_then(|l| {
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)
        })
        .map_err(ServeError::Admin)?;
    tracing::info!(addr = ?listener.local_addr().ok(), base_url = %settings.base_url, "plan pages listening");
    let reader = plans::reader::PlanReader::new(ctx.ledger.clone(), ctx.coordination.clone(), ctx.clock.clone());
    let secure = settings.base_url.starts_with("https://");
    let proxies = settings.trusted_proxies.clone();
    let pages = Arc::new(plans::http::PlanPages::new(
        reader,
        ctx.keys.clone(),
        ctx.trail.clone(),
        ctx.clock.clone(),
        proxies,
        secure,
    ));
    let app = pages.router().into_make_service_with_connect_info::<SocketAddr>();
    let stopping = ctx.stopping.clone();
    Ok(Some(tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(stopping.cancelled_owned()).await
    })))
}

/// Serves `/metrics` and `/healthz` on the admin listener.
fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(move || async move { metrics.render() }))
            .route("/healthz", axum::routing::get(|| async { "ok\n" }));
        axum::serve(listener, app).with_graceful_shutdown(stopping.cancelled_owned()).await
    })
}

/// Waits for a listener's task, logging how it ended.
async fn finish(what: &str, task: Option<JoinHandle<std::io::Result<()>>>) {
    let Some(task) = task else { return };
    match task.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "{what} stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "{what} task failed"),
        Ok(Ok(())) => {}
    }
}
