//! What every service and the pipeline share: the gateway's [`Context`] —
//! one struct, built once by `run`, instead of a handful of positional
//! `Arc`s per service — and [`Context::handle`], which runs one RPC the same
//! way everywhere: it takes the caller the gate admitted, times and counts
//! the call, and turns its error into a status in one place. A service
//! writes its handlers as plain methods and names them in one
//! [`grpc_service!`] table, which implements the generated trait with
//! [`Context::handle`] around each.

use std::future::Future;
use std::sync::Arc;

use bro_api::v1 as pb;
use bro_domain::{Case, CaseId};
use bro_plugin_host::AdapterRegistry;
use bro_rules::coordination::CoordinationPolicy;
use bro_store::{CaseLedger, EventStore, Keyring};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::access::audit::AuditTrail;
use crate::access::policy::{self, Grant, Rpc, Target};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::systems::Systems;
use crate::worklist::Worklist;

/// The running gateway's shared parts; cheap to clone.
#[derive(Clone)]
pub struct Context {
    /// The case ledger (over the sealed store).
    pub ledger: Arc<CaseLedger>,
    /// The configured systems.
    pub systems: Arc<Systems>,
    /// The only source of "now" and "today".
    pub clock: Arc<dyn Clock>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The gateway's keys (keyed hashes of people, sealing).
    pub keys: Arc<Keyring>,
    /// Where audit records go.
    pub trail: AuditTrail,
    /// The loaded WebAssembly adapters, if any.
    pub adapters: Option<Arc<AdapterRegistry>>,
    /// What the § 78 coordination checks allow.
    pub coordination: Arc<CoordinationPolicy>,
    /// The worklist over its index.
    pub worklist: Arc<Worklist>,
    /// Cancelled when the gateway stops: streams end, the worker finishes.
    pub stopping: CancellationToken,
    /// Raised when changes other replicas committed may have been missed
    /// (the store's change feed reconnected, or its periodic check): every
    /// stream re-reads what it follows.
    pub resync: Arc<tokio::sync::watch::Sender<u64>>,
    /// The open server streams, per caller, and their limits.
    pub streams: Arc<StreamRegistry>,
}

/// Limits on server streams (`WatchCase`, `StreamDeliveries`).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Streams one caller (a person, a system) may have open at once.
    pub per_caller: usize,
    /// How long a stream lives; then it ends (`UNAVAILABLE`,
    /// `STREAM_LIFETIME`) and the client opens it again, re-authenticated.
    pub max_lifetime: std::time::Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { per_caller: 64, max_lifetime: std::time::Duration::from_secs(3600) }
    }
}

/// How often an open stream checks its caller's access when nothing else
/// happens on it.
const STREAM_CHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// The open server streams per caller.
pub struct StreamRegistry {
    limits: StreamLimits,
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl StreamRegistry {
    /// No streams open yet.
    pub fn new(limits: StreamLimits) -> Self {
        StreamRegistry { limits, open: Default::default() }
    }

    /// Opens one more stream for `caller`, who may hold so many at once;
    /// `RESOURCE_EXHAUSTED` beyond that. The stream ends when the returned
    /// terms say so, and counts until they are dropped.
    pub fn open(self: &Arc<Self>, caller: &Caller, now: bro_domain::Timestamp) -> Result<StreamTerms, ApiError> {
        let key = caller.principal.key();
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.limits.per_caller {
            let why =
                format!("{} streams are open for this caller; at most {} are allowed", count, self.limits.per_caller);
            caller.refused(&why);
            return Err(ApiError::ResourceExhausted(why));
        }
        *count += 1;
        let lifetime = chrono::Duration::from_std(self.limits.max_lifetime).unwrap_or(chrono::Duration::hours(1));
        Ok(StreamTerms {
            registry: self.clone(),
            key,
            ends: now + lifetime,
            lifetime: self.limits.max_lifetime,
            valid_until: caller.valid_until,
        })
    }
}

/// One open stream's terms: when it must end; counted while held.
pub struct StreamTerms {
    registry: Arc<StreamRegistry>,
    key: String,
    ends: bro_domain::Timestamp,
    lifetime: std::time::Duration,
    valid_until: Option<bro_domain::Timestamp>,
}

impl StreamTerms {
    /// Why the stream must end at `now`, if it must: the caller's token
    /// expired (`UNAUTHENTICATED`), or the stream reached its lifetime.
    pub fn ended(&self, now: bro_domain::Timestamp) -> Option<ApiError> {
        if self.valid_until.is_some_and(|until| now >= until) {
            return Some(ApiError::Unauthenticated(
                "the token expired while the stream was open; open it again with a fresh token".into(),
            ));
        }
        (now >= self.ends).then(|| ApiError::Unavailable {
            reason: "STREAM_LIFETIME",
            message: format!("the stream reached its maximum lifetime ({} s); open it again", self.lifetime.as_secs()),
        })
    }

