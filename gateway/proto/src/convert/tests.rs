//! Conversion tests: bad input is named field by field; good input round-trips.

use super::*;

fn date(y: i32, m: i32, day: i32) -> Option<pb::Date> {
    Some(pb::Date { year: y, month: m, day })
}

#[test]
fn impossible_dates_and_unknown_enums_are_named() {
    let ev = pb::CaseEvent {
        occurred_on: date(2026, 2, 30),
        kind: Some(Kind::PlacementStarted(pb::PlacementStarted { basis: 42, site_kind: 0 })),
        ..Default::default()
    };
    let err = event_from_pb(&ev).unwrap_err();
    expect_test::expect![[r#"occurred_on: 2026-02-30 is not a date (year 1900–9999, a month 1–12 and a day that month has); placement_started.basis: 42 is not a known bro.v1.PlacementBasis value"#]]
        .assert_eq(&err.to_string());
}

#[test]
fn missing_kind_and_required_fields_are_named() {
    let err = event_from_pb(&pb::CaseEvent::default()).unwrap_err();
    expect_test::expect![[r#"occurred_on: is required; kind: exactly one event kind must be set; none is"#]]
        .assert_eq(&err.to_string());
    let ev = pb::CaseEvent {
        occurred_on: date(2026, 1, 1),
        kind: Some(Kind::SupportDecided(pb::SupportDecided { custody_holder: String::new(), measure: 0, outcome: 1 })),
        ..Default::default()
    };
    expect_test::expect![[r#"support_decided.custody_holder: is required; support_decided.measure: is required (bro.v1.SupportMeasure must not be unspecified)"#]]
        .assert_eq(&event_from_pb(&ev).unwrap_err().to_string());
}

#[test]
fn cpr_numbers_are_never_echoed_in_errors() {
    let err = opening_from_pb(
        Some(&pb::Child::default()),
        &[pb::Party {
            party_id: "parent-1".into(),
            identifier: Some(pb::PersonIdentifier { kind: 1, value: "9913001234".into() }),
            display_name: String::new(),
        }],
        Some(&pb::Organisation { cvr: "29189846".into(), ..Default::default() }),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("9913001234"), "{err}");
    assert_eq!(err.0[0].field, "custody_holders[0].identifier.value");
}

#[test]
fn events_round_trip() {
    let ev = pb::CaseEvent {
        occurred_on: date(2028, 2, 29),
        source: Some(pb::EventSource { system: "sdi".into(), message_id: "m-1".into() }),
        kind: Some(Kind::PlanPrepared(pb::PlanPrepared {
            plan_id: "plan-7".into(),
            kind: pb::PlanKind::Bl78.into(),
            covers: vec!["parent-1".into()],
            goals: vec![pb::Goal {
                goal_id: "g1".into(),
                change_in_parents: "Mor kommer til samvær hver uge".into(),
                aim: pb::GoalAim::Contact.into(),
                sub_goals: vec!["Faste tider".into()],
                owner_sector: pb::Sector::Jobcentre.into(),
                owner: "Jobcenter".into(),
                custody_holders: vec!["parent-1".into()],
            }],
        })),
        ..Default::default()
    };
    let domain = event_from_pb(&ev).unwrap();
    assert_eq!(event_to_pb(&domain), ev);
}

#[test]
fn etags_round_trip_and_foreign_ones_are_refused() {
    assert_eq!(version_from_etag("etag", &etag(17)).unwrap(), 17);
    assert!(version_from_etag("etag", "17").is_err());
    assert!(version_from_etag("etag", "\"x\"").is_err());
}

#[test]
fn revision_2_events_round_trip_and_name_a_bad_municipality() {
    let kinds = [
        Kind::HomecomingPeriodWaived(pb::HomecomingPeriodWaived { reasons: "Barnet er hjemme hver weekend".into() }),
        Kind::CustodyHolderMoved(pb::CustodyHolderMoved {
            custody_holder: "parent-2".into(),
            to_municipality: "10203040".into(),
        }),
        Kind::CaseHandoverSent(pb::CaseHandoverSent { to_municipality: "10203040".into() }),
    ];
    for kind in kinds {
        let ev = pb::CaseEvent { occurred_on: date(2026, 2, 2), kind: Some(kind), ..Default::default() };
        let domain = event_from_pb(&ev).unwrap();
        assert_eq!(event_to_pb(&domain), ev);
    }
    let moved = pb::CaseEvent {
        occurred_on: date(2026, 2, 2),
        kind: Some(Kind::CustodyHolderMoved(pb::CustodyHolderMoved {
            custody_holder: String::new(),
            to_municipality: "1020".into(),
        })),
        ..Default::default()
    };
    let err = event_from_pb(&moved).unwrap_err().to_string();
    assert!(err.contains("custody_holder_moved.custody_holder") && err.contains("to_municipality"), "{err}");
}
