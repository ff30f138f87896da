//! The delivery worker: takes due deliveries from the outbox, judges each
//! again by the case as it is now ([`super::outbox::still_sendable`]),
//! names its people as the receiving adapter reads them
//! ([`super::subjects::encode`]), translates it with that adapter and hands
//! it to the system's transport. At least once: a delivery is marked
//! delivered only after its transport confirmed it, so a crash in between
//! sends it again under the same idempotency key (the delivery id).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bro_api::v1 as pb;
use bro_plugin_host::Blame;
use bro_store::{AppendObserver as _, Delivery, DeliveryState, DeliveryUpdate, LedgerError, Stage, StoreError};
use prost::Message as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::outbox::still_sendable;
use super::subjects;
use super::transport::{self, Failure};
use crate::access::audit::{batch_person_keys, delivery_record};
use crate::context::Context;
use crate::systems::{SystemConfig, Transport};

/// How often the outbox is polled when nothing wakes the worker.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deliveries attempted at once.
const CONCURRENCY: usize = 8;

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
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Transient(why) => Outcome::Retry(why),
            Failure::Permanent(why) => Outcome::Dead(why),
        }
    }
}

/// A claimed (system, case) queue; released when dropped, also on a panic.
struct Claim {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

/// The worker; cheap to clone.
#[derive(Clone)]
pub struct DeliveryWorker {
    ctx: Context,
    wake: Arc<Notify>,
    pulled: Arc<Notify>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl DeliveryWorker {
    /// A worker over the outbox of the gateway's store.
    pub fn new(ctx: Context) -> Self {
        DeliveryWorker {
            ctx,
            wake: Arc::new(Notify::new()),
            pulled: Arc::new(Notify::new()),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
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
        loop {
            let due = match self.ctx.store().due_deliveries(self.ctx.clock.now(), 64).await {
                Ok(due) => due,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            let mut started = 0;
            for delivery in due {
                // One attempt per (system, case) queue at a time: claim it first…
                let key = format!("{}\u{0}{}", delivery.new.system, delivery.new.case_id);
                if !self.in_flight.lock().expect("in-flight lock").insert(key.clone()) {
                    continue;
                }
                let claim = Claim { set: self.in_flight.clone(), key };
                // …then work from the row as it is now, not as the batch read it
                // (an attempt that just finished may have moved it on).
                let fresh = match self.ctx.store().get_delivery(&delivery.new.delivery_id).await {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a delivery");
                        continue;
                    }
                };
                let due_now = fresh.state == DeliveryState::Pending && fresh.next_attempt_time <= self.ctx.clock.now();
                if !due_now || fresh.attempts != delivery.attempts {
                    continue;
                }
                let Ok(permit) = limit.clone().acquire_owned().await else { return };
                started += 1;
                let worker = self.clone();
                tokio::spawn(async move {
                    let _claim = claim;
                    worker.attempt(fresh).await;
                    drop(permit);
                    worker.wake.notify_one();
                });
            }
            if started == 0 {
                tokio::select! {
                    _ = stopping.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            } else if stopping.is_cancelled() {
                break;
            }
        }
        // Let attempts in flight finish: their outcome is recorded, not lost.
        let _ = limit.acquire_many(CONCURRENCY as u32).await;
    }

    async fn attempt(&self, delivery: Delivery) {
        let attempts = delivery.attempts + 1;
        let system = self.ctx.systems.get(&delivery.new.system);
        let outcome = match system {
            None => Outcome::Dead(format!("system {:?} is no longer configured", delivery.new.system)),
            Some(system) => self.translate_and_send(system, &delivery).await,
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
        };
        match outcome {
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
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record a delivery attempt; it will be attempted again"),
        }
    }

    /// Records that a system was handed people's data (the audit log counts
    /// what left, not only what was asked for).
    async fn audit_handover(&self, system: &SystemConfig, delivery: &Delivery, people: Vec<Vec<u8>>, how: &str) {
        let record = delivery_record(&system.name, delivery, people, how, self.ctx.clock.now());
        if let Err(e) = self.ctx.trail.record(record).await {
            tracing::error!(error = %e, "the audit record of a delivery was not written");
        }
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
        match still_sendable(system, &case, subjects::canonical(batch)) {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => Err(Outcome::Dead(
                "not sent: the case no longer allows it to this system (a consent was withdrawn or the case moved)"
                    .into(),
            )),
            Err(damaged) => Err(Outcome::Dead(damaged)),
        }
    }

    async fn translate_and_send(&self, system: &SystemConfig, delivery: &Delivery) -> Outcome {
        let Some(adapter) = self.ctx.adapters.as_ref().and_then(|r| r.get(&system.adapter).ok()) else {
            let why = format!("adapter {:?} is not loaded", system.adapter);
            return Outcome::Wait { why, retry_after: Duration::from_secs(30) };
        };
        let batch = match self.sendable_batch(system, delivery).await {
            Ok(batch) => batch,
            Err(outcome) => return outcome,
        };
        let people = batch_person_keys(&self.ctx.keys, &batch);
        // The last step before the adapter: people as `subjects/N`.
        let payload = subjects::encode(batch).encode_to_vec();
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
        let handed = match &system.transport {
            Transport::None => return Outcome::Dead("the system has no transport".into()),
            Transport::Pull => return Outcome::Done { to: DeliveryState::AwaitingPull, rendered },
            Transport::File { dir } => {
                let name = format!("{}.{}", delivery.new.delivery_id, transport::extension(&message.content_type));
                let dir = dir.clone();
                let body = message.body;
                match tokio::task::spawn_blocking(move || transport::write_atomically(&dir, &name, &body)).await {
                    Ok(Ok(())) => Ok("file"),
                    Ok(Err(e)) => Err(Failure::Transient(format!("cannot write to the drop directory: {e}"))),
                    Err(e) => Err(Failure::Transient(format!("file task failed: {e}"))),
                }
            }
            Transport::Http { url } => {
                transport::post(url, delivery, &message.content_type, message.body).await.map(|()| "http")
            }
        };
        match handed {
            Ok(how) => {
                self.audit_handover(system, delivery, people, how).await;
                Outcome::Done { to: DeliveryState::Delivered, rendered }
            }
            Err(failure) => failure.into(),
        }
    }
}
