//! `DeliveryService`: the outbox seen from outside — list, inspect, retry a
//! dead letter, replay a delivery — and the `pull` transport, where a system
//! streams its translated deliveries and acknowledges each.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::delivery_service_server::DeliveryService;
use bro_domain::{CaseId, Timestamp, Violations};
use bro_store::{Delivery, DeliveryQuery, DeliveryState, DeliveryUpdate, EventStore, NewDelivery};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::worker::DeliveryWorker;
use prost::Message as _;

use super::{SystemConfig, Systems, Transport};
use crate::access::Caller;
use crate::access::policy::{self, Rpc, Target};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging::{self, DEFAULT_PAGE_SIZE};

/// The delivery service.
pub struct DeliveryApi {
    store: Arc<dyn EventStore>,
    systems: Arc<Systems>,
    worker: DeliveryWorker,
    trail: crate::access::audit::AuditTrail,
    keys: Arc<bro_store::Keyring>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

fn state_to_pb(s: DeliveryState) -> pb::DeliveryState {
    match s {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::AwaitingPull => pb::DeliveryState::AwaitingPull,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Dead => pb::DeliveryState::Dead,
    }
}

/// A delivery for the wire; the translated body only when `with_body`.
pub fn delivery_to_pb(d: &Delivery, with_body: bool) -> pb::Delivery {
    pb::Delivery {
        name: format!("deliveries/{}", d.new.delivery_id),
        system: d.new.system.clone(),
        case: d.new.case_id.resource_name(),
        first_sequence: d.new.first_sequence as i64,
        last_sequence: d.new.last_sequence as i64,
        state: state_to_pb(d.state).into(),
        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
        next_attempt_time: (d.state == DeliveryState::Pending).then(|| convert::timestamp_to_pb(d.next_attempt_time)),
        last_error: d.last_error.clone(),
        create_time: Some(convert::timestamp_to_pb(d.new.create_time)),
        update_time: Some(convert::timestamp_to_pb(d.update_time)),
        replay_of: if d.new.replay_of.is_empty() { String::new() } else { format!("deliveries/{}", d.new.replay_of) },
        content_type: d.rendered.as_ref().map(|(t, _)| t.clone()).unwrap_or_default(),
        body: if with_body { d.rendered.as_ref().map(|(_, b)| b.clone()).unwrap_or_default() } else { Vec::new() },
    }
}

fn delivery_id(name: &str) -> Result<&str, Violations> {
    name.strip_prefix("deliveries/")
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or_else(|| {
            Violations::one(
                "name",
                format!("{:?} is not a name of the form deliveries/{{id}}", bro_domain::truncate(name, 80)),
            )
        })
}

type DeliveryStream = Pin<Box<dyn Stream<Item = Result<pb::StreamDeliveriesResponse, Status>> + Send>>;

impl DeliveryApi {
    /// The service.
    pub fn new(
        store: Arc<dyn EventStore>,
        systems: Arc<Systems>,
        worker: DeliveryWorker,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Self {
        let (trail, keys) = worker.audit();
        DeliveryApi { store, systems, worker, trail, keys, clock, metrics, shutdown }
    }

    async fn observe<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response<T>, Status> {
        self.metrics.observe(method, call).await
    }

    fn authorize(&self, caller: Result<Caller, ApiError>, rpc: Rpc, target: Target<'_>) -> Result<Caller, ApiError> {
        let caller = caller?;
        policy::authorize(&caller.principal, &self.systems, rpc, target).inspect_err(|d| caller.refused(&d.0))?;
        Ok(caller)
    }

    async fn find(&self, name: &str) -> Result<Delivery, ApiError> {
        let id = delivery_id(name)?;
        self.store
            .get_delivery(id)
            .await?
            .ok_or_else(|| ApiError::NotFound { reason: "DELIVERY_NOT_FOUND", name: name.to_owned() })
    }

    async fn list(&self, r: pb::ListDeliveriesRequest) -> Result<pb::ListDeliveriesResponse, ApiError> {
        let limit = paging::page_size(r.page_size, DEFAULT_PAGE_SIZE)?;
        let after = if r.page_token.is_empty() { 0 } else { paging::decode_token(&r.page_token, "deliveries")? };
        let mut query = DeliveryQuery { after_ordinal: after, limit, ..DeliveryQuery::default() };
        for (field, value) in paging::parse_terms(&r.filter, &["system", "state", "case"])? {
            match field.as_str() {
                "system" => query.system = Some(value),
                "state" => {
                    query.state = Some(DeliveryState::parse(&value).ok_or_else(|| {
                        Violations::one(
                            "filter.state",
                            "is one of \"pending\", \"awaiting_pull\", \"delivered\", \"dead\"",
                        )
                    })?)
                }
                _ => query.case_id = Some(CaseId::from_resource_name("filter.case", &value)?),
            }
        }
        let rows = self.store.list_deliveries(&query).await?;
        let next_page_token = if rows.len() == limit {
            rows.last().map(|d| paging::encode_token("deliveries", d.ordinal)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListDeliveriesResponse {
            deliveries: rows.iter().map(|d| delivery_to_pb(d, false)).collect(),
            next_page_token,
        })
    }

    async fn retry(&self, name: &str) -> Result<pb::Delivery, ApiError> {
        let d = self.find(name).await?;
        if d.state != DeliveryState::Dead {
            return Err(ApiError::FailedPrecondition {
                reason: "DELIVERY_NOT_DEAD",
                message: format!("{name} is {}; only a dead-lettered delivery can be retried", d.state.as_str()),
            });
        }
        let now = self.clock.now();
        let update = DeliveryUpdate {
            delivery_id: d.new.delivery_id.clone(),
            from: DeliveryState::Dead,
            to: DeliveryState::Pending,
            attempts: 0,
            next_attempt_time: now,
            last_error: d.last_error.clone(),
            rendered: None,
            update_time: now,
        };
        if !self.store.update_delivery(update).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "DELIVERY_CHANGED",
                message: format!("{name} changed meanwhile; read it again"),
            });
        }
        self.worker.wake();
        Ok(delivery_to_pb(&self.find(name).await?, false))
    }

