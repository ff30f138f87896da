//! The delivery worker: takes due deliveries from the outbox, judges each
//! again by the case as it is now ([`super::outbox::still_sendable`]),
//! names its people as the receiving adapter reads them
//! ([`super::subjects::encode`]), translates it with that adapter and hands
//! it to the system's transport. At least once: a delivery is marked
//! delivered only after its transport confirmed it, so a crash in between
//! sends it again under the same idempotency key (the delivery id).
//!
//! Workers share the outbox — the gateway's own tasks, and other replicas'
//! workers on the same database — by leases: a worker claims (system,
//! case) queues whose head is due ([`bro_store::EventStore::claim_deliveries`]),
//! renews each lease while its attempt runs, checks it still holds it just
//! before the message leaves, and records the outcome only under that lease
//! (which ends it). A worker that dies loses its leases when they expire;
//! another then claims the queue under a higher epoch, and the dead
//! worker's late result, should it come back, is refused. One queue's
//! deliveries go one at a time, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bro_api::v1 as pb;
use bro_plugin_host::Blame;
use bro_store::{
    AppendObserver as _, ClaimedDelivery, Delivery, DeliveryLease, DeliveryState, DeliveryUpdate, LedgerError, Stage,
    StoreError,
};
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::outbox::still_sendable;
use super::subjects;
use super::transport::{self, Failure};
use crate::access::audit::{batch_person_keys, delivery_record};
use crate::clock::Stopwatch;
use crate::context::Context;
use crate::systems::{SystemConfig, Transport};

/// How often the outbox is polled when nothing wakes the worker.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deliveries attempted at once.
const CONCURRENCY: usize = 8;
/// How often the worker counts the leases live in the store (for the metrics).
const LIVE_LEASES_EVERY: Duration = Duration::from_secs(10);

/// What became of one attempt.
#[derive(Debug)]
enum Outcome {
    /// Handed over (or, for pull, ready to be pulled).
    Done { to: DeliveryState, rendered: (String, Vec<u8>) },
    /// Worth another attempt later.
    Retry(String),
    /// Not attempted: the adapter was busy, resting or throttled for this
    /// receiver. Tried again after `retry_after` without counting an attempt,
    /// so a busy adapter never dead-letters a delivery.
    Wait { why: String, retry_after: Duration },
    /// Never going to work without a person (an adapter refusal, a 4xx).
    Dead(String),
    /// Not sent: the worker's lease on the queue was taken over (it was
    /// away longer than the lease); the new holder attempts it.
    LeaseLost,
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Transient(why) => Outcome::Retry(why),
            Failure::Permanent(why) => Outcome::Dead(why),
        }
    }
}

/// The worker; cheap to clone.
#[derive(Clone)]
pub struct DeliveryWorker {
    ctx: Context,
    wake: Arc<Notify>,
    pulled: Arc<Notify>,
    /// This worker's name in the leases it holds (unique per run).
    holder: Arc<str>,
    /// How long a lease lasts unless renewed.
    lease_for: Duration,
    /// Leases this worker holds now.
    held: Arc<AtomicU64>,
}

