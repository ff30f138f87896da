//! Benchmark: obligations for 100,000 synthetic cases on one core.
//!
//! Run with `cargo bench -p bro-rules --bench obligations` (`-- --quick` for
//! 10,000 cases). Histories are generated deterministically (a fixed-seed
//! generator), 8–40 events each, covering every rule: placements, offers and
//! answers, choices and approvals, § 76 decisions, consents, plans (§ 77 and
//! § 78), omissions, revisions, homecoming periods and suspensions.
#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::hint::black_box;
use std::time::Instant;

use bro_domain::{
    ConsentScope, Date, DecisionOutcome, Event, EventKind, PartyId, PlacementBasis, PlanKind, RecommendationReason,
    SupportMeasure, SupportPersonKind,
};

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn synthetic_case(rng: &mut Rng, holders: &[PartyId]) -> Vec<Event> {
    let start = Date::from_ymd_opt(2024, 1, 1).expect("valid") + chrono::Days::new(rng.below(900));
    let mut day = start;
    let mut events = Vec::new();
    let mut push = |day: Date, kind: EventKind| events.push(Event { occurred_on: day, kind, source: None });
    let basis = [PlacementBasis::Bl46, PlacementBasis::Bl47, PlacementBasis::Lbu14][rng.below(3) as usize];
    if basis == PlacementBasis::Bl47 {
        push(
            day,
            EventKind::PlacementRecommended {
                basis,
                siblings_under_18_in_household: rng.chance(50),
                reason: RecommendationReason::Neglect,
            },
        );
        day = day + chrono::Days::new(rng.below(20));
    }
    push(day, EventKind::PlacementStarted { basis, site_kind: None });
    for h in holders {
        if rng.chance(90) {
            push(day, EventKind::SupportPersonOffered { custody_holder: h.clone() });
        }
        if rng.chance(60) {
            push(day, EventKind::SupportPersonAccepted { custody_holder: h.clone() });
            push(
                day,
                EventKind::SupportPersonChosen {
                    custody_holder: h.clone(),
                    kind: SupportPersonKind::Professional,
                    person: None,
                },
            );
            if rng.chance(80) {
                push(day, EventKind::SupportPersonApproved { custody_holder: h.clone() });
                push(day, EventKind::SupportStarted { custody_holder: h.clone(), measure: SupportMeasure::Bl75 });
            }
        } else {
            push(day, EventKind::SupportPersonDeclined { custody_holder: h.clone() });
        }
    }
    day = day + chrono::Days::new(rng.below(30));
    let h = &holders[0];
    if rng.chance(70) {
        push(
            day,
            EventKind::ConsentGiven {
                custody_holder: h.clone(),
                scope: ConsentScope::parse("s", "bl32").expect("scope"),
            },
        );
    }
    push(
        day,
        EventKind::SupportDecided {
            custody_holder: h.clone(),
            measure: SupportMeasure::Bl32_1_5,
            outcome: if rng.chance(80) { DecisionOutcome::Granted } else { DecisionOutcome::Refused },
        },
    );
    day = day + chrono::Days::new(rng.below(40));
    if rng.chance(25) {
        push(
            day,
            EventKind::ConsentGiven {
                custody_holder: h.clone(),
                scope: ConsentScope::parse("s", "bl78").expect("scope"),
            },
        );
        push(
            day,
            EventKind::PlanPrepared {
                plan_id: "p1".into(),
                kind: PlanKind::Bl78,
                covers: vec![h.clone()],
                goals: vec![],
            },
        );
    } else if rng.chance(90) {
        push(
            day,
            EventKind::PlanPrepared { plan_id: "p1".into(), kind: PlanKind::Bl77, covers: vec![], goals: vec![] },
        );
    } else {
        push(day, EventKind::PlanOmitted { reasons: "Forældrene kan ikke modtage hjælp nu".into() });
    }
    for _ in 0..rng.below(6) {
        day = day + chrono::Days::new(30 + rng.below(200));
        let kind = match rng.below(4) {
            0 => EventKind::RevisionOffered,
            1 => EventKind::RevisionMade,
            2 => EventKind::RevisionAssessed,
            _ => EventKind::ContactSuspended,
        };
        let suspended = matches!(kind, EventKind::ContactSuspended);
        push(day, kind);
        if suspended {
            day = day + chrono::Days::new(rng.below(70));
            push(day, EventKind::ContactResumed);
        }
    }
    if rng.chance(20) {
        day = day + chrono::Days::new(rng.below(100));
        push(day, EventKind::HomecomingPeriodStarted);
        if rng.chance(50) {
            push(day + chrono::Days::new(rng.below(200)), EventKind::HomecomingPeriodEnded);
        }
    }
    events.sort_by_key(|e| e.occurred_on);
    events
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = if quick { 10_000 } else { 100_000 };
    let one = vec![PartyId::parse("p", "parent-1").expect("id")];
    let two = vec![PartyId::parse("p", "parent-1").expect("id"), PartyId::parse("p", "parent-2").expect("id")];
    let mut rng = Rng(0x5EED_B10B);
    let cases: Vec<(bool, Vec<Event>)> = (0..count)
        .map(|i| {
            let two_parents = i % 3 != 0;
            (two_parents, synthetic_case(&mut rng, if two_parents { &two } else { &one }))
        })
        .collect();
    let events: usize = cases.iter().map(|(_, e)| e.len()).sum();
    let today = Date::from_ymd_opt(2026, 11, 22).expect("valid");

    // Warm-up on a slice, then the measured pass over every case.
    for (two_parents, history) in cases.iter().take(1000) {
        black_box(bro_rules::evaluate(if *two_parents { &two } else { &one }, history, today));
    }
    let started = Instant::now();
    let mut obligations = 0usize;
    for (two_parents, history) in &cases {
        let evaluation = bro_rules::evaluate(if *two_parents { &two } else { &one }, history, today);
        obligations += black_box(evaluation).obligations.len();
    }
    let elapsed = started.elapsed();
    println!("| cases | events | obligations | seconds | cases/s (one core) | µs/case |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {count} | {events} | {obligations} | {:.2} | {:.0} | {:.1} |",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
}
