//! A loaded adapter: its `InstancePre`, its limits, its slots, its health,
//! and the calls — admitted, run, blamed, masked and counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::Component;

use crate::admission::{Permit, Slots};
use crate::bindings::{self, AdapterPre};
use crate::call::{self, CallSpec, Stopped};
use crate::engine::AdapterEngine;
use crate::error::{BusyScope, HostError};
use crate::health::{AdapterStats, Health, Outcome};
use crate::limits::AdapterLimits;
use crate::mask::Masker;
use crate::state::{CallReport, CallState, LogLine};
use crate::{AdapterError, AdapterInfo, Message, describe_error};

/// The outcome of a call that ran to completion: the adapter's own answer
/// (which may be an [`AdapterError`] it chose to return: deliberate text,
/// written with the SDK's echo masking, and masked for digit runs again by
/// the gateway before it is stored) and its costs.
#[derive(Clone, Debug)]
pub struct Translation<T> {
    /// The adapter's answer.
    pub result: Result<T, AdapterError>,
    /// What it cost.
    pub report: CallReport,
}

/// A loaded, checked adapter, ready to be called from many threads.
pub struct LoadedAdapter {
    name: Arc<str>,
    engine: Arc<AdapterEngine>,
    pre: AdapterPre<CallState>,
    limits: AdapterLimits,
    info: AdapterInfo,
    sha256: String,
    probe: Option<Message>,
    slots: Slots,
    health: Health,
}

impl std::fmt::Debug for LoadedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedAdapter").field("name", &self.name).field("version", &self.info.version).finish()
    }
}

impl LoadedAdapter {
    /// Loads a component: checks its imports, builds its `InstancePre`, and
    /// calls `describe` once to check it answers within its limits.
    pub fn load(
        engine: Arc<AdapterEngine>,
        name: &str,
        component: &Component,
        limits: AdapterLimits,
        sha256: String,
    ) -> Result<LoadedAdapter, HostError> {
        engine.check_imports(name, component)?;
        let invalid =
            |e: wasmtime::Error| HostError::InvalidComponent { adapter: name.to_owned(), reason: format!("{e:#}") };
        let instance_pre = engine.linker.instantiate_pre(component).map_err(invalid)?;
        let pre = AdapterPre::new(instance_pre).map_err(invalid)?;
        let placeholder = AdapterInfo {
            name: name.to_owned(),
            version: String::new(),
            system_kind: bindings::exports::SystemKind::Other,
            reads: Vec::new(),
            writes: Vec::new(),
        };
        let mut adapter = LoadedAdapter {
            name: name.into(),
            slots: Slots::new(limits.max_concurrent_calls.min(engine.options.max_running_calls)),
            engine,
            pre,
            limits,
            info: placeholder,
            sha256,
            probe: None,
            health: Health::default(),
        };
        adapter.info = adapter.describe().map_err(|detail| HostError::InvalidComponent {
            adapter: name.to_owned(),
            reason: format!("describe() does not answer: {detail}"),
        })?;
        Ok(adapter)
    }

    /// Gives the adapter a known-good message (its package's probe): it must
    /// translate now, and after a crash it is tried again to tell a message
    /// that crashes the adapter from an adapter that crashes on anything.
    pub fn with_probe(mut self, probe: Message) -> Result<LoadedAdapter, HostError> {
        if let Err(detail) = self.run_probe(&probe) {
            return Err(HostError::Package {
                adapter: self.name.to_string(),
                reason: format!("the adapter fails its own probe message: {detail}"),
            });
        }
        self.probe = Some(probe);
        Ok(self)
    }

    /// The adapter's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the adapter says it is.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// The limits it runs under.
    pub fn limits(&self) -> &AdapterLimits {
        &self.limits
    }

    /// SHA-256 of the component bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether it has a probe message.
    pub fn has_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// Counters, state and latency percentiles.
    pub fn stats(&self) -> AdapterStats {
        self.health.stats(Instant::now())
    }

    /// Translates an external message from `party` (its sender) to a
    /// canonical batch (protobuf bytes).
    pub fn to_canonical(&self, party: &str, message: &Message) -> Result<Translation<Vec<u8>>, HostError> {
        let masker = Masker::new(&message.body, &message.content_type);
        self.guarded("to-canonical", party, message.body.len(), &masker, Vec::len, |instance, store| {
            instance.call_to_canonical(store, message)
        })
    }

    /// Translates a canonical batch (protobuf bytes) to a message for
    /// `target`, on behalf of `party` (its receiver).
    pub fn from_canonical(&self, party: &str, batch: &[u8], target: &str) -> Result<Translation<Message>, HostError> {
        let masker = Masker::new(batch, "application/x-protobuf");
        let size = |m: &Message| m.body.len();
        self.guarded("from-canonical", party, batch.len(), &masker, size, |instance, store| {
            instance.call_from_canonical(store, batch, target)
        })
    }

    fn options(&self) -> &crate::EngineOptions {
        &self.engine.options
    }

