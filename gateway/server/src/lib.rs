//! bro's gateway server: the gRPC services over the case ledger, standard
//! health checking and reflection, Prometheus metrics on an admin listener,
//! and a serve loop with graceful shutdown.
//!
//! Invariants: errors become `Status` only in [`error`]; "now" and "today"
//! come only from the [`clock::Clock`] passed in; no log line carries a CPR
//! number or a name (requests are never logged whole).

pub mod access;
pub mod case_service;
pub mod clock;
pub mod error;
pub mod metrics;
pub mod obligations;
pub mod paging;
pub mod pipeline;
pub mod plans;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bro_api::v1::audit_service_server::AuditServiceServer;
use bro_api::v1::case_service_server::CaseServiceServer;
use bro_api::v1::delivery_service_server::DeliveryServiceServer;
use bro_api::v1::ingest_service_server::IngestServiceServer;
use bro_api::v1::obligation_service_server::ObligationServiceServer;
use bro_api::v1::plan_service_server::PlanServiceServer;
use bro_store::{CaseLedger, EventStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::case_service::CaseApi;
use crate::clock::Clock;
use crate::metrics::{MeteredStore, Metrics};

/// Tunables of a running gateway.
#[derive(Clone)]
pub struct ServeOptions {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// Deadline for a unary call (and for a stream's first response).
    pub request_timeout: Duration,
    /// The loaded WebAssembly adapters, if any (their metrics are served).
    pub adapters: Option<Arc<bro_plugin_host::AdapterRegistry>>,
    /// The external systems: what they send (ingest) and are sent (outbox).
    pub systems: Arc<pipeline::Systems>,
    /// Authentication, keys and the audit log; required.
    pub security: Option<Security>,
    /// What the § 78 coordination checks allow (meetings a week, the tag table).
    pub coordination: Arc<bro_rules::coordination::CoordinationPolicy>,
    /// Where the parents' plan pages are served, if anywhere.
    pub plan_pages: Option<PlanPagesSettings>,
}

/// The parents' plan pages: a loopback listener (behind the municipality's
/// TLS-terminating proxy) and the public address links point at.
#[derive(Clone, Debug)]
pub struct PlanPagesSettings {
    /// The listener (loopback only).
    pub listener: Arc<std::net::TcpListener>,
    /// The base URL of links, e.g. `https://plan.kommune.dk`.
    pub base_url: String,
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
        Ok(PlanPagesSettings { listener: Arc::new(listener), base_url: base_url.trim_end_matches('/').to_owned() })
    }
}

