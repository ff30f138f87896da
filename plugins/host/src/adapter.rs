//! A loaded adapter: its `InstancePre`, its limits, its health, and the calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::bindings::{self, AdapterPre};
use crate::engine::{AdapterEngine, AdapterLimits, CallState, HostError, LogLine};
use crate::{AdapterError, AdapterInfo, Message};

/// What one call cost, against the limits production enforces.
#[derive(Clone, Debug, Default)]
pub struct CallReport {
    /// Wall time of instantiate + call.
    pub wall_time: Duration,
    /// Fuel used, on a fuel-metered engine.
    pub fuel_used: Option<u64>,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: usize,
    /// Bytes logged (kept).
    pub log_bytes: usize,
    /// Bytes of log dropped over the cap.
    pub log_dropped_bytes: usize,
    /// What the adapter logged.
    pub log: Vec<LogLine>,
}

/// The outcome of a call that ran to completion: the adapter's own answer
/// (which may be an [`AdapterError`] it chose to return) and its costs.
#[derive(Clone, Debug)]
pub struct Translation<T> {
    /// The adapter's answer.
    pub result: Result<T, AdapterError>,
    /// What it cost.
    pub report: CallReport,
}

/// Per-adapter counters and latency percentiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdapterStats {
    /// Calls made (refused quarantined calls not counted).
    pub calls: u64,
    /// Calls that returned an adapter error (bad input, unsupported type).
    pub adapter_errors: u64,
    /// Calls that trapped, timed out or breached a limit.
    pub failures: u64,
    /// Of those, traps (including panics).
    pub traps: u64,
    /// Of those, timeouts.
    pub timeouts: u64,
    /// Calls refused while quarantined.
    pub quarantined_refusals: u64,
    /// Median latency of recent calls.
    pub p50: Duration,
    /// 99th percentile latency of recent calls.
    pub p99: Duration,
}

/// Recent latencies kept for percentiles.
const LATENCY_WINDOW: usize = 1024;

#[derive(Default)]
struct Health {
    stats: AdapterStats,
    latencies: Vec<Duration>,
    next_latency: usize,
    consecutive_failures: u32,
    quarantined_until: Option<Instant>,
    backoff: Duration,
}

