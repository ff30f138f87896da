//! An adapter's health: counters, latencies, quarantine of the adapter for
//! failures of its own, and throttling of one party for failures of its
//! messages.
//!
//! The rules, in terms of [`Blame`]:
//! - a translation that completes (the adapter's own refusal included) ends
//!   the adapter's failure streak and the party's breach streak;
//! - a failure of the message ([`Blame::Input`]) counts against the party
//!   that sent or receives it: after `throttle_after` in a row that party's
//!   calls rest, with doubling backoff, while other parties are served. A
//!   crash on the message also joins the adapter's streak, but the streak
//!   quarantines the adapter only once crashes come from two parties or
//!   more — one sender's poison cannot take the adapter from the others;
//! - a failure of the adapter ([`Blame::Adapter`]: it crashed and fails its
//!   known-good checks) joins the streak and quarantines on its own;
//! - a streak of `quarantine_after` that qualifies quarantines the adapter
//!   for `initial_backoff`, doubling each time the trial call after a
//!   quarantine fails, up to `max_backoff`;
//! - failures of the moment ([`Blame::Moment`]) are counted and blame nobody.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Blame, HostError};
use crate::limits::EngineOptions;

/// Whether an adapter takes calls.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AdapterState {
    /// Calls are admitted.
    #[default]
    Serving,
    /// Calls are refused until `retry_in` has passed.
    Quarantined {
        /// Consecutive failures that led here.
        failures: u32,
        /// Time left.
        retry_in: Duration,
    },
}

/// A party whose calls rest because its messages kept breaking the limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottledParty {
    /// The sender or receiver.
    pub party: String,
    /// Its consecutive breaches.
    pub breaches: u32,
    /// Time left.
    pub retry_in: Duration,
}

/// Per-adapter counters, state and latency percentiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdapterStats {
    /// Calls that ran (refused ones not counted).
    pub calls: u64,
    /// Calls answered with the adapter's own refusal (bad input, unsupported type).
    pub adapter_errors: u64,
    /// Calls that trapped, ran out of a limit or were stopped.
    pub failures: u64,
    /// Of those, the message's fault (a limit broken, a crash on this message).
    pub input_failures: u64,
    /// Of those, crashes (the message's or the adapter's).
    pub traps: u64,
    /// Of those, crashes where the adapter failed its known-good checks too.
    pub broken: u64,
    /// Of those, calls that used up their fuel.
    pub out_of_fuel: u64,
    /// Of those, calls that hit the memory limit.
    pub memory_limits: u64,
    /// Of those, calls stopped by the wall-clock backstop.
    pub timeouts: u64,
    /// Calls refused while the adapter was quarantined.
    pub quarantined_refusals: u64,
    /// Calls refused because no slot came free in time.
    pub busy_refusals: u64,
    /// Calls refused because their party was throttled.
    pub throttled_refusals: u64,
    /// Calls running now.
    pub in_flight: u32,
    /// Consecutive failures in the current streak.
    pub consecutive_failures: u32,
    /// Whether it takes calls.
    pub state: AdapterState,
    /// The last failure, masked.
    pub last_failure: Option<String>,
    /// Parties resting now.
    pub throttled: Vec<ThrottledParty>,
    /// Median latency of recent calls.
    pub p50: Duration,
    /// 99th percentile latency of recent calls.
    pub p99: Duration,
}

/// Recent latencies kept for percentiles.
const LATENCY_WINDOW: usize = 1024;
/// Parties tracked per adapter; beyond it, parties in good standing are forgotten first.
const MAX_PARTIES: usize = 4096;
/// Distinct parties whose crashes make a streak the adapter's fault.
const PARTIES_FOR_BLAME: usize = 2;

#[derive(Default)]
struct Party {
    breaches: u32,
    backoff: Duration,
    throttled_until: Option<Instant>,
}

#[derive(Default)]
struct State {
    stats: AdapterStats,
    latencies: Vec<Duration>,
    next_latency: usize,
    streak: u32,
    streak_parties: BTreeSet<String>,
    streak_broken: bool,
    quarantined_until: Option<Instant>,
    backoff: Duration,
    parties: HashMap<String, Party>,
}

/// The health of one adapter, shared by its calls.
#[derive(Default)]
pub(crate) struct Health {
    state: Mutex<State>,
}

