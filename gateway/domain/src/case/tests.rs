//! Invariant tests: what the case accepts, and what it refuses with which message.

use super::*;
use crate::{Event, PersonId, PersonIdKind};

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).unwrap()
}

fn recorded(sequence: u64, on: &str, kind: EventKind) -> RecordedEvent {
    RecordedEvent {
        sequence,
        record_time: Timestamp::default(),
        request_id: format!("r{sequence}"),
        event: Event { occurred_on: date(on), kind, source: None },
    }
}

fn opened() -> RecordedEvent {
    recorded(
        1,
        "2026-01-01",
        EventKind::CaseOpened {
            child: Child { identifier: None, journal_reference: "27.24.00-G01-1-26".into() },
            custody_holders: vec![Party {
                party_id: party("parent-1"),
                identifier: Some(PersonId::parse("cpr", PersonIdKind::Cpr, "0101901234").unwrap()),
                display_name: "Test Testesen".into(),
            }],
            placing_municipality: Organisation { cvr: "29189846".into(), ..Default::default() },
        },
    )
}

fn replay(events: Vec<RecordedEvent>) -> Result<Case, (usize, Violations)> {
    let mut all = vec![opened()];
    all.extend(events);
    Case::replay(CaseId::parse("id", "c1").unwrap(), &all)
}

