//! The day an evaluation may next change, checked against evaluating every
//! day: random histories, random days, and no day before the one named
//! differs from the evaluation day.

use bro_domain::{
    DecisionOutcome, Event, EventKind, PlacementBasis, PlacementEndReason, RecommendationReason, SupportMeasure,
};

use crate::testkit::*;
use crate::{Evaluation, add_days};

/// SplitMix64: a small, seeded generator, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One event of a kind the rules react to, for one of two custody holders.
fn random_kind(rng: &mut Rng) -> EventKind {
    let holder = rng.pick(&["parent-1", "parent-2"]);
    let measure = rng.pick(&[SupportMeasure::Bl32_1_2, SupportMeasure::Bl35, SupportMeasure::Bl75]);
    let basis = rng.pick(&[PlacementBasis::Bl46, PlacementBasis::Bl47, PlacementBasis::Lbu14]);
    match rng.below(22) {
        0 | 1 => placed(basis),
        2 => EventKind::PlacementRecommended {
            basis,
            siblings_under_18_in_household: rng.below(2) == 0,
            reason: rng.pick(&[RecommendationReason::Neglect, RecommendationReason::ChildConditions]),
        },
        3 => {
            EventKind::PlacementEnded { reason: rng.pick(&[PlacementEndReason::Homecoming, PlacementEndReason::Other]) }
        }
        4 => offered(holder),
        5 => accepted(holder),
        6 => declined(holder),
        7 => chosen(holder),
        8 => approved(holder),
        9 => EventKind::SupportDecided {
            custody_holder: party(holder),
            measure,
            outcome: rng.pick(&[DecisionOutcome::Granted, DecisionOutcome::Refused]),
        },
        10 => started(holder, measure),
        11 => consent(holder, rng.pick(&["bl32", "bl78"])),
        12 => withdrawn(holder, rng.pick(&["bl32", "bl78"])),
        13 => plan77(),
        14 => plan78(&[holder]),
        15 => omitted(rng.pick(&["", "the parents do not want a plan"])),
        16 => EventKind::RevisionOffered,
        17 => EventKind::RevisionMade,
        18 => EventKind::HomecomingPeriodStarted,
        19 => EventKind::HomecomingPeriodEnded,
        20 => EventKind::CustodyHolderMoved { custody_holder: party(holder), to_municipality: "29189846".into() },
        _ => EventKind::CaseHandoverSent { to_municipality: "29189846".into() },
    }
}

/// A history of up to 14 events over three years, in application order.
fn random_history(rng: &mut Rng) -> Vec<Event> {
    let start = day("2025-01-01");
    let mut dates: Vec<_> = (0..1 + rng.below(14)).map(|_| add_days(start, rng.below(3 * 365) as u32)).collect();
    dates.sort();
    dates.into_iter().map(|occurred_on| Event { occurred_on, kind: random_kind(rng), source: None }).collect()
}

/// What a reader of an evaluation sees, without the day it was made.
fn content(evaluation: &Evaluation) -> impl PartialEq + std::fmt::Debug + '_ {
    (evaluation.ruleset, &evaluation.obligations, &evaluation.advisories)
}

#[test]
fn an_evaluation_holds_on_every_day_until_its_next_change() {
    let holders = [party("parent-1"), party("parent-2")];
    let mut changes_named = 0;
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let events = random_history(&mut rng);
        for _ in 0..6 {
            let today = add_days(day("2024-12-01"), rng.below(4 * 365) as u32);
            let evaluation = crate::evaluate(&holders, &events, today);
            let until = evaluation.next_change.unwrap_or(add_days(today, 800));
            changes_named += usize::from(evaluation.next_change.is_some());
            let mut later = add_days(today, 1);
            while later < until {
                let again = crate::evaluate(&holders, &events, later);
                assert_eq!(
                    content(&again),
                    content(&evaluation),
                    "seed {seed}: evaluated on {today}, next change {:?}, but {later} differs",
                    evaluation.next_change
                );
                assert_eq!(again.next_change, evaluation.next_change, "seed {seed}: on {later}");
                later = add_days(later, 1);
            }
        }
    }
    assert!(changes_named > 100, "the histories should name changes ahead: {changes_named}");
}

#[test]
fn the_next_change_is_the_first_of_a_later_event_a_due_date_passing_or_none() {
    let history =
        History::default().on("2026-01-05", placed(PlacementBasis::Bl46)).on("2026-03-01", offered("parent-1"));
    let evaluation = history.evaluate(&["parent-1"], "2026-01-10");
    // The offer was due with the placement: overdue already, so only the
    // offer dated 1 March changes anything.
    assert_eq!(only(&evaluation, crate::RuleId::Bl75).status, crate::Status::Overdue);
    assert_eq!(evaluation.next_change, Some(day("2026-03-01")));
    // On the placement day the duty is open, and the next day it is overdue.
    assert_eq!(history.evaluate(&["parent-1"], "2026-01-05").next_change, Some(day("2026-01-06")));
    // Everything in effect and nothing open with a deadline: no change ahead.
    let settled = History::default().on("2026-01-05", EventKind::RevisionAssessed);
    assert_eq!(settled.evaluate(&["parent-1"], "2026-02-01").next_change, None);
}