/// How a call that ran ended, for [`Health::record`].
pub(crate) enum Outcome<'a> {
    /// It translated, or refused the message itself.
    Completed {
        /// The adapter refused the message.
        refused: bool,
    },
    /// It failed.
    Failed(&'a HostError),
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent; a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a call while the adapter is quarantined or `party` is
    /// throttled. After a quarantine the next call is let through as a trial.
    pub(crate) fn admit(&self, adapter: &str, party: &str, now: Instant) -> Result<(), HostError> {
        let mut s = self.lock();
        if let Some(until) = s.quarantined_until {
            if now < until {
                s.stats.quarantined_refusals += 1;
                return Err(HostError::Quarantined {
                    adapter: adapter.to_owned(),
                    failures: s.streak,
                    retry_in: until - now,
                });
            }
            // Half-open: the streak stays, so one more failure re-quarantines at once.
            s.quarantined_until = None;
        }
        let State { parties, stats, .. } = &mut *s;
        if let Some(p) = parties.get_mut(party)
            && let Some(until) = p.throttled_until
        {
            if now < until {
                stats.throttled_refusals += 1;
                return Err(HostError::Throttled {
                    adapter: adapter.to_owned(),
                    party: party.to_owned(),
                    breaches: p.breaches,
                    retry_in: until - now,
                });
            }
            p.throttled_until = None;
        }
        Ok(())
    }

    /// Counts a call refused before it ran (no free slot).
    pub(crate) fn refused_busy(&self) {
        self.lock().stats.busy_refusals += 1;
    }

    /// Counts a call's start.
    pub(crate) fn started(&self) {
        self.lock().stats.in_flight += 1;
    }

    /// Records how a call ended: `ran` is its run time if it was started
    /// (an input refused before running is not a call, but is a breach).
    pub(crate) fn record(
        &self,
        adapter: &str,
        party: &str,
        ran: Option<Duration>,
        outcome: Outcome<'_>,
        options: &EngineOptions,
        now: Instant,
    ) {
        let mut s = self.lock();
        if let Some(elapsed) = ran {
            s.stats.in_flight = s.stats.in_flight.saturating_sub(1);
            s.stats.calls += 1;
            if s.latencies.len() < LATENCY_WINDOW {
                s.latencies.push(elapsed);
            } else {
                let at = s.next_latency;
                s.latencies[at] = elapsed;
            }
            s.next_latency = (s.next_latency + 1) % LATENCY_WINDOW;
        }
        let error = match outcome {
            Outcome::Completed { refused } => {
                s.stats.adapter_errors += u64::from(refused);
                s.streak = 0;
                s.streak_parties.clear();
                s.streak_broken = false;
                s.backoff = Duration::ZERO;
                if let Some(p) = s.parties.get_mut(party) {
                    *p = Party::default();
                }
                return;
            }
            Outcome::Failed(error) => error,
        };
        s.stats.failures += 1;
        s.stats.last_failure = Some(error.to_string());
        let crashed = matches!(error, HostError::Trap { .. } | HostError::Broken { .. });
        s.stats.traps += u64::from(crashed);
        s.stats.broken += u64::from(matches!(error, HostError::Broken { .. }));
        s.stats.out_of_fuel += u64::from(matches!(error, HostError::OutOfFuel { .. }));
        s.stats.memory_limits += u64::from(matches!(error, HostError::MemoryLimit { .. }));
        s.stats.timeouts += u64::from(matches!(error, HostError::Timeout { .. }));
        let blame = error.blame();
        if blame == Blame::Input {
            s.stats.input_failures += 1;
            self.breach(&mut s, adapter, party, options, now);
        }
        if crashed || blame == Blame::Adapter {
            s.streak += 1;
            if s.streak_parties.len() < PARTIES_FOR_BLAME {
                s.streak_parties.insert(party.to_owned());
            }
            s.streak_broken |= blame == Blame::Adapter;
            let adapters_fault = s.streak_broken || s.streak_parties.len() >= PARTIES_FOR_BLAME;
            if adapters_fault && s.streak >= options.quarantine_after {
                s.backoff = next_backoff(s.backoff, options);
                s.quarantined_until = Some(now + s.backoff);
                tracing::warn!(adapter, failures = s.streak, backoff = ?s.backoff, "adapter quarantined");
            }
        }
    }

    /// Counts a breach against `party`; throttles it after `throttle_after` in a row.
    fn breach(&self, s: &mut State, adapter: &str, party: &str, options: &EngineOptions, now: Instant) {
        if !s.parties.contains_key(party) && s.parties.len() >= MAX_PARTIES {
            s.parties.retain(|_, p| p.throttled_until.is_some());
            if s.parties.len() >= MAX_PARTIES {
                return;
            }
        }
        let p = s.parties.entry(party.to_owned()).or_default();
        p.breaches += 1;
        if p.breaches >= options.throttle_after {
            p.backoff = next_backoff(p.backoff, options);
            p.throttled_until = Some(now + p.backoff);
            tracing::warn!(adapter, party, breaches = p.breaches, backoff = ?p.backoff, "party throttled");
        }
    }

    /// Counters, state and percentiles (computed here, not on every call).
    pub(crate) fn stats(&self, now: Instant) -> AdapterStats {
        let s = self.lock();
        let mut stats = s.stats.clone();
        stats.consecutive_failures = s.streak;
        stats.state = match s.quarantined_until {
            Some(until) if now < until => AdapterState::Quarantined { failures: s.streak, retry_in: until - now },
            _ => AdapterState::Serving,
        };
        stats.throttled = s
            .parties
            .iter()
            .filter_map(|(party, p)| {
                let until = p.throttled_until.filter(|until| now < *until)?;
                Some(ThrottledParty { party: party.clone(), breaches: p.breaches, retry_in: until - now })
            })
            .collect();
        stats.throttled.sort_by(|a, b| a.party.cmp(&b.party));
        let mut sorted = s.latencies.clone();
        drop(s);
        sorted.sort_unstable();
        if let Some(last) = sorted.len().checked_sub(1) {
            stats.p50 = sorted[sorted.len() / 2];
            stats.p99 = sorted[(sorted.len() * 99 / 100).min(last)];
        }
        stats
    }
}