#[test]
fn approval_before_choice_is_refused() {
    let holder = party("parent-1");
    let err = replay(vec![
        recorded(2, "2026-01-02", EventKind::SupportPersonOffered { custody_holder: holder.clone() }),
        recorded(3, "2026-01-03", EventKind::SupportPersonApproved { custody_holder: holder }),
    ])
    .unwrap_err();
    assert_eq!(err.0, 2);
    expect_test::expect![[r#"support_person_approved.custody_holder: parent-1 has no support person chosen and awaiting a decision on 2026-01-03; record support_person_chosen first"#]]
        .assert_eq(&err.1.to_string());
}

#[test]
fn unknown_custody_holder_is_named() {
    let err =
        replay(vec![recorded(2, "2026-01-02", EventKind::SupportPersonOffered { custody_holder: party("parent-9") })])
            .unwrap_err();
    expect_test::expect![[
        r#"support_person_offered.custody_holder: the case has no custody holder "parent-9"; it has ["parent-1"]"#
    ]]
    .assert_eq(&err.1.to_string());
}

#[test]
fn placement_ended_before_it_started_is_refused() {
    let err = replay(vec![
        recorded(2, "2026-03-01", EventKind::PlacementStarted { basis: PlacementBasis::Bl46, site_kind: None }),
        recorded(3, "2026-02-01", EventKind::PlacementEnded { reason: PlacementEndReason::Other }),
    ])
    .unwrap_err();
    assert_eq!(err.0, 2, "the end, applied first by date, is the culprit");
    assert!(err.1.to_string().contains("no placement is in progress on 2026-02-01"), "{}", err.1);
}

#[test]
fn backdated_events_apply_in_date_order() {
    let holder = party("parent-1");
    let case = replay(vec![
        recorded(2, "2026-01-10", EventKind::SupportPersonApproved { custody_holder: holder.clone() }),
        recorded(3, "2026-01-05", EventKind::SupportPersonOffered { custody_holder: holder.clone() }),
        recorded(
            4,
            "2026-01-08",
            EventKind::SupportPersonChosen { custody_holder: holder, kind: SupportPersonKind::Network, person: None },
        ),
    ])
    .unwrap();
    let track = &case.support_persons[0];
    assert_eq!(track.decision, Some((ApprovalDecision::Approved, date("2026-01-10"))));
    assert_eq!(case.version, 4);
    assert_eq!(case.last_occurred_on, date("2026-01-10"));
}

#[test]
fn withdrawing_a_consent_that_does_not_hold_is_refused() {
    let holder = party("parent-1");
    let scope = ConsentScope::parse("s", "share:jobcenter").unwrap();
    let err = replay(vec![recorded(
        2,
        "2026-01-02",
        EventKind::ConsentWithdrawn { custody_holder: holder.clone(), scope: scope.clone() },
    )])
    .unwrap_err();
    assert!(err.1.to_string().contains("no consent in scope share:jobcenter"), "{}", err.1);
    let case = replay(vec![
        recorded(2, "2026-01-02", EventKind::ConsentGiven { custody_holder: holder.clone(), scope: scope.clone() }),
        recorded(3, "2026-01-03", EventKind::ConsentWithdrawn { custody_holder: holder, scope }),
    ])
    .unwrap();
    assert_eq!(case.consents[0].withdrawn_on, Some(date("2026-01-03")));
}

#[test]
fn holistic_plan_needs_covered_custody_holders() {
    let err = replay(vec![recorded(
        2,
        "2026-01-02",
        EventKind::PlanPrepared { plan_id: "plan-2".into(), kind: PlanKind::Bl78, covers: vec![], goals: vec![] },
    )])
    .unwrap_err();
    assert_eq!(err.1.0[0].field, "plan_prepared.covers");
}

#[test]
fn a_holistic_plan_gets_a_coordinator_and_new_goals_for_the_parents_it_covers() {
    let holder = party("parent-1");
    let plan = |id: &str, kind| EventKind::PlanPrepared { plan_id: id.into(), kind, covers: vec![], goals: vec![] };
    let coordinator = Coordinator {
        person: ContactPerson { display_name: "Karin".into(), email: "k@example.invalid".into(), ..Default::default() },
        ..Default::default()
    };
    let named =
        |id: &str, c: &Coordinator| EventKind::PlanCoordinatorNamed { plan_id: id.into(), coordinator: c.clone() };
    let holistic = EventKind::PlanPrepared {
        plan_id: "hp".into(),
        kind: PlanKind::Bl78,
        covers: vec![holder.clone()],
        goals: vec![],
    };
    let case = replay(vec![
        recorded(2, "2026-01-02", holistic.clone()),
        recorded(3, "2026-01-03", named("hp", &coordinator)),
        recorded(
            4,
            "2026-01-04",
            EventKind::PlanGoalsUpdated {
                plan_id: "hp".into(),
                goals: vec![Goal { goal_id: "g".into(), custody_holders: vec![holder.clone()], ..Default::default() }],
            },
        ),
    ])
    .expect("valid");
    assert_eq!(case.plans[0].coordinator, Some((coordinator.clone(), date("2026-01-03"))));
    assert_eq!(case.plans[0].goals.len(), 1);

    let on_77 = replay(vec![
        recorded(2, "2026-01-02", plan("p", PlanKind::Bl77)),
        recorded(3, "2026-01-03", named("p", &coordinator)),
    ]);
    assert!(on_77.unwrap_err().1.to_string().contains("a coordinator belongs to a § 78 holistic plan"));
    let unreachable = Coordinator {
        person: ContactPerson { display_name: "Karin".into(), ..Default::default() },
        ..Default::default()
    };
    let err =
        replay(vec![recorded(2, "2026-01-02", holistic.clone()), recorded(3, "2026-01-03", named("hp", &unreachable))]);
    assert!(err.unwrap_err().1.to_string().contains("plan_coordinator_named.coordinator.person: give a phone number"));
    let twice = Goal { goal_id: "g".into(), ..Default::default() };
    let err = replay(vec![
        recorded(2, "2026-01-02", holistic.clone()),
        recorded(
            3,
            "2026-01-03",
            EventKind::PlanGoalsUpdated { plan_id: "hp".into(), goals: vec![twice.clone(), twice] },
        ),
    ]);
    assert!(err.unwrap_err().1.to_string().contains("plan_goals_updated.goals[1].goal_id: \"g\" is used twice"));
    let stranger = Goal { goal_id: "g".into(), custody_holders: vec![party("parent-9")], ..Default::default() };
    let err = replay(vec![
        recorded(2, "2026-01-02", holistic),
        recorded(3, "2026-01-03", EventKind::PlanGoalsUpdated { plan_id: "hp".into(), goals: vec![stranger] }),
    ]);
    assert!(err.unwrap_err().1.to_string().contains("goals[0].custody_holders[0]: the case has no custody holder"));
}

#[test]
fn revision_2_events_keep_the_case_consistent() {
    let placed =
        || recorded(2, "2026-01-05", EventKind::PlacementStarted { basis: PlacementBasis::Bl46, site_kind: None });
    let waived =
        |sequence, on| recorded(sequence, on, EventKind::HomecomingPeriodWaived { reasons: "Ikke nødvendig".into() });
    let err = replay(vec![waived(2, "2026-01-04")]).unwrap_err();
    expect_test::expect![[r#"homecoming_period_waived: no placement is in progress on 2026-01-04; a homecoming period is waived while the child is placed (or on the day the placement ends)"#]]
        .assert_eq(&err.1.to_string());
    let moved =
        |to: &str| EventKind::CustodyHolderMoved { custody_holder: party("parent-1"), to_municipality: to.into() };
    let err = replay(vec![placed(), recorded(3, "2026-02-02", moved("29189846"))]).unwrap_err();
    expect_test::expect![[
        r#"custody_holder_moved.to_municipality: is the placing municipality; record a move to another municipality"#
    ]]
    .assert_eq(&err.1.to_string());
    let err = replay(vec![placed(), recorded(3, "2026-02-02", moved("2918"))]).unwrap_err();
    expect_test::expect![[r#"custody_holder_moved.to_municipality: "2918" is not a CVR number (eight digits)"#]]
        .assert_eq(&err.1.to_string());
    let sent = EventKind::CaseHandoverSent { to_municipality: "10203040".into() };
    let case = replay(vec![
        placed(),
        waived(3, "2026-02-01"),
        recorded(4, "2026-02-02", moved("10203040")),
        recorded(5, "2026-02-09", sent),
    ])
    .expect("a consistent history");
    assert_eq!(
        case.homecoming_waivers,
        [HomecomingWaiver { waived_on: date("2026-02-01"), reasons: "Ikke nødvendig".into() }]
    );
    assert_eq!(
        case.moves,
        [Move { custody_holder: party("parent-1"), to_municipality: "10203040".into(), moved_on: date("2026-02-02") }]
    );
    assert_eq!(case.handovers, [Handover { to_municipality: "10203040".into(), sent_on: date("2026-02-09") }]);
    let ended = recorded(3, "2026-03-02", EventKind::PlacementEnded { reason: PlacementEndReason::Homecoming });
    let case = replay(vec![placed(), ended, waived(4, "2026-03-02")]).expect("waived on the day of the end");
    assert_eq!(case.homecoming_waivers.len(), 1);
    assert!(
        replay(vec![
            placed(),
            recorded(3, "2026-03-02", EventKind::PlacementEnded { reason: PlacementEndReason::Homecoming }),
            waived(4, "2026-03-03")
        ])
        .is_err()
    );
}

#[test]
fn consents_and_legal_bases_count_from_their_dates_not_from_when_they_were_recorded() {
    let scope = || ConsentScope::parse("scope", "share:jobcenter").unwrap();
    let holder = party("parent-1");
    // Recorded now, dated ahead: a consent from 2026-04-01, withdrawn as of 2026-06-01;
    // a legal basis from 2026-07-01 that ends 2026-08-01.
    let case = replay(vec![
        recorded(2, "2026-04-01", EventKind::ConsentGiven { custody_holder: party("parent-1"), scope: scope() }),
        recorded(3, "2026-06-01", EventKind::ConsentWithdrawn { custody_holder: party("parent-1"), scope: scope() }),
        recorded(
            4,
            "2026-07-01",
            EventKind::LegalBasisRecorded {
                custody_holder: party("parent-1"),
                scope: scope(),
                citation: "barnets lov § 182, stk. 2".into(),
            },
        ),
        recorded(5, "2026-08-01", EventKind::LegalBasisEnded { custody_holder: party("parent-1"), scope: scope() }),
    ])
    .unwrap();
    for (on, shares) in [
        ("2026-03-31", false),
        ("2026-04-01", true),
        ("2026-05-31", true),
        ("2026-06-01", false),
        ("2026-06-30", false),
        ("2026-07-01", true),
        ("2026-07-31", true),
        ("2026-08-01", false),
    ] {
        assert_eq!(case.shares_with(&holder, "share:jobcenter", date(on)), shares, "on {on}");
        assert_eq!(case.shared_custody_holders("share:jobcenter", date(on)).count(), usize::from(shares), "on {on}");
    }
    assert!(!case.shares_with(&holder, "share:psychiatry", date("2026-05-01")), "another scope");
}
