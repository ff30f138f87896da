//! The settings an adapter's calls run under ([`AdapterLimits`], per adapter)
//! and the engine's ([`EngineOptions`], one for all adapters).

use std::time::Duration;

/// The limits one adapter's calls run under.
///
/// Fuel is the CPU limit: it counts the adapter's instructions, so the same
/// message gets the same verdict on an idle and on a loaded machine. The
/// wall-clock `deadline` is only a backstop well above it (about 10 fuel
/// units run per nanosecond here, so the default budget is about 0.2 s of
/// CPU and the backstop ten times that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterLimits {
    /// Fuel (instruction budget) per call: the primary CPU limit.
    pub fuel: u64,
    /// Wall-clock backstop of a call (epoch interruption).
    pub deadline: Duration,
    /// Most linear memory an instance may have, in bytes.
    pub memory_bytes: usize,
    /// Largest input message body, in bytes.
    pub max_input_bytes: usize,
    /// Largest output (canonical batch or message body), in bytes.
    pub max_output_bytes: usize,
    /// Most log bytes an adapter may write per call (more is dropped, and counted).
    pub max_log_bytes: usize,
    /// Calls of this adapter that may run at the same time.
    pub max_concurrent_calls: u32,
    /// How long a call may wait for a free slot before it is answered busy.
    pub queue_timeout: Duration,
}

impl Default for AdapterLimits {
    fn default() -> Self {
        AdapterLimits {
            fuel: 2_000_000_000,
            deadline: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            max_input_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            max_log_bytes: 64 << 10,
            max_concurrent_calls: 8,
            queue_timeout: Duration::from_secs(1),
        }
    }
}

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Epoch tick: the wall-clock backstop's resolution.
    pub epoch_tick: Duration,
    /// Largest memory any adapter may be configured with (sizes the pool).
    pub max_memory_bytes: usize,
    /// Instances the pool holds (its capacity).
    pub max_concurrent_instances: u32,
    /// Calls of all adapters that may run at the same time: strictly below
    /// the pool's capacity, so a call waits for a slot and never finds the
    /// pool exhausted.
    pub max_running_calls: u32,
    /// Deepest wasm stack, in bytes.
    pub max_wasm_stack: usize,
    /// Consecutive failures of the adapter's own before it is quarantined.
    pub quarantine_after: u32,
    /// Consecutive limit-breaking messages of one party before that party is throttled.
    pub throttle_after: u32,
    /// First quarantine or throttle period; it doubles on each further failure, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest quarantine or throttle period.
    pub max_backoff: Duration,
    /// Bytes of each pooled linear memory kept resident between calls and
    /// reset with `memset` (only the pages a call dirtied, where the kernel
    /// can tell) instead of being unmapped: the next call takes no page
    /// faults on them.
    pub keep_resident_bytes: usize,
    /// Write `/tmp/perf-PID.map` so that `perf` names the adapters' compiled
    /// functions (for profiling; off in production).
    pub perf_map: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            epoch_tick: Duration::from_millis(2),
            max_memory_bytes: 256 << 20,
            max_concurrent_instances: 64,
            max_running_calls: 56,
            max_wasm_stack: 512 << 10,
            quarantine_after: 5,
            throttle_after: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            keep_resident_bytes: 4 << 20,
            perf_map: false,
        }
    }
}
