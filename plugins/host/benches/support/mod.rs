//! What the adapter benches share: finding a built guest, and timing WASM
//! against native code interleaved round by round.
#![allow(dead_code, clippy::print_stdout)] // Each bench uses what it needs; a benchmark prints.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The component `NAME.wasm` from `BRO_ADAPTER_DIR` (default `target/adapters`).
pub fn guest(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("BRO_ADAPTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/adapters"));
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("run `cargo xtask build-adapters` first")
}

/// Medians of interleaved rounds.
pub struct Compared {
    pub rounds: usize,
    pub wasm: Duration,
    pub native: Duration,
    pub ratio: f64,
}

/// `wasm` and `native` interleaved, `per` calls each per round, for about
/// `budget` (and at least five rounds): the median WASM and native time per
/// call and the median of the rounds' ratios.
pub fn interleaved(budget: Duration, per: u32, mut wasm: impl FnMut(), mut native: impl FnMut()) -> Compared {
    for _ in 0..per {
        wasm();
        native();
    }
    let (mut w, mut n, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < budget || w.len() < 5 {
        let t = Instant::now();
        for _ in 0..per {
            wasm();
        }
        let wt = t.elapsed() / per;
        let t = Instant::now();
        for _ in 0..per {
            native();
        }
        let nt = t.elapsed() / per;
        r.push(wt.as_secs_f64() / nt.as_secs_f64());
        w.push(wt);
        n.push(nt);
    }
    w.sort_unstable();
    n.sort_unstable();
    r.sort_by(f64::total_cmp);
    Compared { rounds: w.len(), wasm: w[w.len() / 2], native: n[n.len() / 2], ratio: r[r.len() / 2] }
}

/// One markdown row of a comparison.
pub fn row(what: &str, c: &Compared) {
    println!("| {what} | {} rounds | {:?} | {:?} | **{:.2}×** |", c.rounds, c.wasm, c.native, c.ratio);
}
