//! The one wasmtime engine, its linker, the per-call store state, and the
//! import check that keeps capabilities out of adapters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, Level};

/// Interfaces an adapter may import, by name without version. `bro:adapter/*`
/// is the contract; the `wasi:cli`/`wasi:io` ones are what Rust's standard
/// library on `wasm32-wasip2` links (panic messages, stdio), satisfied inertly.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "bro:adapter/log",
    "bro:adapter/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
];

/// The limits one call runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterLimits {
    /// Wall-clock deadline of a call (epoch interruption).
    pub deadline: Duration,
    /// Most linear memory an instance may have, in bytes.
    pub memory_bytes: usize,
    /// Largest input message body, in bytes.
    pub max_input_bytes: usize,
    /// Largest output (canonical batch or message body), in bytes.
    pub max_output_bytes: usize,
    /// Most log bytes an adapter may write per call (more is dropped, and counted).
    pub max_log_bytes: usize,
    /// Fuel per call, on an engine with fuel metering.
    pub fuel: u64,
}

impl Default for AdapterLimits {
    fn default() -> Self {
        AdapterLimits {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            max_input_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            max_log_bytes: 64 << 10,
            fuel: 2_000_000_000,
        }
    }
}

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Meter fuel (deterministic instruction budget; for `bro adapter run`).
    pub fuel: bool,
    /// Epoch tick: the deadline's resolution.
    pub epoch_tick: Duration,
    /// Largest memory any adapter may be configured with (sizes the pool).
    pub max_memory_bytes: usize,
    /// Instances that may run at the same time (sizes the pool).
    pub max_concurrent_instances: u32,
    /// Deepest wasm stack, in bytes.
    pub max_wasm_stack: usize,
    /// Consecutive failures before an adapter is quarantined.
    pub quarantine_after: u32,
    /// First quarantine period; it doubles on each further failure, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest quarantine period.
    pub max_backoff: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fuel: false,
            epoch_tick: Duration::from_millis(2),
            max_memory_bytes: 256 << 20,
            max_concurrent_instances: 64,
            max_wasm_stack: 512 << 10,
            quarantine_after: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Why loading or calling an adapter failed. Every variant names the adapter.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component imports something the host does not grant.
    #[error(
        "adapter {adapter}: refused at load: it imports `{import}`, which bro does not grant (allowed: bro:adapter/log and the inert wasi:cli/wasi:io stdio interfaces)"
    )]
    ForbiddenImport {
        /// Adapter.
        adapter: String,
        /// The import's full name.
        import: String,
    },
    /// The bytes are not a valid component for this world.
    #[error("adapter {adapter}: not a valid bro:adapter@0.1.0 component: {reason}")]
    InvalidComponent {
        /// Adapter.
        adapter: String,
        /// Why.
        reason: String,
    },
    /// The call ran past its deadline.
    #[error("adapter {adapter}: {op} exceeded its deadline of {deadline:?} and was stopped")]
    Timeout {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The deadline.
        deadline: Duration,
    },
    /// The call used up its fuel.
    #[error("adapter {adapter}: {op} used up its fuel budget of {fuel} and was stopped")]
    OutOfFuel {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The budget.
        fuel: u64,
    },
    /// The call tried to grow memory past its cap.
    #[error("adapter {adapter}: {op} tried to use more than its memory limit of {limit} bytes and was stopped")]
    MemoryLimit {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The wasm stack overflowed (runaway recursion).
    #[error("adapter {adapter}: {op} overflowed its stack ({limit} bytes) and was stopped")]
    StackOverflow {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The adapter trapped (a panic, `unreachable`, a bad memory access).
    #[error("adapter {adapter}: {op} crashed: {detail}")]
    Trap {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The trap, and the adapter's last log line if it explains it.
        detail: String,
    },
    /// The input is bigger than the adapter may be given.
    #[error("adapter {adapter}: the input is {size} bytes; the limit is {limit}")]
    InputTooLarge {
        /// Adapter.
        adapter: String,
        /// Size.
        size: usize,
        /// Cap.
        limit: usize,
    },
    /// The adapter produced more than it may return.
    #[error("adapter {adapter}: {op} returned {size} bytes; the limit is {limit}")]
    OutputTooLarge {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// Size.
        size: usize,
        /// Cap.
        limit: usize,
    },
    /// Too many recent failures: the adapter rests until `retry_in` has passed.
    #[error("adapter {adapter}: quarantined after {failures} consecutive failures; next attempt in {retry_in:?}")]
    Quarantined {
        /// Adapter.
        adapter: String,
        /// Consecutive failures.
        failures: u32,
        /// Time left.
        retry_in: Duration,
    },
    /// The package failed verification (signature, hash, manifest).
    #[error("adapter package {adapter}: {reason}")]
    Package {
        /// Adapter (or the package path).
        adapter: String,
        /// Why.
        reason: String,
    },
    /// No adapter of that name is loaded.
    #[error("no adapter named {0:?} is loaded")]
    NotLoaded(String),
    /// The engine itself failed.
    #[error("adapter {adapter}: the host failed: {reason}")]
    Host {
        /// Adapter.
        adapter: String,
        /// Why.
        reason: String,
    },
}

impl HostError {
    /// Whether the failure is the gateway's or the moment's, not the
    /// message's: the adapter is quarantined, not loaded, ran out of time, or
    /// the host itself failed. A caller retries such a call later (ingest
    /// answers `UNAVAILABLE` and stores nothing; the delivery worker tries
    /// again with backoff); any other failure is the message's, and final
    /// (ingest stores a rejection; a delivery is dead-lettered).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HostError::Quarantined { .. }
                | HostError::NotLoaded(_)
                | HostError::Timeout { .. }
                | HostError::Host { .. }
        )
    }
}

