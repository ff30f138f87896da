//! Prometheus metrics: per-RPC request counts (by status code) and latencies,
//! the event store's append latency (the ledger reports each append to
//! [`Metrics`] as its [`AppendObserver`]), ingest and delivery outcomes, and
//! the adapters' figures. Served on the admin listener.

use std::sync::Arc;
use std::time::Duration;

use bro_store::{AppendObserver, Stage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::clock::Stopwatch;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
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
    stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    appended_events: Counter,
    ingests: Family<PipelineLabels, Counter>,
    delivery_attempts: Family<PipelineLabels, Counter>,
    leases_held: Gauge,
    leases_live: Gauge,
    adapters: Option<Arc<bro_plugin_host::AdapterRegistry>>,
    /// The store whose connection pool is reported, once known (weakly:
    /// the metrics must not keep a closed store, and its directory lock, alive).
    store: std::sync::OnceLock<std::sync::Weak<dyn bro_store::EventStore>>,
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
        let stage_seconds =
            Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "stage_duration_seconds",
            "Time per stage of a write: adapter, validation, commit_wait (for the writer), commit (fsync included), audit",
            stage_seconds.clone(),
        );
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
        let (leases_held, leases_live) = (Gauge::default(), Gauge::default());
        registry.register(
            "delivery_leases_held",
            "(System, case) delivery queues this replica's worker holds a lease on now",
            leases_held.clone(),
        );
        registry.register(
            "delivery_leases_live",
            "Delivery leases live in the store, held by any replica (as of this replica's last look)",
            leases_live.clone(),
        );
        Metrics {
            registry,
            leases_held,
            leases_live,
            store: std::sync::OnceLock::new(),
            rpc_requests,
            rpc_seconds,
            append_seconds,
            stage_seconds,
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

    /// Sets the delivery lease gauges: held by this replica, and live in the store (when looked at).
    pub fn set_delivery_leases(&self, held: u64, live: Option<usize>) {
        self.leases_held.set(held as i64);
        if let Some(live) = live {
            self.leases_live.set(live as i64);
        }
    }

    /// Reports `store`'s connection pool from now on (a backend without one reports nothing).
    pub fn watch_pool(&self, store: &Arc<dyn bro_store::EventStore>) {
        let _ = self.store.set(Arc::downgrade(store));
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        self.rpc_requests.get_or_create(&RpcCodeLabels { method: method.to_owned(), code: format!("{code:?}") }).inc();
        self.rpc_seconds.get_or_create(&RpcLabels { method: method.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// Runs one RPC: times it, counts its outcome, and logs a failure with
    /// its code and message (outside text in it masked), never the request.
    pub async fn observe<T>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<T, crate::error::ApiError>>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let stopwatch = Stopwatch::start();
        let result: Result<T, tonic::Status> = call.await.map_err(Into::into);
        let code = result.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        self.record_rpc(method, code, stopwatch.elapsed());
        match &result {
            Ok(_) => tracing::debug!(method, elapsed_ms = stopwatch.elapsed().as_millis() as u64, "rpc ok"),
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
        // Per-adapter and pool figures are read at scrape time.
        let mut extra = String::new();
        if let Some(adapters) = &self.adapters {
            extra += &render_adapter_stats(adapters);
        }
        if let Some(pool) = self.store.get().and_then(std::sync::Weak::upgrade).and_then(|s| s.pool_usage()) {
            extra += &render_pool(pool);
        }
        if !extra.is_empty() {
            let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_owned();
            out = body + &extra + "# EOF\n";
        }
        out
    }
}

impl AppendObserver for Metrics {
    fn append_finished(&self, elapsed: Duration, appended: usize) {
        self.append_seconds.observe(elapsed.as_secs_f64());
        self.appended_events.inc_by(appended as u64);
    }

    fn stage_finished(&self, stage: Stage, elapsed: Duration) {
        self.stage_seconds.get_or_create(&StageLabels { stage: stage.as_str() }).observe(elapsed.as_secs_f64());
    }
}

/// OpenMetrics text for the store's connection pool.
fn render_pool(pool: bro_store::PoolUsage) -> String {
    format!(
        "# HELP bro_store_pool_connections Database connections of this replica's pool, by state.\n\
         # TYPE bro_store_pool_connections gauge\n\
         bro_store_pool_connections{{state=\"busy\"}} {}\n\
         bro_store_pool_connections{{state=\"idle\"}} {}\n\
         # HELP bro_store_pool_max_connections Most connections the pool opens.\n\
         # TYPE bro_store_pool_max_connections gauge\n\
         bro_store_pool_max_connections {}\n\
         # HELP bro_store_pool_waiting Callers waiting for a database connection.\n\
         # TYPE bro_store_pool_waiting gauge\n\
         bro_store_pool_waiting {}\n",
        pool.open.saturating_sub(pool.idle),
        pool.idle,
        pool.max,
        pool.waiting
    )
}

/// OpenMetrics text for every loaded adapter.
fn render_adapter_stats(adapters: &bro_plugin_host::AdapterRegistry) -> String {
    use std::fmt::Write as _;
    let stats: Vec<(String, bro_plugin_host::AdapterStats)> =
        adapters.names().into_iter().filter_map(|n| adapters.get(&n).ok().map(|a| (n, a.stats()))).collect();
    let mut out = String::new();
    type Counter = (&'static str, &'static str, fn(&bro_plugin_host::AdapterStats) -> u64);
    let counters: [Counter; 12] = [
        ("bro_adapter_calls", "Adapter calls that ran", |s| s.calls),
        ("bro_adapter_errors", "Adapter calls answered with the adapter's own refusal", |s| s.adapter_errors),
        ("bro_adapter_failures", "Adapter calls that crashed, broke a limit or were stopped", |s| s.failures),
        ("bro_adapter_input_failures", "Adapter call failures that were the message's fault", |s| s.input_failures),
        ("bro_adapter_traps", "Adapter calls that crashed", |s| s.traps),
        ("bro_adapter_broken", "Adapter crashes its known-good checks repeated", |s| s.broken),
        ("bro_adapter_out_of_fuel", "Adapter calls that used up their fuel", |s| s.out_of_fuel),
        ("bro_adapter_memory_limits", "Adapter calls that hit the memory limit", |s| s.memory_limits),
        ("bro_adapter_timeouts", "Adapter calls stopped by the wall-clock backstop", |s| s.timeouts),
        ("bro_adapter_quarantined_refusals", "Calls refused while the adapter was quarantined", |s| {
            s.quarantined_refusals
        }),
        ("bro_adapter_busy_refusals", "Calls refused because no call slot came free in time", |s| s.busy_refusals),
        ("bro_adapter_throttled_refusals", "Calls refused because their party was throttled", |s| s.throttled_refusals),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for (adapter, s) in &stats {
            let _ = writeln!(out, "{name}_total{{adapter=\"{adapter}\"}} {}", get(s));
        }
    }
    type Gauge = (&'static str, &'static str, fn(&bro_plugin_host::AdapterStats) -> u64);
    let gauges: [Gauge; 4] = [
        ("bro_adapter_quarantined", "1 while the adapter is quarantined", |s| {
            u64::from(matches!(s.state, bro_plugin_host::AdapterState::Quarantined { .. }))
        }),
        ("bro_adapter_consecutive_failures", "Failures in the adapter's current streak", |s| {
            u64::from(s.consecutive_failures)
        }),
        ("bro_adapter_in_flight", "Adapter calls running now", |s| u64::from(s.in_flight)),
        ("bro_adapter_throttled_parties", "Parties whose calls to the adapter are throttled now", |s| {
            s.throttled.len() as u64
        }),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} gauge");
        for (adapter, s) in &stats {
            let _ = writeln!(out, "{name}{{adapter=\"{adapter}\"}} {}", get(s));
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
