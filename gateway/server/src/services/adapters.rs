//! `bro.v1.AdapterService`: the loaded adapters and their health, read from
//! the host at call time — serving or quarantined, throttled parties,
//! counters, latency and limits. Administrators only; no personal data (the
//! host masks failure texts).

use std::time::Duration;

use bro_api::v1 as pb;
use bro_api::v1::adapter_service_server::AdapterService;
use bro_domain::Violations;
use bro_plugin_host::{AdapterState, AdapterStats, LoadedAdapter};

use crate::access::Caller;
use crate::access::policy::{Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::paging;

/// `bro.v1.AdapterService`.
pub struct AdapterApi {
    ctx: Context,
}

impl AdapterApi {
    /// The service over the gateway's context.
    pub fn new(ctx: Context) -> Self {
        AdapterApi { ctx }
    }

    /// The adapter in service under `name`, or `NOT_FOUND`.
    fn loaded(&self, name: &str) -> Option<std::sync::Arc<LoadedAdapter>> {
        self.ctx.adapters.as_ref()?.get(name).ok()
    }
}

fn duration(d: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

/// An adapter as the API shows it.
pub fn adapter_to_pb(adapter: &LoadedAdapter) -> pb::Adapter {
    let stats: AdapterStats = adapter.stats();
    let limits = adapter.limits();
    let (state, retry_in) = match stats.state {
        AdapterState::Serving => (pb::AdapterState::Serving, None),
        AdapterState::Quarantined { retry_in, .. } => (pb::AdapterState::Quarantined, duration(retry_in)),
    };
    pb::Adapter {
        name: format!("adapters/{}", adapter.name()),
        version: adapter.info().version.clone(),
        sha256: adapter.sha256().to_owned(),
        state: state as i32,
        retry_in,
        consecutive_failures: stats.consecutive_failures,
        last_failure: stats.last_failure.unwrap_or_default(),
        limits: Some(pb::AdapterLimits {
            fuel: limits.fuel,
            deadline: duration(limits.deadline),
            memory_bytes: limits.memory_bytes as u64,
            max_input_bytes: limits.max_input_bytes as u64,
            max_output_bytes: limits.max_output_bytes as u64,
            max_concurrent_calls: limits.max_concurrent_calls,
            queue_timeout: duration(limits.queue_timeout),
        }),
        counters: Some(pb::AdapterCounters {
            calls: stats.calls,
            adapter_errors: stats.adapter_errors,
            failures: stats.failures,
            input_failures: stats.input_failures,
            traps: stats.traps,
            broken: stats.broken,
            out_of_fuel: stats.out_of_fuel,
            memory_limits: stats.memory_limits,
            timeouts: stats.timeouts,
            quarantined_refusals: stats.quarantined_refusals,
            busy_refusals: stats.busy_refusals,
            throttled_refusals: stats.throttled_refusals,
        }),
        in_flight: stats.in_flight,
        throttled: stats
            .throttled
            .into_iter()
            .map(|t| pb::ThrottledParty { party: t.party, breaches: t.breaches, retry_in: duration(t.retry_in) })
            .collect(),
        latency_p50: duration(stats.p50),
        latency_p99: duration(stats.p99),
        has_probe: adapter.has_probe(),
    }
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl AdapterApi {
    async fn list_adapters(
        &self,
        caller: Caller,
        req: pb::ListAdaptersRequest,
    ) -> Result<pb::ListAdaptersResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ListAdapters, Target::Nothing)?;
        let size = paging::page_size(req.page_size, 100)?;
        let after = paging::decode_token(&req.page_token, "adapters")? as usize;
        let names = self.ctx.adapters.as_ref().map(|r| r.names()).unwrap_or_default();
        let page: Vec<&String> = names.iter().skip(after).take(size).collect();
        let adapters = page.iter().filter_map(|n| self.loaded(n)).map(|a| adapter_to_pb(&a)).collect();
        let end = after + page.len();
        let next_page_token =
            if end < names.len() { paging::encode_token("adapters", end as u64) } else { String::new() };
        Ok(pb::ListAdaptersResponse { adapters, next_page_token })
    }

    async fn get_adapter(
        &self,
        caller: Caller,
        req: pb::GetAdapterRequest,
    ) -> Result<pb::GetAdapterResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::GetAdapter, Target::Nothing)?;
        let Some(id) = req.name.strip_prefix("adapters/").filter(|id| !id.is_empty() && !id.contains('/')) else {
            return Err(Violations::one("name", "must be adapters/{adapter}").into());
        };
        let adapter = self
            .loaded(id)
            .ok_or_else(|| ApiError::NotFound { reason: "ADAPTER_NOT_FOUND", name: req.name.clone() })?;
        Ok(pb::GetAdapterResponse { adapter: Some(adapter_to_pb(&adapter)) })
    }
}

grpc_service! {
    AdapterService, AdapterApi {
        rpc ListAdapters => list_adapters(pb::ListAdaptersRequest) -> pb::ListAdaptersResponse;
        rpc GetAdapter => get_adapter(pb::GetAdapterRequest) -> pb::GetAdapterResponse;
    }
}
