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
        Metrics {
            registry,
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
        if let Some(adapters) = &self.adapters {
            // Per-adapter figures are read from the host at scrape time.
            let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_owned();
            out = body + &render_adapter_stats(adapters) + "# EOF\n";
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
