//! Benchmark: the § 78 holistic plan on one case with many sector items —
//! the coordination checks alone, the whole plan assembled and checked, and
//! one sector's consented view cut from it.
//!
//! Run with `cargo bench -p bro-rules --bench coordination`. A synthetic case
//! with two parents, 500 or 5,000 appointments of four sectors over a year
//! (some overlapping), sector plans with tagged activities, a holistic plan
//! covering both parents with a contact and a homecoming goal, and their
//! consents; each step runs repeatedly and the median is reported, with the
//! ratio between the two sizes (linear would be 10×).
#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bro_domain::{
    Appointment, Case, CaseId, Consent, ConsentScope, ContactPerson, Goal, GoalAim, Organisation, PartyId, Plan,
    PlanKind, Sector, SectorActivity, SectorPlan,
};
use bro_rules::coordination::{CoordinationPolicy, check};
use bro_rules::holistic;

const SECTORS: [Sector; 4] = [Sector::Jobcentre, Sector::Psychiatry, Sector::AddictionTreatment, Sector::Health];

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).expect("id")
}

fn case_with(appointments: usize) -> Case {
    let on = chrono::NaiveDate::from_ymd_opt(2026, 1, 10).expect("date");
    let holders = [party("parent-1"), party("parent-2")];
    let mut case = Case::opened_for(CaseId::parse("c", "bench").expect("id"), &holders, "12345678", on).expect("opens");
    let start = on.and_hms_opt(8, 0, 0).expect("time").and_utc();
    case.appointments = (0..appointments)
        .map(|i| {
            let sector = SECTORS[i % SECTORS.len()];
            // Spread over a year; every 7th starts half an hour into the same parent's previous one.
            let spacing = 365 * 24 * 60 / appointments as i64;
            let slot = (i as i64) * spacing;
            let offset = if i % 7 == 0 && i > 1 { slot - 2 * spacing + 30 } else { slot };
            Appointment {
                appointment_id: format!("a-{i}"),
                custody_holder: party(if i % 2 == 0 { "parent-1" } else { "parent-2" }),
                sector,
                organisation: Organisation { display_name: format!("{sector:?}"), ..Default::default() },
                professional: Some(ContactPerson { display_name: format!("Person {}", i % 13), ..Default::default() }),
                title: "Samtale".into(),
                start_time: start + chrono::Duration::minutes(offset),
                end_time: Some(start + chrono::Duration::minutes(offset + 60)),
                location: String::new(),
                cancelled: i % 50 == 0,
                cancellation_reason: String::new(),
            }
        })
        .collect();
    case.sector_plans = SECTORS
        .iter()
        .enumerate()
        .map(|(n, sector)| SectorPlan {
            plan_id: format!("plan-{n}"),
            custody_holder: party("parent-1"),
            sector: *sector,
            organisation: Organisation::default(),
            contact_person: None,
            system_of_record: String::new(),
            start_date: None,
            end_date: None,
            goals: vec![],
            activities: (0..25)
                .map(|a| SectorActivity {
                    activity_id: format!("act-{a}"),
                    minutes_per_week: if a == 0 { 37 * 60 } else { 120 },
                    tags: if a == 1 { vec!["inpatient".into()] } else { vec![] },
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    case.plans = vec![Plan {
        plan_id: "bl78-1".into(),
        kind: PlanKind::Bl78,
        prepared_on: on,
        covers: vec![party("parent-1"), party("parent-2")],
        goals: vec![
            Goal { goal_id: "samvaer".into(), aim: Some(GoalAim::Contact), ..Default::default() },
            Goal { goal_id: "hjem".into(), aim: Some(GoalAim::Homecoming), ..Default::default() },
        ],
        coordinator: None,
    }];
    for holder in ["parent-1", "parent-2"] {
        for scope in ["bl78", "share:jobcenter"] {
            case.consents.push(Consent {
                custody_holder: party(holder),
                scope: ConsentScope::parse("s", scope).expect("scope"),
                given_on: on,
                withdrawn_on: None,
            });
        }
    }
    case
}

fn median(rounds: usize, mut step: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut found = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        found = step();
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], found)
}

fn on_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 31 };
    let evaluation = bro_rules::evaluate(&[party("parent-1"), party("parent-2")], &[], on_day());
    let policy = CoordinationPolicy::default();
    let shared = [party("parent-1"), party("parent-2")];
    println!("| Appointments | conflicts | checks alone | plan assembled and checked | + the jobcentre's view |");
    println!("|---:|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for n in [500, 5_000] {
        let case = case_with(n);
        let (checks, found) = median(rounds, || black_box(check(black_box(&case), &evaluation, &policy, false)).len());
        let (assembled, _) = median(rounds, || {
            let plan = holistic::assemble(black_box(&case), "bl78-1", &policy, Some(&evaluation)).expect("plan");
            black_box(plan.conflicts.len())
        });
        let (viewed, _) = median(rounds, || {
            let plan = holistic::assemble(black_box(&case), "bl78-1", &policy, None).expect("plan");
            let view = plan.sector_view(Sector::Jobcentre, "share:jobcenter", &shared).expect("in force");
            black_box(view.busy_periods.len())
        });
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("| {n} | {found} | {:.2} ms | {:.2} ms | {:.2} ms |", ms(checks), ms(assembled), ms(viewed));
        medians.push((checks, assembled));
    }
    println!();
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "5,000 / 500 appointments: checks {:.1}×, assembled plan {:.1}× the time (linear: 10×)",
        ratio(medians[0].0, medians[1].0),
        ratio(medians[0].1, medians[1].1)
    );
    println!(
        "assembling costs {:.2}× the checks alone at 5,000 appointments",
        medians[1].1.as_secs_f64() / medians[1].0.as_secs_f64()
    );
}
