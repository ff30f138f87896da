//! One call: a fresh store (nothing leaks between messages of different
//! municipalities), instantiation from the `InstancePre`, the call under its
//! limits, and what stopped it if it did not finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, AdapterPre, Level};
use crate::engine::AdapterEngine;
use crate::error::HostError;
use crate::limits::AdapterLimits;

/// One line an adapter logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Severity (`stdout`/`stderr` output is logged as `info`/`warn`).
    pub level: &'static str,
    /// The text, masked.
    pub message: String,
}

/// What one call cost, against the limits production enforces.
#[derive(Clone, Debug, Default)]
pub struct CallReport {
    /// Wall time of instantiate + call (waiting for a slot not included).
    pub wall_time: Duration,
    /// Fuel used.
    pub fuel_used: u64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: usize,
    /// Bytes logged (kept).
    pub log_bytes: usize,
    /// Bytes of log dropped over the cap.
    pub log_dropped_bytes: usize,
    /// What the adapter logged (masked).
    pub log: Vec<LogLine>,
}

/// Tracks memory growth against the cap and remembers the peak.
struct MemoryLimiter {
    limit: usize,
    peak: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The data of one call's store.
pub(crate) struct CallState {
    limiter: MemoryLimiter,
    log: Vec<LogLine>,
    log_bytes: usize,
    log_dropped: usize,
    max_log_bytes: usize,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl CallState {
    fn new(limits: &AdapterLimits) -> Self {
        let stdout = MemoryOutputPipe::new(limits.max_log_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_log_bytes);
        // No preopens, no environment, no arguments, no inherited stdio.
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        CallState {
            limiter: MemoryLimiter { limit: limits.memory_bytes, peak: 0, hit: false },
            log: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
            max_log_bytes: limits.max_log_bytes,
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
        }
    }

    /// Keeps a log line within the per-call cap (unmasked until the call ends).
    fn record(&mut self, level: &'static str, message: String) {
        let room = self.max_log_bytes.saturating_sub(self.log_bytes);
        if room == 0 {
            self.log_dropped += message.len();
            return;
        }
        let mut message = message;
        if message.len() > room {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            self.log_dropped += message.len() - cut;
            message.truncate(cut);
        }
        self.log_bytes += message.len();
        self.log.push(LogLine { level, message });
    }

    /// Moves captured stdout/stderr into the log.
    fn drain_stdio(&mut self) {
        for (level, pipe) in [("info", self.stdout.clone()), ("warn", self.stderr.clone())] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                let text = String::from_utf8_lossy(&bytes).trim_end().to_owned();
                self.record(level, text);
            }
        }
    }
}

impl bindings::bro::adapter::log::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.record(level, message);
    }
}

impl bindings::bro::adapter::types::Host for CallState {}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What stopped a call that did not finish. Its texts are not yet masked.
pub(crate) enum Stopped {
    /// A limit or the backstop: final as it is.
    Limit(HostError),
    /// A crash: the trap, and the adapter's last warning if it explains it
    /// (a Rust panic prints its message to stderr before it aborts).
    Crash(String),
    /// The instance could not be created, through no fault of the message.
    Instantiate(String),
}

/// A call's result and report.
pub(crate) struct Ran<T> {
    pub(crate) result: Result<T, Stopped>,
    pub(crate) report: CallReport,
}

/// The settings of one call.
pub(crate) struct CallSpec<'a> {
    pub(crate) engine: &'a AdapterEngine,
    pub(crate) pre: &'a AdapterPre<CallState>,
    pub(crate) adapter: &'a Arc<str>,
    pub(crate) limits: &'a AdapterLimits,
    pub(crate) op: &'static str,
}

/// Instantiates in a fresh store and runs `f` under the limits.
pub(crate) fn run<T>(
    spec: &CallSpec<'_>,
    f: impl FnOnce(&bindings::Adapter, &mut Store<CallState>) -> wasmtime::Result<T>,
) -> Ran<T> {
    let started = Instant::now();
    let (engine, limits) = (spec.engine, spec.limits);
    let mut store = Store::new(&engine.engine, CallState::new(limits));
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(engine.deadline_ticks(limits.deadline));
    store.epoch_deadline_trap();
    let fuel_set = store.set_fuel(limits.fuel);
    let result = match fuel_set.and_then(|()| spec.pre.instantiate(&mut store)) {
        Ok(instance) => f(&instance, &mut store).map_err(|e| stopped(spec, &e, store.data())),
        Err(e) if e.downcast_ref::<Trap>().is_some() || store.data().limiter.hit => {
            Err(Stopped::Crash(format!("instantiation failed: {e:#}")))
        }
        Err(e) => Err(Stopped::Instantiate(format!("{e:#}"))),
    };
    store.data_mut().drain_stdio();
    let fuel_used = store.get_fuel().map(|left| limits.fuel.saturating_sub(left)).unwrap_or_default();
    let state = store.into_data();
    let report = CallReport {
        wall_time: started.elapsed(),
        fuel_used,
        peak_memory_bytes: state.limiter.peak,
        log_bytes: state.log_bytes,
        log_dropped_bytes: state.log_dropped,
        log: state.log,
    };
    Ran { result, report }
}

/// Names what stopped a call.
fn stopped(spec: &CallSpec<'_>, error: &wasmtime::Error, state: &CallState) -> Stopped {
    let (adapter, op, limits) = (spec.adapter.to_string(), spec.op, spec.limits);
    if state.limiter.hit {
        return Stopped::Limit(HostError::MemoryLimit { adapter, op, limit: limits.memory_bytes });
    }
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::Interrupt) => Stopped::Limit(HostError::Timeout { adapter, op, deadline: limits.deadline }),
        Some(Trap::OutOfFuel) => Stopped::Limit(HostError::OutOfFuel { adapter, op, fuel: limits.fuel }),
        Some(Trap::StackOverflow) => {
            Stopped::Limit(HostError::StackOverflow { adapter, op, limit: spec.engine.options.max_wasm_stack })
        }
        _ => {
            let mut detail = match trap {
                Some(Trap::MemoryOutOfBounds) => "out-of-bounds memory access (its own stack or heap ran out)".into(),
                Some(trap) => trap.to_string(),
                None => error.to_string(),
            };
            let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
            let last = state.log.iter().rev().find(|l| l.level == "warn" || l.level == "error").map(|l| &l.message);
            if let Some(line) = last.or(Some(&stderr).filter(|s| !s.trim().is_empty())) {
                let said: Vec<&str> = line.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                let said = said.join(" ");
                let mut cut = said.len().min(300);
                while !said.is_char_boundary(cut) {
                    cut -= 1;
                }
                detail.push_str(&format!(" (adapter said: {})", &said[..cut]));
            }
            Stopped::Crash(detail)
        }
    }
}
