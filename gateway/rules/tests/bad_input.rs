//! No input makes the scenario reader or the engine panic: truncated files,
//! mutated bytes, huge numbers, deep nesting, extreme dates, and random
//! domain event histories in any order.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bro_domain::{
    ConsentScope, Date, DecisionOutcome, Event, EventKind, PartyId, PlacementBasis, PlanKind, SupportMeasure,
};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Parses `text` and, if it is a scenario, evaluates, renders and checks it;
/// fails the test naming the input if anything panics.
fn survive(text: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(scenario) = bro_rules::scenario::parse(text) {
            let evaluation = bro_rules::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
            let _ = bro_rules::render_json(&evaluation);
            let _ = bro_rules::scenario::check(&scenario, &evaluation);
        }
    }));
    if outcome.is_err() {
        let shown: String = text.chars().take(400).collect();
        panic!("panicked on input: {shown}");
    }
}

/// The text of every scenario file, own and shared.
fn corpus() -> Vec<String> {
    let dirs = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scenarios"),
    ];
    let mut texts = Vec::new();
    for dir in dirs {
        for entry in fs::read_dir(dir).expect("scenario directory exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|ext| ext == "json") {
                texts.push(fs::read_to_string(path).expect("readable"));
            }
        }
    }
    texts
}

#[test]
fn every_truncation_of_every_scenario() {
    for text in corpus() {
        for (at, _) in text.char_indices() {
            survive(&text[..at]);
        }
    }
}

#[test]
fn random_mutations_of_scenarios() {
    const PIECES: &[&str] = &[
        "",
        "0",
        "-1",
        "1e999999",
        "123456789012345678901234567890",
        "null",
        "true",
        "[]",
        "{}",
        "\"\"",
        "\"",
        ",",
        ":",
        "}",
        "]",
        "\"9999-12-31\"",
        "\"0000-01-01\"",
        "\"+275760-09-13\"",
        "\"2028-02-29\"",
        "\"parent-1\"",
        "\"parent-2\"",
        "\"bl78\"",
        "\"share:x\"",
        "\"bl32-1-2\"",
        "\"lbu14\"",
        "\"\\u0000\"",
        "é",
    ];
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for text in corpus() {
        let bytes = text.as_bytes();
        for _ in 0..300 {
            let at = random.below(bytes.len());
            let cut = (at + random.below(12)).min(bytes.len());
            let piece = PIECES[random.below(PIECES.len())];
            let mut mutated = bytes[..at].to_vec();
            mutated.extend_from_slice(piece.as_bytes());
            mutated.extend_from_slice(&bytes[cut..]);
            survive(&String::from_utf8_lossy(&mutated));
        }
    }
}

#[test]
fn hostile_documents() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let wide = format!(
        r#"{{"name": "w", "today": "2026-01-01", "custody_holders": ["parent-1"], "events": [{}]}}"#,
        vec![r#"{"at": "2026-01-01", "type": "revision_made"}"#; 5_000].join(",")
    );
    let extreme_dates = r#"{"name": "x", "today": "9999-12-31", "custody_holders": ["parent-1"], "events": [
        {"at": "0000-01-01", "type": "contact_suspended"},
        {"at": "9999-12-31", "type": "contact_resumed"},
        {"at": "9999-12-31", "type": "homecoming_period_started"},
        {"at": "9999-12-31", "type": "revision_made"},
        {"at": "9999-12-31", "type": "placement_started", "basis": "bl46"},
        {"at": "9999-12-31", "type": "plan_prepared", "kind": "bl77"}]}"#;
    let inputs = [
        String::new(),
        " ".into(),
        "\u{feff}{}".into(),
        "null".into(),
        "1e999999".into(),
        "-123456789012345678901234567890".into(),
        r#"{"name": 1e999999, "today": 18446744073709551616, "custody_holders": -1, "events": {}}"#.into(),
        r#"{"name": "x", "today": "2026-01-01", "custody_holders": [1e400], "events": []}"#.into(),
        r#"{"name": "x", "today": "2026-01-01", "custody_holders": ["parent-1"], "events": [[], null, 7]}"#.into(),
        format!(
            r#"{{"name": "{}", "today": "2026-01-01", "custody_holders": ["parent-1"], "events": []}}"#,
            "é".repeat(100_000)
        ),
        deep,
        wide,
        extreme_dates.into(),
    ];
    for input in &inputs {
        survive(input);
    }
}

#[test]
fn random_domain_histories_in_any_order() {
    let holders: Vec<PartyId> =
        ["parent-1", "parent-2"].iter().filter_map(|id| PartyId::parse("id", id).ok()).collect();
    let stranger = PartyId::parse("id", "stranger").expect("valid id");
    let scope = |text: &str| ConsentScope::parse("scope", text).expect("valid scope");
    let dates = [
        Date::MIN,
        Date::MAX,
        Date::from_ymd_opt(2026, 1, 31).expect("date"),
        Date::from_ymd_opt(2028, 2, 29).expect("date"),
    ];
    let mut random = Random(42);
    for _ in 0..2_000 {
        let length = random.below(30);
        let mut events = Vec::with_capacity(length);
        for _ in 0..length {
            let holder = if random.below(10) == 0 { stranger.clone() } else { holders[random.below(2)].clone() };
            let kind = match random.below(16) {
                0 => EventKind::PlacementStarted { basis: PlacementBasis::Bl47, site_kind: None },
                1 => EventKind::SupportPersonOffered { custody_holder: holder },
                2 => EventKind::SupportPersonDeclined { custody_holder: holder },
                3 => EventKind::SupportPersonChosen {
                    custody_holder: holder,
                    kind: bro_domain::SupportPersonKind::Network,
                    person: None,
                },
                4 => EventKind::SupportPersonApproved { custody_holder: holder },
                5 => EventKind::SupportDecided {
                    custody_holder: holder,
                    measure: SupportMeasure::Bl32_1_2,
                    outcome: DecisionOutcome::Granted,
                },
                6 => EventKind::SupportStarted { custody_holder: holder, measure: SupportMeasure::Bl75 },
                7 => EventKind::ConsentGiven {
                    custody_holder: holder,
                    scope: scope(if random.below(2) == 0 { "bl32" } else { "bl78" }),
                },
                8 => EventKind::ConsentWithdrawn { custody_holder: holder, scope: scope("bl78") },
                9 => EventKind::PlanPrepared {
                    plan_id: "p".into(),
                    kind: PlanKind::Bl78,
                    covers: vec![holder],
                    goals: Vec::new(),
                },
                10 => EventKind::PlanPrepared {
                    plan_id: "p".into(),
                    kind: PlanKind::Bl78,
                    covers: Vec::new(),
                    goals: Vec::new(),
                },
                11 => EventKind::RevisionAssessed,
                12 => EventKind::HomecomingPeriodStarted,
                13 => EventKind::ContactResumed,
                14 => EventKind::SectorContactEnded { contact_id: "c".into() },
                _ => EventKind::PlanOmitted { reasons: "why".into() },
            };
            events.push(Event { occurred_on: dates[random.below(dates.len())], kind, source: None });
        }
        let today = dates[random.below(dates.len())];
        let evaluation = bro_rules::evaluate(&holders, &events, today);
        let _ = bro_rules::render_json(&evaluation);
    }
}