fn next_backoff(current: Duration, options: &EngineOptions) -> Duration {
    if current.is_zero() { options.initial_backoff } else { (current * 2).min(options.max_backoff) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> EngineOptions {
        EngineOptions {
            quarantine_after: 3,
            throttle_after: 2,
            initial_backoff: Duration::from_secs(1),
            ..EngineOptions::default()
        }
    }

    fn trap() -> HostError {
        HostError::Trap { adapter: "a".into(), op: "to-canonical", detail: "unreachable".into() }
    }

    fn fuel() -> HostError {
        HostError::OutOfFuel { adapter: "a".into(), op: "to-canonical", fuel: 10 }
    }

    fn fail(h: &Health, party: &str, e: &HostError, now: Instant) {
        h.started();
        h.record("a", party, Some(Duration::from_micros(5)), Outcome::Failed(e), &options(), now);
    }

    #[test]
    fn one_partys_crashes_throttle_that_party_and_never_quarantine_the_adapter() {
        let (h, now) = (Health::default(), Instant::now());
        while h.admit("a", "bomber", now).is_ok() {
            fail(&h, "bomber", &trap(), now);
        }
        assert_eq!(h.stats(now).state, AdapterState::Serving);
        assert!(matches!(h.admit("a", "bomber", now), Err(HostError::Throttled { breaches: 2, .. })));
        assert!(h.admit("a", "neighbour", now).is_ok(), "other parties are served");
        assert_eq!(h.stats(now).throttled.len(), 1);
        assert!(h.admit("a", "bomber", now + Duration::from_secs(2)).is_ok(), "the throttle ends");
    }

    #[test]
    fn crashes_across_parties_or_on_known_good_input_quarantine_the_adapter() {
        let (h, now) = (Health::default(), Instant::now());
        fail(&h, "x", &trap(), now);
        fail(&h, "y", &trap(), now);
        assert!(h.admit("a", "z", now).is_ok(), "two crashes are not yet three");
        fail(&h, "x", &trap(), now);
        assert!(matches!(h.admit("a", "z", now), Err(HostError::Quarantined { failures: 3, .. })));

        let (h, now) = (Health::default(), Instant::now());
        let broken = HostError::Broken { adapter: "a".into(), op: "to-canonical", detail: "describe traps".into() };
        for _ in 0..3 {
            fail(&h, "x", &broken, now);
        }
        assert!(matches!(h.stats(now).state, AdapterState::Quarantined { failures: 3, .. }));
        // The trial after the backoff fails: quarantined again, for twice as long.
        let later = now + Duration::from_millis(1100);
        assert!(h.admit("a", "x", later).is_ok());
        fail(&h, "x", &broken, later);
        let AdapterState::Quarantined { retry_in, .. } = h.stats(later).state else { panic!("quarantined") };
        assert_eq!(retry_in, Duration::from_secs(2));
    }

    #[test]
    fn limits_broken_by_messages_never_quarantine_and_a_success_clears_the_streaks() {
        let (h, now) = (Health::default(), Instant::now());
        for party in ["x", "y", "z", "w"] {
            fail(&h, party, &fuel(), now);
        }
        assert_eq!(h.stats(now).state, AdapterState::Serving);
        fail(&h, "x", &trap(), now);
        fail(&h, "y", &trap(), now);
        h.started();
        h.record("a", "x", Some(Duration::ZERO), Outcome::Completed { refused: true }, &options(), now);
        fail(&h, "z", &trap(), now);
        let stats = h.stats(now);
        assert_eq!((stats.consecutive_failures, stats.state), (1, AdapterState::Serving));
        assert_eq!((stats.failures, stats.input_failures, stats.out_of_fuel, stats.adapter_errors), (7, 7, 4, 1));
        assert_eq!(stats.in_flight, 0);
    }
}
