//! `bro.v1.DeliveryService`: the outbox seen from outside — list, inspect,
//! retry a dead letter, replay a delivery — and the `pull` transport, where
//! a system streams its translated deliveries and acknowledges each; every
//! one is judged again by the case as it is when it leaves, and audited.

use std::pin::Pin;
use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::delivery_service_server::DeliveryService;
use bro_domain::{CaseId, Violations};
use bro_store::{Delivery, DeliveryQuery, DeliveryState, DeliveryUpdate, NewDelivery};
use prost::Message as _;
use tokio_stream::Stream;
use tonic::Status;

use crate::access::Caller;
use crate::access::audit::{batch_person_keys, delivery_record};
use crate::access::policy::{Rpc, Target};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::names;
use crate::paging::{self, DEFAULT_PAGE_SIZE};
use crate::pipeline::outbox::still_sendable;
use crate::pipeline::subjects;
use crate::pipeline::worker::DeliveryWorker;
use crate::systems::{SystemAccess, SystemConfig, Transport};

/// The delivery service.
pub struct DeliveryApi {
    ctx: Context,
    worker: DeliveryWorker,
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
fn delivery_to_pb(d: &Delivery, with_body: bool) -> pb::Delivery {
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

/// The id of the replay of `delivery_id` a client asks for with
/// `request_id`: derived from both, so a retry finds the first replay.
fn replay_id(delivery_id: &str, request_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("replay\u{0}{delivery_id}\u{0}{request_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

type DeliveryStream = Pin<Box<dyn Stream<Item = Result<pb::StreamDeliveriesResponse, Status>> + Send>>;

impl DeliveryApi {
    /// The service over the gateway's context; `worker` is woken by retries
    /// and replays, and tells pull streams of deliveries ready to pull.
    pub fn new(ctx: Context, worker: DeliveryWorker) -> Self {
        DeliveryApi { ctx, worker }
    }

    async fn find(&self, name: &str) -> Result<Delivery, ApiError> {
        let id = names::delivery_id(name)?;
        self.ctx
            .store()
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
        let rows = self.ctx.store().list_deliveries(&query).await?;
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
        let now = self.ctx.clock.now();
        let update = DeliveryUpdate {
            delivery_id: d.new.delivery_id.clone(),
            system: d.new.system.clone(),
            case_id: d.new.case_id.clone(),
            from: DeliveryState::Dead,
            to: DeliveryState::Pending,
            attempts: 0,
            next_attempt_time: now,
            last_error: d.last_error.clone(),
            rendered: None,
            update_time: now,
            lease: None,
        };
        if !self.ctx.store().update_delivery(update).await? {
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
        let replay_id = match names::request_id(request_id)? {
            None => self.ctx.clock.new_id(),
            Some(request_id) => replay_id(&d.new.delivery_id, request_id),
        };
        if let Some(existing) = self.ctx.store().get_delivery(&replay_id).await? {
            return Ok(delivery_to_pb(&existing, false));
        }
        if self.ctx.systems.get(&d.new.system).is_none() {
            return Err(ApiError::FailedPrecondition {
                reason: "SYSTEM_NOT_CONFIGURED",
                message: format!("system {:?} is no longer configured", d.new.system),
            });
        }
        let replay = NewDelivery {
            delivery_id: replay_id,
            create_time: self.ctx.clock.now(),
            replay_of: d.new.delivery_id.clone(),
            ..d.new.clone()
        };
        let id = replay.delivery_id.clone();
        self.ctx.store().enqueue_delivery(replay).await?;
        self.worker.wake();
        Ok(delivery_to_pb(&self.find(&format!("deliveries/{id}")).await?, false))
    }

    async fn acknowledge(&self, name: &str) -> Result<pb::Delivery, ApiError> {
        let d = self.find(name).await?;
        if d.state == DeliveryState::Delivered {
            return Ok(delivery_to_pb(&d, false));
        }
        let update = DeliveryUpdate {
            delivery_id: d.new.delivery_id.clone(),
            system: d.new.system.clone(),
            case_id: d.new.case_id.clone(),
            from: DeliveryState::AwaitingPull,
            to: DeliveryState::Delivered,
            attempts: d.attempts,
            next_attempt_time: d.next_attempt_time,
            last_error: String::new(),
            rendered: None,
            update_time: self.ctx.clock.now(),
            lease: None,
        };
        if !self.ctx.store().update_delivery(update).await? {
            return Err(ApiError::FailedPrecondition {
                reason: "DELIVERY_NOT_AWAITING_PULL",
                message: format!("{name} is {}, not awaiting pull", d.state.as_str()),
            });
        }
        Ok(delivery_to_pb(&self.find(name).await?, false))
    }

    fn stream(&self, caller: &Caller, system: String) -> Result<DeliveryStream, ApiError> {
        let config = match self.ctx.systems.get(&system) {
            Some(s) if s.transport == Transport::Pull => s.clone(),
            Some(_) => {
                return Err(ApiError::FailedPrecondition {
                    reason: "NOT_A_PULL_SYSTEM",
                    message: format!("system {system:?} does not receive by pull"),
                });
            }
            None => {
                let why = format!("{:?} is not a configured system", bro_domain::truncate(&system, 64));
                return Err(Violations::one("system", why).into());
            }
        };
        let terms = self.ctx.streams.open(caller, self.ctx.clock.now())?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(PullStream { ctx: self.ctx.clone(), system: config, terms, tx }.run(self.worker.pulled()));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Feeds one pulling system's stream, until the client goes, the gateway
/// stops, the caller's token expires or the stream reaches its lifetime.
struct PullStream {
    ctx: Context,
    system: SystemConfig,
    terms: crate::context::StreamTerms,
    tx: tokio::sync::mpsc::Sender<Result<pb::StreamDeliveriesResponse, Status>>,
}

impl PullStream {
    /// Deliveries become ready out of enqueue order (attempts run in
    /// parallel, dead letters are retried): every round reads all that wait
    /// and sends those this stream has not sent yet, until the client goes
    /// or the gateway stops.
    async fn run(self, ready: Arc<tokio::sync::Notify>) {
        let mut sent = std::collections::HashSet::new();
        let shutdown = self.ctx.stopping.clone();
        loop {
            let notified = ready.notified();
            let mut after = 0;
            loop {
                let query = DeliveryQuery {
                    system: Some(self.system.name.clone()),
                    state: Some(DeliveryState::AwaitingPull),
                    after_ordinal: after,
                    limit: 100,
                    ..DeliveryQuery::default()
                };
                let rows = match self.ctx.store().list_deliveries(&query).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = self.tx.send(Err(ApiError::from(e).into())).await;
                        return;
                    }
                };
                for d in &rows {
                    after = d.ordinal;
                    if sent.contains(&d.new.delivery_id) {
                        continue;
                    }
                    if let Some(ended) = self.terms.ended(self.ctx.clock.now()) {
                        let _ = self.tx.send(Err(ended.into())).await;
                        return;
                    }
                    sent.insert(d.new.delivery_id.clone());
                    if !self.still_allowed(d).await {
                        continue;
                    }
                    // What leaves is audited, with the people it names, before it is sent.
                    let people = pb::AdapterBatch::decode(d.new.payload.as_slice())
                        .map(|b| batch_person_keys(&self.ctx.keys, &b))
                        .unwrap_or_default();
                    let record = delivery_record(&self.system.name, d, people, "pull", self.ctx.clock.now());
                    if self.ctx.trail.record(record).await.is_err() {
                        let _ = self.tx.send(Err(ApiError::audit_unavailable().into())).await;
                        return;
                    }
                    let item = pb::StreamDeliveriesResponse { delivery: Some(delivery_to_pb(d, true)) };
                    tokio::select! {
                        r = self.tx.send(Ok(item)) => if r.is_err() { return },
                        _ = shutdown.cancelled() => return,
                    }
                }
                if rows.len() < 100 {
                    break;
                }
            }
            if let Some(ended) = self.terms.ended(self.ctx.clock.now()) {
                let _ = self.tx.send(Err(ended.into())).await;
                return;
            }
            let wait = self.terms.next_check(self.ctx.clock.now()).min(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Whether a delivery awaiting pull may still go: a consent withdrawn
    /// since it was translated stops it (and dead-letters it). Its rendering
    /// is whole, so it goes only if every event in it still may.
    async fn still_allowed(&self, d: &Delivery) -> bool {
        if !matches!(self.system.access, SystemAccess::Sector { .. }) {
            return true;
        }
        let Ok(batch) = pb::AdapterBatch::decode(d.new.payload.as_slice()) else { return false };
        let Ok(case) = self.ctx.ledger.state(&d.new.case_id).await else { return false };
        let batch = subjects::canonical(batch);
        let planned = batch.events.len();
        let allowed = matches!(still_sendable(&self.system, &case, batch, self.ctx.clock.today()), Ok(Some(b)) if b.events.len() == planned);
        if !allowed {
            let update = DeliveryUpdate {
                delivery_id: d.new.delivery_id.clone(),
                system: d.new.system.clone(),
                case_id: d.new.case_id.clone(),
                from: DeliveryState::AwaitingPull,
                to: DeliveryState::Dead,
                attempts: d.attempts,
                next_attempt_time: d.next_attempt_time,
                last_error: "not sent: the consent that allowed it was withdrawn".into(),
                rendered: None,
                update_time: self.ctx.clock.now(),
                lease: None,
            };
            if let Err(e) = self.ctx.store().update_delivery(update).await {
                tracing::warn!(error = %e, "cannot dead-letter a delivery whose consent was withdrawn");
            }
        }
        allowed
    }
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl DeliveryApi {
    async fn list_deliveries(
        &self,
        caller: Caller,
        req: pb::ListDeliveriesRequest,
    ) -> Result<pb::ListDeliveriesResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ListDeliveries, Target::Nothing)?;
        self.list(req).await
    }

    async fn get_delivery(
        &self,
        caller: Caller,
        req: pb::GetDeliveryRequest,
    ) -> Result<pb::GetDeliveryResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::GetDelivery, Target::Nothing)?;
        Ok(pb::GetDeliveryResponse { delivery: Some(delivery_to_pb(&self.find(&req.name).await?, false)) })
    }

    async fn retry_delivery(
        &self,
        caller: Caller,
        req: pb::RetryDeliveryRequest,
    ) -> Result<pb::RetryDeliveryResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::RetryDelivery, Target::Nothing)?;
        Ok(pb::RetryDeliveryResponse { delivery: Some(self.retry(&req.name).await?) })
    }

    async fn replay_delivery(
        &self,
        caller: Caller,
        req: pb::ReplayDeliveryRequest,
    ) -> Result<pb::ReplayDeliveryResponse, ApiError> {
        self.ctx.authorize(&caller, Rpc::ReplayDelivery, Target::Nothing)?;
        Ok(pb::ReplayDeliveryResponse { delivery: Some(self.replay(&req.name, &req.request_id).await?) })
    }

    async fn stream_deliveries(
        &self,
        caller: Caller,
        req: pb::StreamDeliveriesRequest,
    ) -> Result<DeliveryStream, ApiError> {
        self.ctx.authorize(&caller, Rpc::StreamDeliveries, Target::System(&req.system))?;
        self.stream(&caller, req.system)
    }

    async fn acknowledge_delivery(
        &self,
        caller: Caller,
        req: pb::AcknowledgeDeliveryRequest,
    ) -> Result<pb::AcknowledgeDeliveryResponse, ApiError> {
        let delivery = self.find(&req.name).await?;
        self.ctx.authorize(&caller, Rpc::AcknowledgeDelivery, Target::System(&delivery.new.system))?;
        caller.concerns_case_name(&delivery.new.case_id.resource_name());
        Ok(pb::AcknowledgeDeliveryResponse { delivery: Some(self.acknowledge(&req.name).await?) })
    }
}

grpc_service! {
    DeliveryService, DeliveryApi {
        type StreamDeliveriesStream = DeliveryStream;
        rpc ListDeliveries => list_deliveries(pb::ListDeliveriesRequest) -> pb::ListDeliveriesResponse;
        rpc GetDelivery => get_delivery(pb::GetDeliveryRequest) -> pb::GetDeliveryResponse;
        rpc RetryDelivery => retry_delivery(pb::RetryDeliveryRequest) -> pb::RetryDeliveryResponse;
        rpc ReplayDelivery => replay_delivery(pb::ReplayDeliveryRequest) -> pb::ReplayDeliveryResponse;
        rpc StreamDeliveries => stream_deliveries(pb::StreamDeliveriesRequest) -> Self::StreamDeliveriesStream;
        rpc AcknowledgeDelivery => acknowledge_delivery(pb::AcknowledgeDeliveryRequest) -> pb::AcknowledgeDeliveryResponse;
    }
}
