//! Why loading or calling an adapter failed, and whose fault it was.
//!
//! Every failure is blamed on exactly one party ([`Blame`]): the message
//! (its sender gets a permanent refusal naming the limit), the adapter (it is
//! quarantined if it keeps failing), or the moment (the caller tries again
//! later; nothing is anyone's fault yet).

use std::time::Duration;

/// Whose fault a failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// This message: it broke a limit or crashed the adapter while the
    /// adapter still passes its known-good checks. Final: the caller stores
    /// a rejection (or dead-letters a delivery); the adapter stays in service
    /// for everyone else. A party that keeps sending such messages is
    /// throttled on its own.
    Input,
    /// The adapter: it crashed and also fails its known-good checks, or
    /// cannot be loaded. The message is not at fault; the caller tries again
    /// later, and the adapter's health counts it towards quarantine.
    Adapter,
    /// Nobody yet: no slot was free in time, the adapter rests in
    /// quarantine, the sender is throttled, the wall-clock backstop fired on
    /// a loaded machine, or the host failed. The caller tries again later.
    Moment,
}

/// Which call slots were all busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusyScope {
    /// The adapter's own slots (`max_concurrent_calls`).
    Adapter,
    /// The engine's slots shared by every adapter (`max_running_calls`).
    Engine,
}

impl std::fmt::Display for BusyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BusyScope::Adapter => "its own",
            BusyScope::Engine => "the engine's shared",
        })
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
    /// The call ran past the wall-clock backstop (fuel is the CPU limit; this
    /// fires only when the machine is too loaded to finish in time).
    #[error("adapter {adapter}: {op} ran past its wall-clock backstop of {deadline:?} and was stopped")]
    Timeout {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The backstop.
        deadline: Duration,
    },
    /// The call used up its fuel on this message.
    #[error("adapter {adapter}: {op} used up its fuel budget of {} units on this message and was stopped", grouped(*fuel))]
    OutOfFuel {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The budget.
        fuel: u64,
    },
    /// The call tried to grow memory past its cap on this message.
    #[error("adapter {adapter}: {op} needed more than its memory limit of {} for this message and was stopped", bytes(*limit))]
    MemoryLimit {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The wasm stack overflowed on this message (runaway recursion, or
    /// nesting deeper than the adapter can follow).
    #[error("adapter {adapter}: {op} overflowed its stack limit of {} on this message and was stopped", bytes(*limit))]
    StackOverflow {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The adapter crashed on this message (a panic, `unreachable`, a bad
    /// memory access) but passes its known-good checks: the message's fault.
    #[error("adapter {adapter}: {op} crashed on this message: {detail}")]
    Trap {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The trap, and the adapter's last log line if it explains it (masked).
        detail: String,
    },
    /// The adapter crashed and fails its known-good checks too (`describe`,
    /// its probe message): the adapter's fault, not the message's.
    #[error("adapter {adapter}: {op} crashed, and the adapter fails its known-good checks too: {detail}")]
    Broken {
        /// Adapter.
        adapter: String,
        /// Operation.
        op: &'static str,
        /// The trap and the failed check (masked).
        detail: String,
    },
    /// The input is bigger than the adapter may be given.
    #[error("adapter {adapter}: the input is {}; the limit is {}", bytes(*size), bytes(*limit))]
    InputTooLarge {
        /// Adapter.
        adapter: String,
        /// Size.
        size: usize,
        /// Cap.
        limit: usize,
    },
    /// The adapter produced more than it may return for this message.
    #[error("adapter {adapter}: {op} returned {}; the limit is {}", bytes(*size), bytes(*limit))]
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
    /// Too many recent failures of the adapter's own: it rests until
    /// `retry_in` has passed.
    #[error("adapter {adapter}: quarantined after {failures} consecutive failures; next attempt in {retry_in:?}")]
    Quarantined {
        /// Adapter.
        adapter: String,
        /// Consecutive failures.
        failures: u32,
        /// Time left.
        retry_in: Duration,
    },
    /// No call slot became free within the queue timeout.
    #[error(
        "adapter {adapter}: all {slots} of {scope} call slots stayed busy for {waited:?}; try again in {retry_after:?}"
    )]
    Busy {
        /// Adapter.
        adapter: String,
        /// Whose slots.
        scope: BusyScope,
        /// How many slots there are.
        slots: u32,
        /// How long the call waited.
        waited: Duration,
        /// When to try again.
        retry_after: Duration,
    },
    /// This party's recent messages kept breaking the adapter's limits: its
    /// calls rest until `retry_in` has passed; other parties are served.
    #[error(
        "adapter {adapter}: calls for {party:?} are throttled after {breaches} messages in a row that broke its limits; next attempt in {retry_in:?}"
    )]
    Throttled {
        /// Adapter.
        adapter: String,
        /// The sender or receiver whose messages broke the limits.
        party: String,
        /// Consecutive breaches.
        breaches: u32,
        /// Time left.
        retry_in: Duration,
    },
    /// The package failed verification (signature, hash, manifest, version).
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