/// A loaded, checked adapter, ready to be called from many threads.
pub struct LoadedAdapter {
    name: Arc<str>,
    engine: Arc<AdapterEngine>,
    pre: AdapterPre<CallState>,
    limits: AdapterLimits,
    info: AdapterInfo,
    sha256: String,
    health: Mutex<Health>,
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
            engine,
            pre,
            limits,
            info: placeholder,
            sha256,
            health: Mutex::new(Health { backoff: Duration::ZERO, ..Health::default() }),
        };
        let (info, _) = adapter.call("describe", |instance, store| instance.call_describe(store))?;
        adapter.info = info;
        Ok(adapter)
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

    /// Counters and latency percentiles (computed here, not on every call).
    pub fn stats(&self) -> AdapterStats {
        let Ok(h) = self.health.lock() else { return AdapterStats::default() };
        let mut stats = h.stats.clone();
        let mut sorted = h.latencies.clone();
        drop(h);
        sorted.sort_unstable();
        if let Some(last) = sorted.len().checked_sub(1) {
            stats.p50 = sorted[sorted.len() / 2];
            stats.p99 = sorted[(sorted.len() * 99 / 100).min(last)];
        }
        stats
    }

    /// Translates an external message to a canonical batch (protobuf bytes).
    pub fn to_canonical(&self, message: &Message) -> Result<Translation<Vec<u8>>, HostError> {
        if message.body.len() > self.limits.max_input_bytes {
            return Err(HostError::InputTooLarge {
                adapter: self.name.to_string(),
                size: message.body.len(),
                limit: self.limits.max_input_bytes,
            });
        }
        let out = self.guarded("to-canonical", |instance, store| instance.call_to_canonical(store, message))?;
        if let Ok(bytes) = &out.result {
            self.check_output("to-canonical", bytes.len())?;
        }
        Ok(out)
    }

    /// Translates a canonical batch (protobuf bytes) to a message for `target`.
    pub fn from_canonical(&self, batch: &[u8], target: &str) -> Result<Translation<Message>, HostError> {
        if batch.len() > self.limits.max_input_bytes {
            return Err(HostError::InputTooLarge {
                adapter: self.name.to_string(),
                size: batch.len(),
                limit: self.limits.max_input_bytes,
            });
        }
        let out =
            self.guarded("from-canonical", |instance, store| instance.call_from_canonical(store, batch, target))?;
        if let Ok(message) = &out.result {
            self.check_output("from-canonical", message.body.len())?;
        }
        Ok(out)
    }

    fn check_output(&self, op: &'static str, size: usize) -> Result<(), HostError> {
        if size > self.limits.max_output_bytes {
            self.failed(false, false);
            return Err(HostError::OutputTooLarge {
                adapter: self.name.to_string(),
                op,
                size,
                limit: self.limits.max_output_bytes,
            });
        }
        Ok(())
    }

    /// A call that honours quarantine and updates health.
    fn guarded<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&bindings::Adapter, &mut Store<CallState>) -> wasmtime::Result<Result<T, AdapterError>>,
    ) -> Result<Translation<T>, HostError> {
        self.admit()?;
        let started = Instant::now();
        let outcome = self.call(op, f);
        let elapsed = started.elapsed();
        let mut h = self.health.lock().map_err(|_| self.host_error("health lock poisoned"))?;
        h.stats.calls += 1;
        if h.latencies.len() < LATENCY_WINDOW {
            h.latencies.push(elapsed);
        } else {
            let at = h.next_latency;
            h.latencies[at] = elapsed;
        }
        h.next_latency = (h.next_latency + 1) % LATENCY_WINDOW;
        match outcome {
            Ok((result, report)) => {
                if result.is_err() {
                    h.stats.adapter_errors += 1;
                }
                h.consecutive_failures = 0;
                h.backoff = Duration::ZERO;
                Ok(Translation { result, report })
            }
            Err(e) => {
                drop(h);
                let trap = matches!(e, HostError::Trap { .. } | HostError::StackOverflow { .. });
                self.failed(trap, matches!(e, HostError::Timeout { .. }));
                Err(e)
            }
        }
    }

    /// Refuses calls while quarantined; lets one trial call through after.
    fn admit(&self) -> Result<(), HostError> {
        let mut h = self.health.lock().map_err(|_| self.host_error("health lock poisoned"))?;
        if let Some(until) = h.quarantined_until {
            let now = Instant::now();
            if now < until {
                h.stats.quarantined_refusals += 1;
                return Err(HostError::Quarantined {
                    adapter: self.name.to_string(),
                    failures: h.consecutive_failures,
                    retry_in: until - now,
                });
            }
            // Half-open: this call is the trial; a failure re-quarantines at once.
            h.quarantined_until = None;
        }
        Ok(())
    }

    fn failed(&self, trap: bool, timeout: bool) {
        let Ok(mut h) = self.health.lock() else { return };
        let options = self.engine.options();
        h.stats.failures += 1;
        h.stats.traps += u64::from(trap);
        h.stats.timeouts += u64::from(timeout);
        h.consecutive_failures += 1;
        if h.consecutive_failures >= options.quarantine_after {
            h.backoff =
                if h.backoff.is_zero() { options.initial_backoff } else { (h.backoff * 2).min(options.max_backoff) };
            h.quarantined_until = Some(Instant::now() + h.backoff);
            tracing::warn!(adapter = %self.name, failures = h.consecutive_failures, backoff = ?h.backoff, "adapter quarantined");
        }
    }

    fn host_error(&self, reason: &str) -> HostError {
        HostError::Host { adapter: self.name.to_string(), reason: reason.to_owned() }
    }

    /// Instantiates in a fresh store and runs `f` under the limits.
    fn call<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&bindings::Adapter, &mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<(T, CallReport), HostError> {
        let started = Instant::now();
        let engine = &self.engine;
        let mut store = Store::new(&engine.engine, CallState::new(self.name.clone(), &self.limits));
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(engine.deadline_ticks(self.limits.deadline));
        store.epoch_deadline_trap();
        if engine.options.fuel {
            store.set_fuel(self.limits.fuel).map_err(|e| self.host_error(&format!("{e:#}")))?;
        }
        let result = self.pre.instantiate(&mut store).and_then(|instance| f(&instance, &mut store));
        store.data_mut().drain_stdio();
        let fuel_used =
            if engine.options.fuel { store.get_fuel().ok().map(|left| self.limits.fuel - left) } else { None };
        let state = store.data();
        let report = CallReport {
            wall_time: started.elapsed(),
            fuel_used,
            peak_memory_bytes: state.limiter.peak,
            log_bytes: state.log_bytes,
            log_dropped_bytes: state.log_dropped,
            log: state.log.clone(),
        };
        match result {
            Ok(value) => Ok((value, report)),
            Err(e) => Err(self.classify(op, &e, state)),
        }
    }

    /// Names what went wrong in a failed call.
    fn classify(&self, op: &'static str, error: &wasmtime::Error, state: &CallState) -> HostError {
        let adapter = self.name.to_string();
        if state.limiter.hit {
            return HostError::MemoryLimit { adapter, op, limit: self.limits.memory_bytes };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => HostError::Timeout { adapter, op, deadline: self.limits.deadline },
            Some(Trap::OutOfFuel) => HostError::OutOfFuel { adapter, op, fuel: self.limits.fuel },
            Some(Trap::StackOverflow) => {
                HostError::StackOverflow { adapter, op, limit: self.engine.options.max_wasm_stack }
            }
            trap => {
                // A Rust panic prints its message to stderr before it aborts.
                let last = state.log.iter().rev().find(|l| l.level == "warn" || l.level == "error");
                let mut detail = match trap {
                    Some(Trap::MemoryOutOfBounds) => {
                        "out-of-bounds memory access (its own stack or heap ran out)".to_owned()
                    }
                    Some(trap) => trap.to_string(),
                    None => error.to_string(),
                };
                if let Some(line) = last {
                    let said: Vec<&str> = line.message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                    let said = said.join(" ");
                    let mut cut = said.len().min(300);
                    while !said.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    detail.push_str(&format!(" (adapter said: {})", &said[..cut]));
                }
                HostError::Trap { adapter, op, detail }
            }
        }
    }
}