impl DeliveryWorker {
    /// A worker over the outbox of the gateway's store, holding each queue
    /// it works on for `lease_for` at a time.
    pub fn new(ctx: Context, lease_for: Duration) -> Self {
        let holder = format!("pid{}-{}", std::process::id(), bro_store::time_ordered_id(ctx.clock.now()));
        DeliveryWorker {
            ctx,
            wake: Arc::new(Notify::new()),
            pulled: Arc::new(Notify::new()),
            holder: holder.into(),
            lease_for: lease_for.max(Duration::from_secs(1)),
            held: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This worker's name in its leases.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How many leases this worker holds now.
    pub fn leases_held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// When a lease taken or renewed now lapses.
    fn lease_end(&self) -> bro_domain::Timestamp {
        let now = self.ctx.clock.now();
        now + chrono::Duration::from_std(self.lease_for).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Wakes the worker (new deliveries were enqueued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Notified whenever a delivery becomes ready for a pulling system.
    pub fn pulled(&self) -> Arc<Notify> {
        self.pulled.clone()
    }

    /// Runs until `stopping` is cancelled; attempts in flight finish first.
    pub async fn run(self, stopping: CancellationToken) {
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut counted_live: Option<Stopwatch> = None;
        loop {
            // The gauges: leases held here, and (now and then) by every replica.
            let live = if counted_live.as_ref().is_none_or(|s| s.elapsed() >= LIVE_LEASES_EVERY) {
                counted_live = Some(Stopwatch::start());
                self.ctx.store().live_leases(self.ctx.clock.now()).await.ok().map(|l| l.len())
            } else {
                None
            };
            self.ctx.metrics.set_delivery_leases(self.leases_held(), live);
            let free = limit.available_permits();
            let claimed = if free == 0 || stopping.is_cancelled() {
                Vec::new()
            } else {
                let now = self.ctx.clock.now();
                match self.ctx.store().claim_deliveries(&self.holder, now, self.lease_end(), free).await {
                    Ok(claimed) => claimed,
                    Err(StoreError::Closed) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim deliveries from the outbox");
                        Vec::new()
                    }
                }
            };
            let started = claimed.len();
            for claim in claimed {
                // Never more than the free permits were claimed: this does not wait.
                let Ok(permit) = limit.clone().acquire_owned().await else { return };
                self.held.fetch_add(1, Ordering::Relaxed);
                let worker = self.clone();
                tokio::spawn(async move {
                    worker.attempt_leased(claim).await;
                    worker.held.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                    worker.wake.notify_one();
                });
            }
            if stopping.is_cancelled() {
                break;
            }
            if started == 0 {
                tokio::select! {
                    _ = stopping.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
        // Let attempts in flight finish: their outcome is recorded, not lost.
        let _ = limit.acquire_many(CONCURRENCY as u32).await;
    }

    /// Attempts a claimed delivery, renewing its lease while the attempt runs.
    async fn attempt_leased(&self, claim: ClaimedDelivery) {
        let lease = claim.lease;
        let renewing = async {
            loop {
                tokio::time::sleep(self.lease_for / 3).await;
                match self.ctx.store().renew_lease(&lease, self.lease_end()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(system = %lease.system, epoch = lease.token.epoch, "a delivery lease was taken over; its attempt will not be recorded");
                        return std::future::pending::<()>().await;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot renew a delivery lease"),
                }
            }
        };
        tokio::select! {
            () = self.attempt(claim.delivery, &lease) => {}
            () = renewing => {}
        }
    }

    /// Whether this worker still holds `lease` (renewing it): asked just
    /// before a message leaves, so a worker that was away past its lease
    /// does not send what the queue's new holder sends.
    async fn still_holds(&self, lease: &DeliveryLease) -> bool {
        match self.ctx.store().renew_lease(lease, self.lease_end()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check a delivery lease; not sending");
                false
            }
        }
    }

    async fn attempt(&self, delivery: Delivery, lease: &DeliveryLease) {
        let attempts = delivery.attempts + 1;
        let system = self.ctx.systems.get(&delivery.new.system);
        let outcome = match system {
            None => Outcome::Dead(format!("system {:?} is no longer configured", delivery.new.system)),
            Some(system) => self.translate_and_send(system, &delivery, lease).await,
        };
        let now = self.ctx.clock.now();
        let mut update = DeliveryUpdate {
            delivery_id: delivery.new.delivery_id.clone(),
            system: delivery.new.system.clone(),
            case_id: delivery.new.case_id.clone(),
            from: DeliveryState::Pending,
            to: DeliveryState::Pending,
            attempts,
            next_attempt_time: now,
            last_error: String::new(),
            rendered: None,
            update_time: now,
            lease: Some(lease.token.clone()),
        };
        match outcome {
            Outcome::LeaseLost => {
                tracing::warn!(delivery = %delivery.new.delivery_id, "not sent: the queue's lease was taken over");
                return;
            }
            Outcome::Done { to, rendered } => {
                update.to = to;
                update.rendered = Some(rendered);
                tracing::info!(delivery = %delivery.new.delivery_id, system = %delivery.new.system, attempts, state = to.as_str(), "delivery handed over");
            }
            Outcome::Dead(why) => {
                update.to = DeliveryState::Dead;
                update.last_error = why;
                tracing::warn!(delivery = %delivery.new.delivery_id, system = %delivery.new.system, "delivery dead-lettered; see its last_error");
            }
            Outcome::Wait { why, retry_after } => {
                update.attempts = delivery.attempts;
                update.last_error = why;
                let delay = chrono::Duration::from_std(retry_after).unwrap_or(chrono::Duration::minutes(5));
                update.next_attempt_time = now.checked_add_signed(delay).unwrap_or(now + chrono::Duration::minutes(5));
                tracing::info!(delivery = %delivery.new.delivery_id, retry_in_ms = delay.num_milliseconds(), "adapter not available; delivery waits");
            }
            Outcome::Retry(why) => {
                let max = system.map_or(1, |s| s.max_attempts);
                update.last_error = why;
                if attempts >= max {
                    update.to = DeliveryState::Dead;
                    update.last_error = format!("gave up after {attempts} attempts: {}", update.last_error);
                    tracing::warn!(delivery = %delivery.new.delivery_id, attempts, "delivery dead-lettered; see its last_error");
                } else {
                    let delay =
                        system.map_or(Duration::from_secs(60), |s| s.backoff(attempts, &delivery.new.delivery_id));
                    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(7));
                    update.next_attempt_time = now.checked_add_signed(delay).unwrap_or(now + chrono::Duration::days(7));
                    tracing::info!(delivery = %delivery.new.delivery_id, attempts, retry_in_ms = delay.num_milliseconds(), "delivery failed; will retry");
                }
            }
        }
        let outcome = match update.to {
            DeliveryState::Pending => "retry",
            other => other.as_str(),
        };
        self.ctx.metrics.record_delivery_attempt(&delivery.new.system, outcome);
        // A receiver's or adapter's text may echo the message: no digit runs leave here.
        update.last_error = bro_domain::mask_digit_runs(&update.last_error);
        let to = update.to;
        match self.ctx.store().update_delivery(update).await {
            Ok(true) if to == DeliveryState::AwaitingPull => self.pulled.notify_waiters(),
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                delivery = %delivery.new.delivery_id,
                "the attempt's outcome was not recorded: its lease was taken over, or the delivery changed meanwhile"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot record a delivery attempt; it will be attempted again"),
        }
    }

    /// Records that a system is being handed people's data, before it
    /// leaves: if the record cannot be written, nothing is sent (the
    /// attempt waits a second, uncounted). An attempt that then fails keeps its record:
    /// the receiver may have read what it was sent.
    async fn audit_handover(
        &self,
        system: &SystemConfig,
        delivery: &Delivery,
        people: Vec<Vec<u8>>,
        how: &str,
    ) -> Result<(), Outcome> {
        let record = delivery_record(&system.name, delivery, people, how, self.ctx.clock.now());
        self.ctx.trail.record(record).await.map_err(|e| {
            tracing::error!(error = %e, delivery = %delivery.new.delivery_id, "the audit log cannot be written; the delivery is not sent");
            // Not the receiver's fault: the attempt does not count.
            Outcome::Wait {
                why: format!("not sent: the audit log cannot be written ({e})"),
                retry_after: Duration::from_secs(1),
            }
        })
    }

    /// The delivery's canonical batch as far as the case allows it now (a
    /// consent withdrawn since it was queued stops it).
    async fn sendable_batch(&self, system: &SystemConfig, delivery: &Delivery) -> Result<pb::AdapterBatch, Outcome> {
        let batch = pb::AdapterBatch::decode(delivery.new.payload.as_slice())
            .map_err(|e| Outcome::Dead(format!("the queued batch is damaged: {e}")))?;
        let case = match self.ctx.ledger.state(&delivery.new.case_id).await {
            Ok(case) => case,
            Err(LedgerError::NotFound(_)) => return Err(Outcome::Dead("the case no longer exists".into())),
            Err(e) => return Err(Outcome::Retry(format!("cannot read the case: {e}"))),
        };
        match still_sendable(system, &case, subjects::canonical(batch), self.ctx.clock.today()) {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => Err(Outcome::Dead(
                "not sent: the case no longer allows it to this system (a consent was withdrawn or the case moved)"
                    .into(),
            )),
            Err(damaged) => Err(Outcome::Dead(damaged)),
        }
    }

    async fn translate_and_send(&self, system: &SystemConfig, delivery: &Delivery, lease: &DeliveryLease) -> Outcome {
        let Some(adapter) = self.ctx.adapters.as_ref().and_then(|r| r.get(&system.adapter).ok()) else {
            let why = format!("adapter {:?} is not loaded", system.adapter);
            return Outcome::Wait { why, retry_after: Duration::from_secs(30) };
        };
        let batch = match self.sendable_batch(system, delivery).await {
            Ok(batch) => batch,
            Err(outcome) => return outcome,
        };
        let people = batch_person_keys(&self.ctx.keys, &batch);
        // The last step before the adapter: people as `subjects/N`, and the system's settings.
        let mut batch = subjects::encode(batch);
        batch.settings = system.adapter_settings.clone().into_iter().collect();
        let payload = batch.encode_to_vec();
        let target = system.target.clone();
        let receiver = system.name.clone();
        let translated =
            tokio::task::spawn_blocking(move || adapter.from_canonical(&receiver, &payload, &target)).await;
        if let Ok(Ok(t)) = &translated {
            self.ctx.metrics.stage_finished(Stage::Adapter, t.report.wall_time);
        }
        let message = match translated {
            Err(e) => return Outcome::Retry(format!("adapter task failed: {e}")),
            Ok(Err(e)) if e.blame() == Blame::Moment => {
                let retry_after = e.retry_after().unwrap_or(Duration::from_secs(1));
                return Outcome::Wait { why: e.to_string(), retry_after };
            }
            Ok(Err(e)) if e.is_transient() => return Outcome::Retry(e.to_string()),
            Ok(Err(e)) => return Outcome::Dead(e.to_string()),
            Ok(Ok(t)) => match t.result {
                Ok(m) => m,
                Err(e) => {
                    return Outcome::Dead(format!(
                        "the adapter refused the events: {}",
                        bro_plugin_host::describe_error(&e)
                    ));
                }
            },
        };
        let rendered = (message.content_type.clone(), message.body.clone());
        if !self.still_holds(lease).await {
            return Outcome::LeaseLost;
        }
        // What leaves is audited, with the people it names, before it is sent.
        let how = match &system.transport {
            Transport::None => return Outcome::Dead("the system has no transport".into()),
            // A pulled delivery is audited when it is pulled.
            Transport::Pull => return Outcome::Done { to: DeliveryState::AwaitingPull, rendered },
            Transport::File { .. } => "file",
            Transport::Http { .. } => "http",
        };
        if let Err(outcome) = self.audit_handover(system, delivery, people, how).await {
            return outcome;
        }
        let handed = match &system.transport {
            Transport::None | Transport::Pull => Ok(()),
            Transport::File { dir } => {
                let name = format!("{}.{}", delivery.new.delivery_id, transport::extension(&message.content_type));
                let dir = dir.clone();
                let body = message.body;
                match tokio::task::spawn_blocking(move || transport::write_atomically(&dir, &name, &body)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(Failure::Transient(format!("cannot write to the drop directory: {e}"))),
                    Err(e) => Err(Failure::Transient(format!("file task failed: {e}"))),
                }
            }
            Transport::Http { url } => {
                transport::post(url, system.receiver_tls.as_ref(), delivery, &message.content_type, message.body).await
            }
        };
        match handed {
            Ok(()) => Outcome::Done { to: DeliveryState::Delivered, rendered },
            Err(failure) => failure.into(),
        }
    }
}