/// A count with `_` between groups of three digits (`2_000_000_000`):
/// readable, and not taken for a CPR number by the masking of digit runs.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// A size in bytes, KiB or MiB (`64 MiB`, `1.5 MiB`, `300 bytes`).
fn bytes(n: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    match n {
        n if n >= MIB && n.is_multiple_of(MIB) => format!("{} MiB", n / MIB),
        n if n >= MIB => format!("{:.1} MiB ({} bytes)", n as f64 / MIB as f64, grouped(n as u64)),
        n if n >= KIB && n.is_multiple_of(KIB) => format!("{} KiB", n / KIB),
        n => format!("{} bytes", grouped(n as u64)),
    }
}

/// When to try again after a failure that is nobody's fault yet, if the
/// failure does not say.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

impl HostError {
    /// Whose fault the failure is.
    pub fn blame(&self) -> Blame {
        match self {
            HostError::OutOfFuel { .. }
            | HostError::MemoryLimit { .. }
            | HostError::StackOverflow { .. }
            | HostError::Trap { .. }
            | HostError::InputTooLarge { .. }
            | HostError::OutputTooLarge { .. } => Blame::Input,
            HostError::Broken { .. }
            | HostError::ForbiddenImport { .. }
            | HostError::InvalidComponent { .. }
            | HostError::Package { .. } => Blame::Adapter,
            HostError::Timeout { .. }
            | HostError::Quarantined { .. }
            | HostError::Busy { .. }
            | HostError::Throttled { .. }
            | HostError::NotLoaded(_)
            | HostError::Host { .. } => Blame::Moment,
        }
    }

    /// Whether the caller should try again later rather than give up on the
    /// message: true unless the message itself is at fault. Ingest answers
    /// `UNAVAILABLE` with [`HostError::retry_after`] and stores nothing; the
    /// delivery worker retries with backoff. A failure of the message is
    /// final: ingest stores a rejection naming the limit; a delivery is
    /// dead-lettered.
    pub fn is_transient(&self) -> bool {
        self.blame() != Blame::Input
    }

    /// When a transient failure may be tried again (`None` for a final one).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            _ if !self.is_transient() => None,
            HostError::Quarantined { retry_in, .. } | HostError::Throttled { retry_in, .. } => Some(*retry_in),
            HostError::Busy { retry_after, .. } => Some(*retry_after),
            _ => Some(DEFAULT_RETRY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_named_in_numbers_the_masking_of_digit_runs_leaves_alone() {
        assert_eq!(grouped(2_000_000_000), "2_000_000_000");
        assert_eq!(grouped(999), "999");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3_984_588), "3.8 MiB (3_984_588 bytes)");
        assert_eq!(bytes(512 << 10), "512 KiB");
        let e = HostError::OutOfFuel { adapter: "fhir".into(), op: "to-canonical", fuel: 300_000_000 };
        assert_eq!(bro_domain::mask_digit_runs(&e.to_string()), e.to_string());
    }
}
