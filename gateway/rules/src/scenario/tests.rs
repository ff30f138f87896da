//! Tests of scenario parsing (every error names its place) and of `check`.

use super::*;
use crate::{Evaluation, Obligation, evaluate};

/// A scenario with `events` (JSON array items) for one or two custody holders.
fn with_events(holders: &str, events: &str) -> String {
    format!(
        r#"{{"name": "t", "today": "2026-03-01", "custody_holders": {holders}, "events": [{events}], "expect": []}}"#
    )
}

/// The error message for `events` with custody holder `parent-1`.
fn event_error(events: &str) -> String {
    parse(&with_events(r#"["parent-1"]"#, events)).expect_err("must be rejected").to_string()
}

#[test]
fn errors_name_the_event_and_the_problem() {
    let start = r#"{"at": "2026-01-03", "type": "placement_started", "basis": "bl46"}"#;
    let cases = [
        (r#"{"at": "2026-01-01", "type": "foo"}"#.to_owned(), r#"events[0]: unknown event type "foo""#),
        (
            r#"{"at": "2026-01-01", "type": "support_person_offered", "custody_holder": "parent-9"}"#.to_owned(),
            r#"events[0].custody_holder: "parent-9" is not one of the custody holders ["parent-1"]"#,
        ),
        (r#"{"at": "2026-02-30", "type": "revision_made"}"#.to_owned(), r#"events[0].at: "2026-02-30" is not a date (YYYY-MM-DD)"#),
        (r#"{"at": "2026-1-5", "type": "revision_made"}"#.to_owned(), r#"events[0].at: "2026-1-5" is not a date (YYYY-MM-DD)"#),
        (
            r#"{"at": "2026-01-01", "type": "placement_started", "basis": "bl99"}"#.to_owned(),
            r#"events[0].basis: unknown legal basis "bl99" (expected bl46, bl47, lbu14)"#,
        ),
        (
            format!(r#"{start}, {{"at": "2026-01-04", "type": "support_decided", "measure": "bl32-1-9", "outcome": "granted", "custody_holder": "parent-1"}}"#),
            r#"events[1].measure: unknown measure "bl32-1-9" (expected bl32-1-2, bl32-1-3, bl32-1-5, bl32-1-8, bl35, other_legislation)"#,
        ),
        (
            format!(r#"{start}, {{"at": "2026-01-04", "type": "support_decided", "measure": "bl75", "outcome": "granted", "custody_holder": "parent-1"}}"#),
            "events[1].measure: bl75 is the support person: record it with support_person_* events, not support_decided",
        ),
        (
            format!(r#"{start}, {{"at": "2026-01-01", "type": "revision_made"}}"#),
            "events[1].at: 2026-01-01 is before the previous event's date 2026-01-03; events must be in date order",
        ),
        (r#"{"at": "2026-01-01", "type": "placement_started"}"#.to_owned(), "events[0].basis: is required"),
        (r#"{"at": "2026-01-01"}"#.to_owned(), "events[0].type: is required"),
        (r#"{"type": "revision_made"}"#.to_owned(), "events[0].at: is required"),
        (r#"42"#.to_owned(), "events[0]: expected an object, found a number"),
        (
            r#"{"at": "2026-01-01", "type": "support_person_offered", "custody_hodler": "parent-1"}"#.to_owned(),
            "events[0].custody_hodler: unknown field (expected at, type, custody_holder)",
        ),
        (
            r#"{"at": "2026-01-01", "type": "consent_given", "custody_holder": "parent-1", "scope": "everything"}"#.to_owned(),
            r#"events[0].scope: "everything" is not a consent scope: use "bl32", "bl78" or "share:{recipient}""#,
        ),
        (
            r#"{"at": "2026-01-01", "type": "plan_prepared", "kind": "bl78"}"#.to_owned(),
            "events[0].covers: is required",
        ),
        (
            r#"{"at": "2026-01-01", "type": "plan_prepared", "kind": "bl77", "covers": ["parent-1"]}"#.to_owned(),
            "events[0].covers: only a bl78 holistic plan names the custody holders it covers",
        ),
        (
            r#"{"at": "2026-01-01", "type": "plan_prepared", "kind": "bl78", "covers": ["parent-1", "parent-2"]}"#.to_owned(),
            r#"events[0].covers[1]: "parent-2" is not one of the custody holders ["parent-1"]"#,
        ),
        (
            r#"{"at": "2026-01-01", "type": "placement_recommended", "basis": "bl47", "siblings_under_18_in_household": "yes", "reason": "neglect"}"#.to_owned(),
            "events[0].siblings_under_18_in_household: expected true or false, found a string",
        ),
        // Revision 2: a holistic plan covers someone; moves and handovers name a municipality.
        (
            r#"{"at": "2026-01-01", "type": "plan_prepared", "kind": "bl78", "covers": []}"#.to_owned(),
            "events[0].covers: a bl78 holistic plan covers one or both custody holders; the list is empty",
        ),
        (
            r#"{"at": "2026-01-01", "type": "custody_holder_moved", "custody_holder": "parent-1", "to_municipality": "1020304"}"#.to_owned(),
            r#"events[0].to_municipality: "1020304" is not a CVR number (eight digits)"#,
        ),
        (
            r#"{"at": "2026-01-01", "type": "case_handover_sent"}"#.to_owned(),
            "events[0].to_municipality: is required",
        ),
        (
            r#"{"at": "2026-01-01", "type": "homecoming_period_waived", "reason": "x"}"#.to_owned(),
            "events[0].reason: unknown field (expected at, type, reasons)",
        ),
    ];
    for (events, expected) in cases {
        assert_eq!(event_error(&events), expected, "for {events}");
    }
}

#[test]
fn errors_in_the_rest_of_the_file() {
    let error = |text: &str| parse(text).expect_err("must be rejected").to_string();
    assert!(
        error("{\"name\": \"t\",\n  \"today\": }").starts_with("malformed JSON: expected value at line 2 column 12")
    );
    assert_eq!(error("[]"), "the scenario: expected an object, found an array");
    assert_eq!(error(r#"{"name": "t"}"#), "today: is required");
    let base = r#""name": "t", "today": "2026-03-01", "events": []"#;
    assert_eq!(
        error(&format!(r#"{{{base}, "custody_holders": []}}"#)),
        "custody_holders: has 0 entries; a case has 1 to 4 custody holders"
    );
    assert_eq!(
        error(&format!(r#"{{{base}, "custody_holders": ["parent-1", "parent-1"]}}"#)),
        r#"custody_holders[1]: "parent-1" is listed twice"#
    );
    assert!(
        error(&format!(r#"{{{base}, "custody_holders": ["Parent 1"]}}"#))
            .starts_with(r#"custody_holders[0]: "Parent 1" is not a valid id"#)
    );
    assert_eq!(
        error(&format!(r#"{{{base}, "custody_holders": ["parent-1"], "expected": []}}"#)),
        "expected: unknown field (expected name, today, custody_holders, events, expect, expect_advisories)"
    );
    let holders = r#""custody_holders": ["parent-1"]"#;
    let expect = |entry: &str| error(&format!(r#"{{{base}, {holders}, "expect": [{entry}]}}"#));
    assert_eq!(
        expect(r#"{"rule": "bl99"}"#),
        r#"expect[0].rule: unknown rule "bl99" (expected bl75, bl75-approval, bl76, bl32-consent, bl77, bl77-2, bl78-consent, bl79-2, bl79-3, bl100-1, bl100-3, bl103-2, bl132)"#
    );
    assert_eq!(
        expect(r#"{"rule": "bl75"}"#),
        "expect[0].custody_holder: is required: bl75 is owed to each custody holder separately"
    );
    assert_eq!(
        expect(r#"{"rule": "bl76", "custody_holder": "parent-1"}"#),
        "expect[0].custody_holder: bl76 is a duty of the case, not of one custody holder; leave custody_holder out"
    );
    assert_eq!(
        expect(r#"{"rule": "bl76", "status": "late"}"#),
        r#"expect[0].status: unknown status "late" (expected open, overdue, met, violated)"#
    );
    assert_eq!(
        expect(r#"{"rule": "bl76", "due": "tomorrow"}"#),
        r#"expect[0].due: "tomorrow" is not a date (YYYY-MM-DD)"#
    );
    assert_eq!(
        error(&format!(r#"{{{base}, {holders}, "expect_advisories": ["be-nice"]}}"#)),
        r#"expect_advisories[0]: unknown advisory "be-nice" (expected repeat-support-person-offer, goal-without-change-in-parents, goal-without-aim, no-coordinator-for-several-sectors)"#
    );
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "x".repeat(10_000);
    let message = event_error(&format!(r#"{{"at": "2026-01-01", "type": "{long}"}}"#));
    assert!(message.len() < 200, "{message}");
}

#[test]
fn events_become_domain_events() {
    let scenario = parse(&with_events(
        r#"["parent-1", "parent-2"]"#,
        r#"{"at": "2026-01-01", "type": "plan_prepared", "kind": "bl78", "covers": ["parent-2"]},
           {"at": "2026-01-02", "type": "plan_omitted", "reasons": ""}"#,
    ))
    .expect("valid");
    assert_eq!(scenario.custody_holders.len(), 2);
    assert_eq!(scenario.events[0].occurred_on, "2026-01-01".parse().unwrap());
    let bro_domain::EventKind::PlanPrepared { plan_id, covers, goals, .. } = &scenario.events[0].kind else {
        panic!("not a plan: {:?}", scenario.events[0]);
    };
    assert_eq!((plan_id.as_str(), covers[0].as_str(), goals.len()), ("plan-1", "parent-2", 0));
    assert!(scenario.expect.is_empty() && scenario.expect_advisories.is_empty());
}

// --- check ----------------------------------------------------------------

/// The shared example case: placement and offer to parent-1 on 2026-01-15.
fn evaluated(expect: &str, advisories: &str) -> (Scenario, Evaluation) {
    let text = format!(
        r#"{{"name": "t", "today": "2026-03-01", "custody_holders": ["parent-1"],
            "events": [{{"at": "2026-01-15", "type": "placement_started", "basis": "bl46"}},
                       {{"at": "2026-01-15", "type": "support_person_offered", "custody_holder": "parent-1"}},
                       {{"at": "2026-01-16", "type": "support_person_declined", "custody_holder": "parent-1"}}],
            "expect": [{expect}], "expect_advisories": [{advisories}]}}"#
    );
    let scenario = parse(&text).expect("valid");
    let evaluation = evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
    (scenario, evaluation)
}

#[test]
fn check_passes_on_matching_given_fields_only() {
    let (scenario, evaluation) = evaluated(
        r#"{"rule": "bl75", "custody_holder": "parent-1", "met_on": "2026-01-15"},
           {"rule": "bl76", "status": "overdue", "trigger": "2026-01-15"}"#,
        r#""repeat-support-person-offer""#,
    );
    assert_eq!(check(&scenario, &evaluation), Vec::<String>::new());
}

#[test]
fn check_reports_counts_fields_and_missing_advisories() {
    let (scenario, evaluation) = evaluated(
        r#"{"rule": "bl75", "custody_holder": "parent-1", "status": "open", "due": "2026-01-16"},
           {"rule": "bl77", "status": "met"}"#,
        r#""goal-without-aim""#,
    );
    assert_eq!(
        check(&scenario, &evaluation),
        [
            "bl75 for parent-1 #1 (triggered 2026-01-15): status: expected open, got met",
            "bl75 for parent-1 #1 (triggered 2026-01-15): due: expected 2026-01-16, got 2026-01-15",
            "bl77 (case): expected 1 obligation(s), the engine reported 0 []",
            "bl76 (case): expected 0 obligation(s), the engine reported 1 [triggered 2026-01-15 overdue]",
            "advisory goal-without-aim: expected, but the engine did not report it",
        ]
    );
}

#[test]
fn check_compares_within_a_pair_in_trigger_order() {
    let (scenario, mut evaluation) = evaluated(
        r#"{"rule": "bl76", "due": "2026-01-15"}, {"rule": "bl76", "due": "2026-02-01"},
           {"rule": "bl75", "custody_holder": "parent-1"}"#,
        "",
    );
    // A second bl76 duty, listed first in the output but triggered later.
    let later = Obligation {
        trigger: "2026-02-01".parse().unwrap(),
        due: "2026-02-01".parse().ok(),
        ..evaluation.obligations[1].clone()
    };
    evaluation.obligations.insert(0, later);
    assert_eq!(check(&scenario, &evaluation), Vec::<String>::new());
}

#[test]
fn contradictory_histories_are_evaluated_not_refused() {
    // The API refuses such a history; the public scenario format evaluates it.
    let text = r#"{"name": "t", "today": "2026-03-01", "custody_holders": ["parent-1"], "events": [
        {"at": "2026-01-01", "type": "support_person_approved", "custody_holder": "parent-1"},
        {"at": "2026-01-03", "type": "placement_started", "basis": "bl47"},
        {"at": "2026-01-04", "type": "placement_started", "basis": "bl47"}]}"#;
    let scenario = crate::scenario::parse(text).expect("parses");
    let evaluation = crate::evaluate(&scenario.custody_holders, &scenario.events, scenario.today);
    assert!(evaluation.obligations.iter().any(|o| o.rule.as_str() == "bl75"));
}
