//! Prometheus metrics: per-RPC request counts (by status code) and latencies,
//! and the event store's append latency. Served on the admin listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bro_domain::{CaseId, Timestamp};
use bro_store::{
    AppendBatch, AppendOutcome, CaseQuery, Delivery, DeliveryQuery, DeliveryUpdate, EventStore, InboxEntry, InboxPut,
    InboxQuery, InboxState, NewDelivery, RequestRecord, SourceKey, StoreError, StoredCase, StoredEvent,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabels {
    system: String,
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcCodeLabels, Counter>,
    rpc_seconds: Family<RpcLabels, Histogram, fn() -> Histogram>,
    append_seconds: Histogram,
    appended_events: Counter,
    ingests: Family<PipelineLabels, Counter>,
    delivery_attempts: Family<PipelineLabels, Counter>,
    adapters: Option<Arc<bro_plugin_host::AdapterRegistry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// A fresh set of metrics; with `adapters`, their per-adapter figures too.
    pub fn new(adapters: Option<Arc<bro_plugin_host::AdapterRegistry>>) -> Self {
        let mut registry = Registry::with_prefix("bro");
        let rpc_requests = Family::<RpcCodeLabels, Counter>::default();
        let rpc_seconds = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let append_seconds = latency_histogram();
        let appended_events = Counter::default();
        registry.register("rpc_requests", "gRPC requests by method and status code", rpc_requests.clone());
        registry.register("rpc_duration_seconds", "gRPC request latency by method", rpc_seconds.clone());
        registry.register(
            "store_append_duration_seconds",
            "Durable event-store append latency",
            append_seconds.clone(),
        );
        registry.register("store_appended_events", "Events durably appended", appended_events.clone());
        let ingests = Family::<PipelineLabels, Counter>::default();
        let delivery_attempts = Family::<PipelineLabels, Counter>::default();
        registry.register(
            "ingested_messages",
            "Ingested messages by system and outcome (appended, duplicate, unmatched, rejected, unavailable)",
            ingests.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts by receiving system and outcome (delivered, awaiting_pull, retry, dead)",
            delivery_attempts.clone(),
        );
        Metrics {
            registry,
            rpc_requests,
            rpc_seconds,
            append_seconds,
            appended_events,
            ingests,
            delivery_attempts,
            adapters,
        }
    }

    /// Counts one ingested message of `system` by what became of it.
    pub fn record_ingest(&self, system: &str, outcome: &str) {
        self.ingests.get_or_create(&PipelineLabels { system: system.to_owned(), outcome: outcome.to_owned() }).inc();
    }

    /// Counts one delivery attempt to `system` by its outcome.
    pub fn record_delivery_attempt(&self, system: &str, outcome: &str) {
        let labels = PipelineLabels { system: system.to_owned(), outcome: outcome.to_owned() };
        self.delivery_attempts.get_or_create(&labels).inc();
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        self.rpc_requests.get_or_create(&RpcCodeLabels { method: method.to_owned(), code: format!("{code:?}") }).inc();
        self.rpc_seconds.get_or_create(&RpcLabels { method: method.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// Runs one unary RPC: times it, counts its outcome, and logs a failure
    /// with its code and message (outside text in it masked), never the request.
    pub async fn observe<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, crate::error::ApiError>>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let start = std::time::Instant::now();
        let result = call.await.map_err(tonic::Status::from);
        let code = result.as_ref().map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
        self.record_rpc(method, code, start.elapsed());
        match &result {
            Ok(_) => tracing::debug!(method, elapsed_ms = start.elapsed().as_millis() as u64, "rpc ok"),
            Err(s) => {
                tracing::info!(method, code = ?s.code(), message = %bro_domain::mask_digit_runs(s.message()), "rpc failed")
            }
        }
        result.map(tonic::Response::new)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        if let Some(adapters) = &self.adapters {
            // Per-adapter figures are read from the host at scrape time.
            let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_owned();
            out = body + &render_adapter_stats(adapters) + "# EOF\n";
        }
        out
    }
}

/// An [`EventStore`] that times appends into [`Metrics`].
pub struct MeteredStore {
    inner: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn EventStore>, metrics: Arc<Metrics>) -> Self {
        MeteredStore { inner, metrics }
    }
}

#[async_trait]
impl EventStore for MeteredStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let n = batch.events.len() as u64;
        let start = Instant::now();
        let outcome = self.inner.append(batch).await;
        self.metrics.append_seconds.observe(start.elapsed().as_secs_f64());
        if matches!(outcome, Ok(AppendOutcome::Appended)) {
            self.metrics.appended_events.inc_by(n);
        }
        outcome
    }

    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.inner.find_request(request_id).await
    }

    async fn read_events(&self, case_id: &CaseId, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_events(case_id, after, limit).await
    }

    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
        self.inner.get_case(case_id).await
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
        self.inner.list_cases(query).await
    }

    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
        self.inner.find_source(key).await
    }

    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        self.inner.find_cases_by_person(person_key).await
    }

    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError> {
        self.inner.enqueue_delivery(delivery).await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.due_deliveries(now, limit).await
    }

    async fn update_delivery(&self, update: DeliveryUpdate) -> Result<bool, StoreError> {
        self.inner.update_delivery(update).await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(delivery_id).await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(query).await
    }

    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError> {
        self.inner.put_inbox(entry).await
    }

    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.find_inbox_by_request(request_id).await
    }

    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.get_inbox(entry_id).await
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner.list_inbox(query).await
    }

    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.close_inbox(entry_id, state, now).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}

/// OpenMetrics text for every loaded adapter.
fn render_adapter_stats(adapters: &bro_plugin_host::AdapterRegistry) -> String {
    use std::fmt::Write as _;
    let stats: Vec<(String, bro_plugin_host::AdapterStats)> =
        adapters.names().into_iter().filter_map(|n| adapters.get(&n).ok().map(|a| (n, a.stats()))).collect();
    let mut out = String::new();
    type Counter = (&'static str, &'static str, fn(&bro_plugin_host::AdapterStats) -> u64);
    let counters: [Counter; 6] = [
        ("bro_adapter_calls", "Adapter calls", |s| s.calls),
        ("bro_adapter_errors", "Adapter calls answered with an adapter error", |s| s.adapter_errors),
        ("bro_adapter_failures", "Adapter calls that trapped, timed out or breached a limit", |s| s.failures),
        ("bro_adapter_traps", "Adapter calls that trapped", |s| s.traps),
        ("bro_adapter_timeouts", "Adapter calls stopped at their deadline", |s| s.timeouts),
        ("bro_adapter_quarantined_refusals", "Calls refused while the adapter was quarantined", |s| {
            s.quarantined_refusals
        }),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for (adapter, s) in &stats {
            let _ = writeln!(out, "{name}_total{{adapter=\"{adapter}\"}} {}", get(s));
        }
    }
    let _ = writeln!(
        out,
        "# HELP bro_adapter_latency_seconds Recent adapter call latency.\n# TYPE bro_adapter_latency_seconds gauge"
    );
    for (adapter, s) in &stats {
        let _ = writeln!(
            out,
            "bro_adapter_latency_seconds{{adapter=\"{adapter}\",quantile=\"0.5\"}} {}",
            s.p50.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "bro_adapter_latency_seconds{{adapter=\"{adapter}\",quantile=\"0.99\"}} {}",
            s.p99.as_secs_f64()
        );
    }
    out
}
