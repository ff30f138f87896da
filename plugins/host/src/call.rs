//! One call: a fresh store (nothing leaks between messages of different
//! municipalities), instantiation from the `InstancePre`, the call under its
//! limits, and what stopped it if it did not finish.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, Trap};

use crate::bindings::{self, AdapterPre};
use crate::engine::AdapterEngine;
use crate::error::HostError;
use crate::limits::AdapterLimits;
use crate::state::{CallReport, CallState};

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