/// One line an adapter logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Severity (`stdout`/`stderr` output is logged as `info`/`warn`).
    pub level: &'static str,
    /// The text.
    pub message: String,
}

/// Tracks memory growth against the cap and remembers the peak.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
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
    pub(crate) adapter: Arc<str>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: Vec<LogLine>,
    pub(crate) log_bytes: usize,
    pub(crate) log_dropped: usize,
    pub(crate) max_log_bytes: usize,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl CallState {
    pub(crate) fn new(adapter: Arc<str>, limits: &AdapterLimits) -> Self {
        let stdout = MemoryOutputPipe::new(limits.max_log_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_log_bytes);
        // No preopens, no environment, no arguments, no inherited stdio.
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        CallState {
            adapter,
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

    pub(crate) fn record(&mut self, level: &'static str, message: String) {
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
        tracing::event!(target: "bro::adapter", tracing::Level::DEBUG, adapter = %self.adapter, level, "{message}");
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

/// Resource-table access for the `wasi:io` interfaces.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Stops the epoch ticker when the engine is dropped.
struct Ticker(Arc<AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The adapter engine: one wasmtime `Engine` and one `Linker` for every adapter.
pub struct AdapterEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) options: EngineOptions,
    _ticker: Ticker,
}

impl AdapterEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(options: EngineOptions) -> Result<AdapterEngine, HostError> {
        let host_err = |e: wasmtime::Error| HostError::Host { adapter: "-".into(), reason: format!("{e:#}") };
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(options.max_concurrent_instances)
            .total_core_instances(options.max_concurrent_instances * 4)
            .total_memories(options.max_concurrent_instances * 2)
            .total_tables(options.max_concurrent_instances * 4)
            .max_memory_size(options.max_memory_bytes)
            .max_memories_per_component(4)
            .max_tables_per_component(8);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(options.fuel)
            .max_wasm_stack(options.max_wasm_stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(host_err)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        bindings::Adapter::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s).map_err(host_err)?;
        add_inert_wasi(&mut linker).map_err(host_err)?;

        let stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, ticker_stop, tick) = (engine.weak(), stop.clone(), options.epoch_tick);
        std::thread::Builder::new()
            .name("bro-adapter-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| HostError::Host {
                adapter: "-".into(),
                reason: format!("cannot start the epoch ticker: {e}"),
            })?;
        Ok(AdapterEngine { engine, linker, options, _ticker: Ticker(stop) })
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The wasmtime engine (for the compiled-code cache).
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a component (no import check yet).
    pub fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, HostError> {
        Component::new(&self.engine, wasm)
            .map_err(|e| HostError::InvalidComponent { adapter: name.to_owned(), reason: format!("{e:#}") })
    }

    /// Refuses a component that imports anything outside [`ALLOWED_IMPORTS`].
    pub fn check_imports(&self, name: &str, component: &Component) -> Result<(), HostError> {
        for (import, _) in component.component_type().imports(&self.engine) {
            let bare = import.split('@').next().unwrap_or(import);
            if !ALLOWED_IMPORTS.contains(&bare) {
                return Err(HostError::ForbiddenImport { adapter: name.to_owned(), import: import.to_owned() });
            }
        }
        Ok(())
    }

    /// Ticks of the epoch for a deadline, rounded up.
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = self.options.epoch_tick.as_nanos().max(1);
        (deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }
}

/// Links the standard-library interfaces of `wasm32-wasip2` with a context
/// that holds nothing: no environment, no arguments, an empty stdin, and
/// stdout/stderr captured in memory. Clocks, random, filesystem and sockets
/// are deliberately not linked.
fn add_inert_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, sync};
    cli::exit::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(linker, CallState::cli)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<CallState, HasIo>(linker, |s| &mut s.table)?;
    sync::io::poll::add_to_linker::<CallState, HasIo>(linker, |s| &mut s.table)?;
    sync::io::streams::add_to_linker::<CallState, HasIo>(linker, |s| &mut s.table)?;
    Ok(())
}
