//! The data of one call's store: what the adapter logged, the memory limiter,
//! the WASI context (no preopens, no environment, stdio captured) and the
//! resource table; and the host side of `bro:adapter/log`.

use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, Level};
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
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub(crate) peak: usize,
    pub(crate) hit: bool,
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
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: Vec<LogLine>,
    pub(crate) log_bytes: usize,
    pub(crate) log_dropped: usize,
    max_log_bytes: usize,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl CallState {
    pub(crate) fn new(limits: &AdapterLimits) -> Self {
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
    pub(crate) fn drain_stdio(&mut self) {
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