    /// How long until the stream's access is next checked: the token's
    /// expiry, the lifetime's end, or a routine check, whichever is first.
    pub fn next_check(&self, now: bro_domain::Timestamp) -> std::time::Duration {
        let until = |t: bro_domain::Timestamp| (t - now).to_std().unwrap_or_default();
        let mut next = STREAM_CHECK.min(until(self.ends));
        if let Some(valid_until) = self.valid_until {
            next = next.min(until(valid_until));
        }
        next
    }
}

impl Drop for StreamTerms {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl Context {
    /// The backend under the ledger (already sealed).
    pub fn store(&self) -> &Arc<dyn EventStore> {
        self.ledger.store()
    }

    /// Runs one RPC: `handler` gets the caller the gate admitted and the
    /// request; the call is timed and counted under `rpc`, and its error
    /// becomes a status (with `ErrorInfo`) in one place.
    pub async fn handle<Req, T, Fut>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
        handler: impl FnOnce(Caller, Req) -> Fut,
    ) -> Result<Response<T>, Status>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let caller = Caller::of(&request);
        let request = request.into_inner();
        self.metrics.observe(&format!("{rpc:?}"), async move { handler(caller?, request).await }).await
    }

    /// The record of the caller's write, made so that no crash can leave a
    /// durable change without a record of who made it (naming the case and
    /// people noted so far). Where the audit log is in the event store's
    /// database, the record is returned, for the write to commit in its own
    /// transaction (outcome `COMMITTED`); otherwise it is made durable now,
    /// before the write (outcome `STARTED`), and nothing is returned. The
    /// call's own record, with its outcome, follows as for every call.
    pub async fn audit_write(&self, caller: &Caller) -> Result<Vec<bro_api::v1::AuditRecord>, ApiError> {
        if self.trail.commits_with_appends() {
            return Ok(vec![caller.write_record(self.clock.now(), crate::access::audit::COMMITTED)]);
        }
        let record = caller.write_record(self.clock.now(), crate::access::audit::STARTED);
        self.trail.record(record).await.map_err(|e| {
            tracing::error!(error = %e, "the audit log cannot be written; the write is refused");
            ApiError::audit_unavailable()
        })?;
        Ok(Vec::new())
    }

    /// Asks the policy about `rpc` on `target`; a denial is noted for the
    /// call's audit record.
    pub fn authorize(&self, caller: &Caller, rpc: Rpc, target: Target<'_>) -> Result<Grant, ApiError> {
        Ok(policy::authorize(&caller.principal, &self.systems, rpc, target, self.clock.today())
            .inspect_err(|d| caller.refused(&d.0))?)
    }

    /// As [`Context::authorize_case`], also returning the stored projection,
    /// read with the state in one read of the case.
    pub async fn authorize_case_projection(
        &self,
        caller: &Caller,
        rpc: Rpc,
        case_id: &CaseId,
    ) -> Result<(Arc<Case>, pb::Case, Grant), ApiError> {
        let (case, projection) = self.ledger.state_and_projection(case_id).await?;
        caller.concerns_case(&case);
        let grant = self.authorize(caller, rpc, Target::Case(&case))?;
        Ok((case, projection, grant))
    }

    /// Loads a case, notes it and its people for the call's audit record, and
    /// asks the policy about `rpc` on it.
    pub async fn authorize_case(
        &self,
        caller: &Caller,
        rpc: Rpc,
        case_id: &CaseId,
    ) -> Result<(Arc<Case>, Grant), ApiError> {
        let case = self.ledger.state(case_id).await?;
        caller.concerns_case(&case);
        let grant = self.authorize(caller, rpc, Target::Case(&case))?;
        Ok((case, grant))
    }
}

/// Implements a generated gRPC service trait for a service (a struct with a
/// `ctx: Context`) whose handlers are its inherent methods of the RPCs'
/// names, `async fn name(&self, caller: Caller, request: Req) -> Result<Resp,
/// ApiError>` (an inherent method is found before the trait's): the trait's
/// associated stream types first, then one `rpc` line per RPC, naming the
/// policy's [`Rpc`] it runs as.
macro_rules! grpc_service {
    ($service:path, $api:ty {
        $(type $stream:ident = $stream_type:ty;)*
        $(rpc $rpc:ident => $method:ident($request:ty) -> $response:ty;)*
    }) => {
        #[tonic::async_trait]
        impl $service for $api {
            $(type $stream = $stream_type;)*
            $(
                async fn $method(
                    &self,
                    request: tonic::Request<$request>,
                ) -> Result<tonic::Response<$response>, tonic::Status> {
                    let rpc = $crate::access::policy::Rpc::$rpc;
                    self.ctx.handle(rpc, request, |caller, request| <$api>::$method(self, caller, request)).await
                }
            )*
        }
    };
}

pub(crate) use grpc_service;
