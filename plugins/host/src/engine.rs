//! The one wasmtime engine: its pooling allocator, its linker, the slots
//! every adapter's calls share, and the import check that keeps
//! capabilities out of adapters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy};

use crate::admission::Slots;
use crate::bindings;
use crate::error::HostError;
use crate::limits::EngineOptions;
use crate::state::CallState;

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

/// Core instances one adapter component may hold (a Rust `wasm32-wasip2`
/// component has a handful).
const MAX_CORE_INSTANCES: u32 = 16;
/// Linear memories one adapter component may hold.
const MAX_MEMORIES: u32 = 2;
/// Tables one adapter component may hold.
const MAX_TABLES: u32 = 8;

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
    pub(crate) slots: Slots,
    _ticker: Ticker,
}

impl AdapterEngine {
    /// Builds the engine and starts its epoch ticker. Refuses settings
    /// that would let calls exhaust the pool.
    pub fn new(options: EngineOptions) -> Result<AdapterEngine, HostError> {
        let host_err = |e: wasmtime::Error| HostError::Host { adapter: "-".into(), reason: format!("{e:#}") };
        if options.max_running_calls == 0 || options.max_running_calls >= options.max_concurrent_instances {
            return Err(HostError::Host {
                adapter: "-".into(),
                reason: format!(
                    "max_running_calls ({}) must be at least 1 and below the pool's {} instances",
                    options.max_running_calls, options.max_concurrent_instances
                ),
            });
        }
        let mut pool = PoolingAllocationConfig::new();
        // Totals cover every instance at its per-component maximum, so calls
        // within `max_running_calls` can never exhaust the pool; a component
        // over a maximum fails at load, naming it.
        let instances = options.max_concurrent_instances;
        pool.total_component_instances(instances)
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .total_core_instances(instances * MAX_CORE_INSTANCES)
            .max_memories_per_component(MAX_MEMORIES)
            .total_memories(instances * MAX_MEMORIES)
            .max_tables_per_component(MAX_TABLES)
            .total_tables(instances * MAX_TABLES)
            .max_memory_size(options.max_memory_bytes)
            // Reset what a call dirtied with memset, found by the kernel's
            // PAGEMAP_SCAN where it has one, rather than unmapping it: the
            // next call into the slot takes no page faults.
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .max_wasm_stack(options.max_wasm_stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if options.perf_map {
            config.profiler(ProfilingStrategy::PerfMap);
        }
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
        let slots = Slots::new(options.max_running_calls);
        Ok(AdapterEngine { engine, linker, options, slots, _ticker: Ticker(stop) })
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Calls of all adapters running now.
    pub fn running_calls(&self) -> u32 {
        self.slots.in_use()
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