    async fn replay(&self, name: &str, request_id: &str) -> Result<pb::Delivery, ApiError> {
        let d = self.find(name).await?;
        // With a request id, the new delivery's id is derived from it: a retry finds the first replay.
        let replay_id = if request_id.is_empty() {
            uuid::Uuid::now_v7().to_string()
        } else {
            if request_id.len() > 128 || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Violations::one("request_id", "use 1 to 128 printable characters").into());
            }
            let key = format!("replay\u{0}{}\u{0}{request_id}", d.new.delivery_id);
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(key.as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
        };
        if let Some(existing) = self.store.get_delivery(&replay_id).await? {
            return Ok(delivery_to_pb(&existing, false));
        }
        if self.systems.get(&d.new.system).is_none() {
            return Err(ApiError::FailedPrecondition {
                reason: "SYSTEM_NOT_CONFIGURED",
                message: format!("system {:?} is no longer configured", d.new.system),
            });
        }
        let replay = NewDelivery {
            delivery_id: replay_id,
            create_time: self.clock.now(),
            replay_of: d.new.delivery_id.clone(),
            ..d.new.clone()
        };
        let id = replay.delivery_id.clone();
        self.store.enqueue_delivery(replay).await?;
        self.worker.wake();
        Ok(delivery_to_pb(&self.find(&format!("deliveries/{id}")).await?, false))
    }

    async fn acknowledge(&self, name: &str) -> Result<pb::Delivery, ApiError> {
        let d = self.find(name).await?;
        if d.state == DeliveryState::Delivered {
            return Ok(delivery_to_pb(&d, false));
        }
        let now = self.clock.now();
        let update = DeliveryUpdate {
            delivery_id: d.new.delivery_id.clone(),
            from: DeliveryState::AwaitingPull,
            to: DeliveryState::Delivered,
            attempts: d.attempts,
            next_attempt_time: d.next_attempt_time,
            last_error: String::new(),
            rendered: None,
            update_time: now,
        };
        if !self.store.update_delivery(update).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "DELIVERY_NOT_AWAITING_PULL",
                message: format!("{name} is {}, not awaiting pull", d.state.as_str()),
            });
        }
        Ok(delivery_to_pb(&self.find(name).await?, false))
    }

    fn stream(&self, system: String) -> Result<DeliveryStream, ApiError> {
        match self.systems.get(&system) {
            Some(s) if s.transport == Transport::Pull => {}
            Some(_) => {
                return Err(ApiError::FailedPrecondition {
                    reason: "NOT_A_PULL_SYSTEM",
                    message: format!("system {system:?} does not receive by pull"),
                });
            }
            None => {
                return Err(Violations::one(
                    "system",
                    format!("{:?} is not a configured system", bro_domain::truncate(&system, 64)),
                )
                .into());
            }
        }
        let store = self.store.clone();
        let config = self.systems.get(&system).cloned();
        let clock = self.clock.clone();
        let (trail, keys) = (self.trail.clone(), self.keys.clone());
        let ready = self.worker.pulled();
        let shutdown = self.shutdown.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            // Deliveries become ready out of enqueue order (attempts run in
            // parallel, dead letters are retried): every round reads all that
            // wait and sends those this stream has not sent yet.
            let mut sent = std::collections::HashSet::new();
            loop {
                let notified = ready.notified();
                let mut after = 0;
                loop {
                    let query = DeliveryQuery {
                        system: Some(system.clone()),
                        state: Some(DeliveryState::AwaitingPull),
                        after_ordinal: after,
                        limit: 100,
                        ..DeliveryQuery::default()
                    };
                    let rows = match store.list_deliveries(&query).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                            return;
                        }
                    };
                    for d in &rows {
                        after = d.ordinal;
                        if !sent.insert(d.new.delivery_id.clone()) {
                            continue;
                        }
                        if let Some(config) = &config
                            && !still_allowed(&store, config, d, clock.now()).await
                        {
                            continue;
                        }
                        // What leaves is audited, with the people it names, before it is sent.
                        let people = pb::AdapterBatch::decode(d.new.payload.as_slice())
                            .map(|b| crate::access::audit::batch_person_keys(&keys, &b))
                            .unwrap_or_default();
                        let record = crate::access::audit::delivery_record(&system, d, people, "pull", clock.now());
                        if trail.record(record).await.is_err() {
                            let _ = tx.send(Err(Status::unavailable("the audit log cannot be written"))).await;
                            return;
                        }
                        let item = pb::StreamDeliveriesResponse { delivery: Some(delivery_to_pb(d, true)) };
                        tokio::select! {
                            r = tx.send(Ok(item)) => if r.is_err() { return },
                            _ = shutdown.cancelled() => return,
                        }
                    }
                    if rows.len() < 100 {
                        break;
                    }
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Whether a delivery awaiting pull may still go to its system: a consent
/// withdrawn since it was translated stops it (and dead-letters it).
async fn still_allowed(store: &Arc<dyn EventStore>, system: &SystemConfig, d: &Delivery, now: Timestamp) -> bool {
    if !matches!(system.access, super::SystemAccess::Sector { .. }) {
        return true;
    }
    let Ok(batch) = pb::AdapterBatch::decode(d.new.payload.as_slice()) else { return false };
    let case = match store.get_case(&d.new.case_id).await {
        Ok(Some(stored)) => pb::Case::decode(stored.projection.as_slice()).ok(),
        _ => None,
    };
    let Some(case) = case else { return false };
    let planned = batch.events.len();
    let allowed = super::still_sendable(system, &case, batch).is_some_and(|b| b.events.len() == planned);
    if !allowed {
        let update = DeliveryUpdate {
            delivery_id: d.new.delivery_id.clone(),
            from: DeliveryState::AwaitingPull,
            to: DeliveryState::Dead,
            attempts: d.attempts,
            next_attempt_time: d.next_attempt_time,
            last_error: "not sent: the consent that allowed it was withdrawn".into(),
            rendered: None,
            update_time: now,
        };
        if let Err(e) = store.update_delivery(update).await {
            tracing::warn!(error = %e, "cannot dead-letter a delivery whose consent was withdrawn");
        }
    }
    allowed
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    type StreamDeliveriesStream = DeliveryStream;

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let caller = Caller::of(&request);
        self.observe("ListDeliveries", async {
            self.authorize(caller, Rpc::ListDeliveries, Target::Nothing)?;
            self.list(request.into_inner()).await
        })
        .await
    }

    async fn get_delivery(
        &self,
        request: Request<pb::GetDeliveryRequest>,
    ) -> Result<Response<pb::GetDeliveryResponse>, Status> {
        let caller = Caller::of(&request);
        let name = request.into_inner().name;
        self.observe("GetDelivery", async {
            self.authorize(caller, Rpc::GetDelivery, Target::Nothing)?;
            Ok(pb::GetDeliveryResponse { delivery: Some(delivery_to_pb(&self.find(&name).await?, false)) })
        })
        .await
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        let caller = Caller::of(&request);
        let name = request.into_inner().name;
        self.observe("RetryDelivery", async {
            self.authorize(caller, Rpc::RetryDelivery, Target::Nothing)?;
            Ok(pb::RetryDeliveryResponse { delivery: Some(self.retry(&name).await?) })
        })
        .await
    }

    async fn replay_delivery(
        &self,
        request: Request<pb::ReplayDeliveryRequest>,
    ) -> Result<Response<pb::ReplayDeliveryResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        self.observe("ReplayDelivery", async {
            self.authorize(caller, Rpc::ReplayDelivery, Target::Nothing)?;
            Ok(pb::ReplayDeliveryResponse { delivery: Some(self.replay(&r.name, &r.request_id).await?) })
        })
        .await
    }

    async fn stream_deliveries(
        &self,
        request: Request<pb::StreamDeliveriesRequest>,
    ) -> Result<Response<Self::StreamDeliveriesStream>, Status> {
        let caller = Caller::of(&request);
        let system = request.into_inner().system;
        self.observe("StreamDeliveries", async {
            self.authorize(caller, Rpc::StreamDeliveries, Target::System(&system))?;
            self.stream(system)
        })
        .await
    }

    async fn acknowledge_delivery(
        &self,
        request: Request<pb::AcknowledgeDeliveryRequest>,
    ) -> Result<Response<pb::AcknowledgeDeliveryResponse>, Status> {
        let caller = Caller::of(&request);
        let name = request.into_inner().name;
        self.observe("AcknowledgeDelivery", async {
            let delivery = self.find(&name).await?;
            let caller = self.authorize(caller, Rpc::AcknowledgeDelivery, Target::System(&delivery.new.system))?;
            caller.concerns_case_name(&delivery.new.case_id.resource_name());
            Ok(pb::AcknowledgeDeliveryResponse { delivery: Some(self.acknowledge(&name).await?) })
        })
        .await
    }
}