/// Who may call, with what keys, and where their calls are recorded.
#[derive(Clone)]
pub struct Security {
    /// The gateway's keys (keyed-hash index, audit chain, sealing).
    pub keys: Arc<bro_store::Keyring>,
    /// The audit log.
    pub audit: Arc<dyn bro_store::AuditLog>,
    /// Bearer tokens: the identity provider's settings (none: certificates only).
    pub jwt: Option<access::jwt::JwtSettings>,
    /// TLS; required unless the listener is on a loopback address.
    pub tls: Option<TlsSettings>,
    /// The per-client rate limit.
    pub rate_limit: access::gate::RateLimit,
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
            adapters: None,
            systems: Arc::new(pipeline::Systems::default()),
            security: None,
            coordination: Arc::new(bro_rules::coordination::CoordinationPolicy::default()),
            plan_pages: None,
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
    let grpc_addr =
        grpc.local_addr().map_err(|e| ServeError::Config(format!("the gRPC listener has no address: {e}")))?;
    if security.tls.is_none() {
        if !grpc_addr.ip().is_loopback() {
            return Err(ServeError::Config(format!(
                "refusing to serve on {grpc_addr} without TLS: plain text is allowed on a loopback address only; \
                 configure [tls] (certificate, key, client CA)"
            )));
        }
        tracing::warn!(addr = %grpc_addr, "serving WITHOUT TLS on a loopback address: clients must be on this machine");
    }
    let jwt = match &security.jwt {
        None => None,
        Some(settings) => Some(
            access::jwt::JwtVerifier::new(settings.clone())
                .await
                .map_err(|e| ServeError::Config(format!("identity provider: {e}")))?,
        ),
    };
    let (trail, trail_task) = access::audit::AuditTrail::start(security.audit.clone());
    let gate = access::gate::Gate::new(Arc::new(access::gate::GateState::new(
        access::gate::Authenticator::new(jwt, options.systems.clone()),
        trail.clone(),
        security.keys.clone(),
        options.clock.clone(),
        security.rate_limit,
    )));
    let metrics = Arc::new(Metrics::new(options.adapters.clone()));
    // Personal data is sealed before it reaches any backend.
    let sealed: Arc<dyn EventStore> = Arc::new(bro_store::SealedStore::new(store.clone(), security.keys.clone()));
    let metered: Arc<dyn EventStore> = Arc::new(MeteredStore::new(sealed, metrics.clone()));
    let planner: Arc<dyn bro_store::DeliveryPlanner> =
        Arc::new(pipeline::Outbox::new(options.systems.clone(), options.coordination.clone()));
    let ledger = Arc::new(CaseLedger::with_planner(metered, planner));
    let stopping = CancellationToken::new();

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CaseServiceServer<CaseApi>>().await;
    health.set_serving::<ObligationServiceServer<crate::obligations::ObligationApi>>().await;
    health.set_serving::<PlanServiceServer<plans::PlanApi>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bro_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled descriptor set is valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bro_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the compiled descriptor set is valid");
    let worklist = ObligationServiceServer::new(crate::obligations::ObligationApi::new(
        ledger.clone(),
        options.systems.clone(),
        options.clock.clone(),
        metrics.clone(),
    ));
    let ingest = IngestServiceServer::new(pipeline::ingest::IngestApi::new(
        ledger.clone(),
        options.systems.clone(),
        options.adapters.clone(),
        options.clock.clone(),
        metrics.clone(),
        security.keys.clone(),
    ))
    .max_decoding_message_size(options.max_request_bytes);
    let worker = pipeline::worker::DeliveryWorker::new(
        ledger.store().clone(),
        options.systems.clone(),
        options.adapters.clone(),
        options.clock.clone(),
        metrics.clone(),
        trail.clone(),
        security.keys.clone(),
    );
    let deliveries = DeliveryServiceServer::new(pipeline::deliveries::DeliveryApi::new(
        ledger.store().clone(),
        options.systems.clone(),
        worker.clone(),
        options.clock.clone(),
        metrics.clone(),
        stopping.clone(),
    ))
    .max_encoding_message_size(64 * 1024 * 1024);
    // Every committed change may have enqueued deliveries: wake the worker.
    {
        let worker = worker.clone();
        let mut changes = ledger.subscribe();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopping.cancelled() => break,
                    change = changes.recv() => match change {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => worker.wake(),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
    }
    let worker_task = tokio::spawn(worker.run(stopping.clone()));
    let audit = AuditServiceServer::new(access::audit::AuditApi::new(
        trail.clone(),
        security.keys.clone(),
        options.systems.clone(),
        metrics.clone(),
    ));
    let reader = plans::PlanReader::new(ledger.clone(), options.coordination.clone(), options.clock.clone());
    let plan_api = PlanServiceServer::new(plans::PlanApi::new(
        reader.clone(),
        options.systems.clone(),
        metrics.clone(),
        security.keys.clone(),
        options.plan_pages.as_ref().map(|p| p.base_url.clone()),
    ))
    .max_decoding_message_size(options.max_request_bytes)
    .max_encoding_message_size(64 * 1024 * 1024);
    let pages_task = match &options.plan_pages {
        None => None,
        Some(settings) => {
            let listener = settings
                .listener
                .try_clone()
                .and_then(|l| {
                    l.set_nonblocking(true)?;
                    TcpListener::from_std(l)
                })
                .map_err(ServeError::Admin)?;
            tracing::info!(addr = ?listener.local_addr().ok(), base_url = %settings.base_url, "plan pages listening");
            let pages = Arc::new(plans::http::PlanPages::new(
                reader,
                security.keys.clone(),
                trail.clone(),
                options.clock.clone(),
            ));
            let app = pages.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
            let stopping = stopping.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, app).with_graceful_shutdown(stopping.cancelled_owned()).await
            }))
        }
    };
    drop(trail);
    let cases = CaseServiceServer::new(CaseApi::new(
        ledger,
        options.systems.clone(),
        options.clock.clone(),
        metrics.clone(),
        stopping.clone(),
    ))
    .max_decoding_message_size(options.max_request_bytes)
    .max_encoding_message_size(64 * 1024 * 1024);

    {
        let stopping = stopping.clone();
        let health = health.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight calls");
            health.set_not_serving::<CaseServiceServer<CaseApi>>().await;
            stopping.cancel();
        });
    }

    let admin_task = admin.map(|listener| {
        let metrics = metrics.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let app = axum::Router::new()
                .route("/metrics", axum::routing::get(move || async move { metrics.render() }))
                .route("/healthz", axum::routing::get(|| async { "ok\n" }));
            axum::serve(listener, app).with_graceful_shutdown(stopping.cancelled_owned()).await
        })
    });

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
    let served = builder
        .timeout(options.request_timeout)
        .layer(gate)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(cases)
        .add_service(worklist)
        .add_service(ingest)
        .add_service(deliveries)
        .add_service(audit)
        .add_service(plan_api)
        // Nagle's algorithm off on every accepted connection: the server
        // builder's `tcp_nodelay` does not reach an incoming stream passed in.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            stopping.clone().cancelled_owned(),
        )
        .await;
    stopping.cancel();
    if let Some(task) = admin_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(task) = pages_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "plan pages stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "plan pages task failed"),
            Ok(Ok(())) => {}
        }
    }
    // Attempts in flight finish and record their outcome before the store closes.
    if let Err(e) = worker_task.await {
        tracing::warn!(error = %e, "delivery worker task failed");
    }
    served?;
    // Every call answered had its audit record written first; the writer
    // task ends with the last clone of the trail.
    drop(trail_task);
    store.close().await?;
    tracing::info!("gateway stopped");
    Ok(())
}