    /// A call that is admitted (health, then the adapter's slot, then the
    /// engine's), run, blamed, masked and counted. An answer bigger than the
    /// output cap is the message's fault: the adapter answered it, at a size
    /// the gateway does not take.
    fn guarded<T>(
        &self,
        op: &'static str,
        party: &str,
        input_len: usize,
        masker: &Masker<'_>,
        output_len: impl Fn(&T) -> usize,
        f: impl FnOnce(&bindings::Adapter, &mut Store<CallState>) -> wasmtime::Result<Result<T, AdapterError>>,
    ) -> Result<Translation<T>, HostError> {
        let arrived = Instant::now();
        self.health.admit(&self.name, party, arrived)?;
        if input_len > self.limits.max_input_bytes {
            let (adapter, limit) = (self.name.to_string(), self.limits.max_input_bytes);
            let error = HostError::InputTooLarge { adapter, size: input_len, limit };
            self.health.record(&self.name, party, None, Outcome::Failed(&error), self.options(), arrived);
            return Err(error);
        }
        let _permits = self.admit(arrived)?;
        self.health.started();
        let ran = call::run(&self.spec(op), f);
        let report = self.masked_report(ran.report, masker);
        let wall_time = report.wall_time;
        let outcome = match ran.result {
            Ok(Ok(value)) if output_len(&value) > self.limits.max_output_bytes => Err(HostError::OutputTooLarge {
                adapter: self.name.to_string(),
                op,
                size: output_len(&value),
                limit: self.limits.max_output_bytes,
            }),
            Ok(Ok(value)) => Ok(Translation { result: Ok(value), report }),
            Ok(Err(refusal)) => Ok(Translation { result: Err(refusal), report }),
            Err(stopped) => Err(self.blamed(op, stopped, masker)),
        };
        let recorded = match &outcome {
            Ok(t) => Outcome::Completed { refused: t.result.is_err() },
            Err(e) => Outcome::Failed(e),
        };
        self.health.record(&self.name, party, Some(wall_time), recorded, self.options(), Instant::now());
        if let Err(e) = &outcome {
            tracing::warn!(adapter = %self.name, party, error = %e, "adapter call failed");
        }
        outcome
    }

    /// Waits for the adapter's slot, then the engine's, within the queue timeout.
    fn admit(&self, arrived: Instant) -> Result<(Permit<'_>, Permit<'_>), HostError> {
        let until = arrived + self.limits.queue_timeout;
        let busy = |scope: BusyScope, slots: u32| {
            self.health.refused_busy();
            HostError::Busy {
                adapter: self.name.to_string(),
                scope,
                slots,
                waited: arrived.elapsed(),
                retry_after: self.limits.queue_timeout.max(Duration::from_secs(1)),
            }
        };
        let own = self.slots.acquire_until(until).ok_or_else(|| busy(BusyScope::Adapter, self.slots.capacity()))?;
        let shared = self
            .engine
            .slots
            .acquire_until(until)
            .ok_or_else(|| busy(BusyScope::Engine, self.engine.slots.capacity()))?;
        Ok((own, shared))
    }

    fn spec(&self, op: &'static str) -> CallSpec<'_> {
        CallSpec { engine: &self.engine, pre: &self.pre, adapter: &self.name, limits: &self.limits, op }
    }

    /// The error for a call that was stopped, blamed on the message or on the
    /// adapter: a crash is the adapter's only if it fails its known-good
    /// checks too (run now, in fresh instances, under the permits held).
    fn blamed(&self, op: &'static str, stopped: Stopped, masker: &Masker<'_>) -> HostError {
        let adapter = self.name.to_string();
        match stopped {
            Stopped::Limit(error) => error,
            Stopped::Instantiate(reason) => HostError::Host { adapter, reason: masker.mask(&reason) },
            Stopped::Crash(detail) => {
                let detail = masker.mask(&detail);
                let check = self.describe().err().map(|why| format!("describe() fails too: {why}")).or_else(|| {
                    let probe = self.probe.as_ref()?;
                    self.run_probe(probe).err().map(|why| format!("its probe message fails too: {why}"))
                });
                match check {
                    Some(check) => HostError::Broken { adapter, op, detail: format!("{detail}; {check}") },
                    None => HostError::Trap { adapter, op, detail },
                }
            }
        }
    }

    /// Calls `describe` in a fresh instance.
    fn describe(&self) -> Result<AdapterInfo, String> {
        let ran = call::run(&self.spec("describe"), |instance, store| instance.call_describe(store));
        ran.result.map_err(|stopped| stopped_text(stopped, &Masker::new(b"", "")))
    }

    /// Translates the probe message in a fresh instance; it must succeed.
    fn run_probe(&self, probe: &Message) -> Result<(), String> {
        let masker = Masker::new(&probe.body, &probe.content_type);
        let ran = call::run(&self.spec("probe"), |instance, store| instance.call_to_canonical(store, probe));
        match ran.result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(refusal)) => Err(masker.mask(&describe_error(&refusal))),
            Err(stopped) => Err(stopped_text(stopped, &masker)),
        }
    }

    /// The report with its log masked, and the log written to tracing.
    fn masked_report(&self, mut report: CallReport, masker: &Masker<'_>) -> CallReport {
        for line in &mut report.log {
            line.message = masker.mask(&line.message);
            tracing::event!(target: "bro::adapter", tracing::Level::DEBUG, adapter = %self.name, level = line.level, "{}", line.message);
        }
        report
    }
}

/// A stopped call's text, masked.
fn stopped_text(stopped: Stopped, masker: &Masker<'_>) -> String {
    match stopped {
        Stopped::Limit(e) => e.to_string(),
        Stopped::Crash(detail) | Stopped::Instantiate(detail) => masker.mask(&detail),
    }
}

/// A log line's text, for callers that show it.
impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.level, self.message)
    }
}
