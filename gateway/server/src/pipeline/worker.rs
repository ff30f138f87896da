//! The delivery worker: takes due deliveries from the outbox, translates each
//! with the receiving system's adapter and hands it to the system's
//! transport. At least once: a delivery is marked delivered only after its
//! transport confirmed it, so a crash in between sends it again under the
//! same idempotency key (the delivery id).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bro_plugin_host::{AdapterRegistry, HostError};
use bro_store::{Delivery, DeliveryState, DeliveryUpdate, EventStore, StoreError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{SystemConfig, Systems, Transport};
use crate::clock::Clock;

/// How often the outbox is polled when nothing wakes the worker.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Deliveries attempted at once.
const CONCURRENCY: usize = 8;
/// Deadline of one HTTP delivery.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of one attempt.
#[derive(Debug)]
enum Outcome {
    /// Handed over (or, for pull, ready to be pulled).
    Done { to: DeliveryState, rendered: (String, Vec<u8>) },
    /// Worth another attempt later.
    Retry(String),
    /// Never going to work without a person (an adapter refusal, a 4xx).
    Dead(String),
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
    store: Arc<dyn EventStore>,
    systems: Arc<Systems>,
    adapters: Option<Arc<AdapterRegistry>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<crate::metrics::Metrics>,
    wake: Arc<Notify>,
    pulled: Arc<Notify>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    trail: crate::access::audit::AuditTrail,
    keys: Arc<bro_store::Keyring>,
}

impl DeliveryWorker {
    /// A worker over the outbox in `store`.
    pub fn new(
        store: Arc<dyn EventStore>,
        systems: Arc<Systems>,
        adapters: Option<Arc<AdapterRegistry>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<crate::metrics::Metrics>,
        trail: crate::access::audit::AuditTrail,
        keys: Arc<bro_store::Keyring>,
    ) -> Self {
        DeliveryWorker {
            trail,
            keys,
            store,
            systems,
            adapters,
            clock,
            metrics,
            wake: Arc::new(Notify::new()),
            pulled: Arc::new(Notify::new()),
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The audit trail and keys deliveries are recorded with (shared with pull streams).
    pub fn audit(&self) -> (crate::access::audit::AuditTrail, Arc<bro_store::Keyring>) {
        (self.trail.clone(), self.keys.clone())
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
            let due = match self.store.due_deliveries(self.clock.now(), 64).await {
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
                let fresh = match self.store.get_delivery(&delivery.new.delivery_id).await {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a delivery");
                        continue;
                    }
                };
                let due_now = fresh.state == DeliveryState::Pending && fresh.next_attempt_time <= self.clock.now();
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
        let outcome = match self.systems.get(&delivery.new.system) {
            None => Outcome::Dead(format!("system {:?} is no longer configured", delivery.new.system)),
            Some(system) => self.translate_and_send(system, &delivery).await,
        };
        let now = self.clock.now();
        let mut update = DeliveryUpdate {
            delivery_id: delivery.new.delivery_id.clone(),
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
            Outcome::Retry(why) => {
                let max = self.systems.get(&delivery.new.system).map_or(1, |s| s.max_attempts);
                update.last_error = why;
                if attempts >= max {
                    update.to = DeliveryState::Dead;
                    update.last_error = format!("gave up after {attempts} attempts: {}", update.last_error);
                    tracing::warn!(delivery = %delivery.new.delivery_id, attempts, "delivery dead-lettered; see its last_error");
                } else {
                    let system = self.systems.get(&delivery.new.system);
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
        self.metrics.record_delivery_attempt(&delivery.new.system, outcome);
        // A receiver's or adapter's text may echo the message: no digit runs leave here.
        update.last_error = bro_domain::mask_digit_runs(&update.last_error);
        let to = update.to;
        match self.store.update_delivery(update).await {
            Ok(true) if to == DeliveryState::AwaitingPull => self.pulled.notify_waiters(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record a delivery attempt; it will be attempted again"),
        }
    }

    /// Records that a system was handed people's data (the audit log counts
    /// what left, not only what was asked for).
    async fn audit_handover(&self, system: &SystemConfig, delivery: &Delivery, people: Vec<Vec<u8>>, how: &str) {
        let record = crate::access::audit::delivery_record(&system.name, delivery, people, how, self.clock.now());
        if let Err(e) = self.trail.record(record).await {
            tracing::error!(error = %e, "the audit record of a delivery was not written");
        }
    }

    /// The delivery's batch as far as the case allows it now (a consent
    /// withdrawn since it was queued stops it).
    async fn sendable_payload(
        &self,
        system: &SystemConfig,
        delivery: &Delivery,
    ) -> Result<bro_api::v1::AdapterBatch, Outcome> {
        use prost::Message as _;
        let batch = bro_api::v1::AdapterBatch::decode(delivery.new.payload.as_slice())
            .map_err(|e| Outcome::Dead(format!("the queued batch is damaged: {e}")))?;
        let stored = match self.store.get_case(&delivery.new.case_id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(Outcome::Dead("the case no longer exists".into())),
            Err(e) => return Err(Outcome::Retry(format!("cannot read the case: {e}"))),
        };
        let case = bro_api::v1::Case::decode(stored.projection.as_slice())
            .map_err(|e| Outcome::Retry(format!("cannot read the case: {e}")))?;
        match super::still_sendable(system, &case, batch) {
            Some(batch) => Ok(batch),
            None => Err(Outcome::Dead(
                "not sent: the case no longer allows it to this system (a consent was withdrawn or the case moved)"
                    .into(),
            )),
        }
    }

    async fn translate_and_send(&self, system: &SystemConfig, delivery: &Delivery) -> Outcome {
        let Some(adapter) = self.adapters.as_ref().and_then(|r| r.get(&system.adapter).ok()) else {
            return Outcome::Retry(format!("adapter {:?} is not loaded", system.adapter));
        };
        let batch = match self.sendable_payload(system, delivery).await {
            Ok(batch) => batch,
            Err(outcome) => return outcome,
        };
        let people = crate::access::audit::batch_person_keys(&self.keys, &batch);
        let payload = {
            use prost::Message as _;
            batch.encode_to_vec()
        };
        let target = system.target.clone();
        let translated = tokio::task::spawn_blocking(move || adapter.from_canonical(&payload, &target)).await;
        let message = match translated {
            Err(e) => return Outcome::Retry(format!("adapter task failed: {e}")),
            Ok(Err(e @ (HostError::Quarantined { .. } | HostError::NotLoaded(_)))) => {
                return Outcome::Retry(e.to_string());
            }
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
        match &system.transport {
            Transport::None => Outcome::Dead("the system has no transport".into()),
            Transport::Pull => Outcome::Done { to: DeliveryState::AwaitingPull, rendered },
            Transport::File { dir } => {
                let name = format!("{}.{}", delivery.new.delivery_id, extension(&message.content_type));
                let dir = dir.clone();
                let body = message.body;
                match tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &body)).await {
                    Ok(Ok(())) => {
                        self.audit_handover(system, delivery, people, "file").await;
                        Outcome::Done { to: DeliveryState::Delivered, rendered }
                    }
                    Ok(Err(e)) => Outcome::Retry(format!("cannot write to the drop directory: {e}")),
                    Err(e) => Outcome::Retry(format!("file task failed: {e}")),
                }
            }
            Transport::Http { url } => match post(url, delivery, &message.content_type, message.body).await {
                Ok(()) => {
                    self.audit_handover(system, delivery, people, "http").await;
                    Outcome::Done { to: DeliveryState::Delivered, rendered }
                }
                Err(outcome) => outcome,
            },
        }
    }
}

/// A file name extension for a content type.
fn extension(content_type: &str) -> &'static str {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.ends_with("xml") {
        "xml"
    } else if essence.ends_with("json") {
        "json"
    } else {
        "bin"
    }
}

/// Writes `name` in `dir` so a reader sees the whole file or none: a hidden
/// temporary file, synced, renamed into place, the directory synced.
pub fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.partial"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// POSTs a delivery. 2xx: done; 408, 429 and 5xx or no answer: retry; any
/// other status: dead (the receiver refuses it; a person must look).
async fn post(url: &str, delivery: &Delivery, content_type: &str, body: Vec<u8>) -> Result<(), Outcome> {
    let uri: hyper::Uri = url.parse().map_err(|e| Outcome::Dead(format!("invalid URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Outcome::Dead(format!("only http:// URLs are supported, not {url:?}")));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Outcome::Dead("URLs with credentials are not supported".into()));
    }
    let host = uri.host().ok_or_else(|| Outcome::Dead(format!("URL {url:?} has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_else(|| host.clone());
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, &authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header("Idempotency-Key", &delivery.new.delivery_id)
        .header("X-Bro-Case", delivery.new.case_id.resource_name())
        .header("X-Bro-Sequences", format!("{}-{}", delivery.new.first_sequence, delivery.new.last_sequence))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Outcome::Dead(format!("cannot build the request (the adapter's content type?): {e}")))?;
    let send = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        stream.set_nodelay(true).ok();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
        tokio::spawn(conn);
        let response = sender.send_request(request).await.map_err(|e| format!("POST to {authority} failed: {e}"))?;
        let status = response.status();
        // A receiver's answer is read only so far: it is shown, masked, as the error.
        let text = match http_body_util::Limited::new(response.into_body(), 4096).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
            }
            Err(_) => String::new(),
        };
        Ok::<_, String>((status, text))
    };
    match tokio::time::timeout(HTTP_TIMEOUT, send).await {
        Err(_) => Err(Outcome::Retry(format!("POST to {authority} timed out after {HTTP_TIMEOUT:?}"))),
        Ok(Err(e)) => Err(Outcome::Retry(e)),
        Ok(Ok((status, _))) if status.is_success() => Ok(()),
        Ok(Ok((status, text))) => {
            let why = format!("{authority} answered {status}: {}", text.trim());
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                Err(Outcome::Retry(why))
            } else {
                Err(Outcome::Dead(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let mut s = SystemConfig::new("x", "a", "t", &[], Transport::Pull);
        s.backoff_base = Duration::from_secs(2);
        s.backoff_max = Duration::from_secs(60);
        let first = s.backoff(1, "d1");
        assert!(first >= Duration::from_secs(2) && first <= Duration::from_secs(3), "{first:?}");
        let fourth = s.backoff(4, "d1");
        assert!(fourth >= Duration::from_secs(16) && fourth <= Duration::from_secs(24), "{fourth:?}");
        let late = s.backoff(30, "d1");
        assert!(late >= Duration::from_secs(60) && late <= Duration::from_secs(90), "{late:?}");
        let spread: HashSet<Duration> = (0..20).map(|i| s.backoff(3, &format!("d{i}"))).collect();
        assert!(spread.len() > 10, "deliveries retry at different times: {spread:?}");
    }

    #[test]
    fn files_appear_whole_under_their_name() {
        let dir = tempfile_dir();
        write_atomically(&dir, "d1.xml", b"<x/>").expect("write");
        write_atomically(&dir, "d1.xml", b"<x/>").expect("a repeated delivery overwrites");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["d1.xml"], "no partial file is left behind");
        assert_eq!(std::fs::read(dir.join("d1.xml")).expect("read"), b"<x/>");
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bro-worker-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn extensions_follow_the_content_type() {
        assert_eq!(extension("application/fhir+xml; fhir-version=4.0"), "xml");
        assert_eq!(extension("application/xml; charset=windows-1252"), "xml");
        assert_eq!(extension("application/fhir+json"), "json");
        assert_eq!(extension("application/pdf"), "bin");
    }
}
