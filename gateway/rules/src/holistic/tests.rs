//! Tests of the assembled holistic plan, its states, its views and versions.

use bro_domain::{
    Appointment, CaseId, Child, ContactPerson, Event, EventSource, Organisation, Party, SectorActivity, SectorGoal,
};

use super::*;

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).expect("id")
}

fn day(s: &str) -> Date {
    s.parse().expect("date")
}

fn at(s: &str) -> Timestamp {
    format!("{s}:00Z").parse().expect("time")
}

fn scope(s: &str) -> ConsentScope {
    ConsentScope::parse("s", s).expect("scope")
}

/// A growing history: events get sequence numbers in the order added.
struct History(Vec<RecordedEvent>);

impl History {
    fn new() -> History {
        let opened = EventKind::CaseOpened {
            child: Child { identifier: None, journal_reference: "j".into() },
            custody_holders: ["parent-1", "parent-2"]
                .iter()
                .map(|p| Party { party_id: party(p), identifier: None, display_name: String::new() })
                .collect(),
            placing_municipality: Organisation { cvr: "12345678".into(), ..Default::default() },
        };
        let mut h = History(Vec::new());
        h.add("2026-01-10", opened);
        h
    }

    fn add(&mut self, on: &str, kind: EventKind) -> &mut Self {
        self.add_from(on, kind, None)
    }

    fn add_from(&mut self, on: &str, kind: EventKind, system: Option<&str>) -> &mut Self {
        let source = system.map(|s| EventSource { system: s.into(), message_id: "m".into() });
        self.0.push(RecordedEvent {
            sequence: self.0.len() as u64 + 1,
            record_time: Timestamp::default(),
            request_id: String::new(),
            event: Event { occurred_on: day(on), kind, source },
        });
        self
    }

    fn case(&self) -> Case {
        Case::replay(CaseId::parse("c", "c1").expect("id"), &self.0).expect("replays")
    }
}

fn meeting(id: &str, holder: &str, sector: Sector, start: &str, end: &str) -> EventKind {
    EventKind::AppointmentScheduled {
        appointment: Box::new(Appointment {
            appointment_id: id.into(),
            custody_holder: party(holder),
            sector,
            organisation: Organisation { display_name: format!("{} Org", sector_name(sector)), ..Default::default() },
            professional: Some(ContactPerson { display_name: format!("Worker {id}"), ..Default::default() }),
            title: format!("Secret title {id}"),
            start_time: at(start),
            end_time: Some(at(end)),
            location: String::new(),
            cancelled: false,
            cancellation_reason: String::new(),
        }),
    }
}

fn job_plan() -> EventKind {
    EventKind::SectorPlanRecorded {
        plan: Box::new(SectorPlan {
            plan_id: "job-1".into(),
            custody_holder: party("parent-1"),
            sector: Sector::Jobcentre,
            organisation: Organisation { display_name: "Jobcenter Bro".into(), ..Default::default() },
            contact_person: None,
            system_of_record: String::new(),
            start_date: None,
            end_date: None,
            goals: vec![SectorGoal { goal_id: "work".into(), text: "Holde et job".into(), tags: vec![] }],
            activities: vec![SectorActivity {
                activity_id: "praktik".into(),
                title: "Virksomhedspraktik".into(),
                minutes_per_week: 37 * 60,
                goal_ids: vec!["work".into()],
                ..Default::default()
            }],
        }),
    }
}

fn goal(id: &str, aim: Option<GoalAim>, owner: Option<Sector>, holders: &[&str]) -> Goal {
    Goal {
        goal_id: id.into(),
        change_in_parents: format!("change {id}"),
        aim,
        owner_sector: owner,
        custody_holders: holders.iter().map(|h| party(h)).collect(),
        ..Goal::default()
    }
}

fn consent(holder: &str, s: &str) -> EventKind {
    EventKind::ConsentGiven { custody_holder: party(holder), scope: scope(s) }
}

fn withdraw(holder: &str, s: &str) -> EventKind {
    EventKind::ConsentWithdrawn { custody_holder: party(holder), scope: scope(s) }
}

fn coordinator() -> Coordinator {
    Coordinator {
        person: ContactPerson {
            display_name: "Karin Koordinator".into(),
            phone: "12 34 56 78".into(),
            ..Default::default()
        },
        organisation: Organisation { display_name: "Bro Kommune".into(), ..Default::default() },
        sector: None,
    }
}

/// A plan for parent-1 with a contact goal, a psychiatry-owned goal and a
/// goal of both parents; the jobcentre's full-time plan; meetings of the
/// jobcentre and psychiatry that overlap; parent-2's own psychiatry meeting.
fn history() -> History {
    let mut h = History::new();
    h.add("2026-01-12", job_plan())
        .add_from(
            "2026-01-12",
            meeting("job-m", "parent-1", Sector::Jobcentre, "2026-03-02T09:00", "2026-03-02T10:00"),
            Some("jobcenter"),
        )
        .add("2026-01-12", meeting("psy-m", "parent-1", Sector::Psychiatry, "2026-03-02T09:30", "2026-03-02T10:30"))
        .add("2026-01-12", meeting("psy-2", "parent-2", Sector::Psychiatry, "2026-03-03T09:00", "2026-03-03T10:00"))
        .add(
            "2026-01-15",
            EventKind::PlanPrepared {
                plan_id: "hp".into(),
                kind: PlanKind::Bl78,
                covers: vec![party("parent-1")],
                goals: vec![
                    goal("samvaer", Some(GoalAim::Contact), None, &[]),
                    goal("treatment", None, Some(Sector::Psychiatry), &[]),
                ],
            },
        )
        .add("2026-01-15", EventKind::PlanCoordinatorNamed { plan_id: "hp".into(), coordinator: coordinator() });
    h
}

#[test]
fn a_plan_is_proposed_until_every_covered_parent_agrees_and_stops_when_one_withdraws() {
    let mut h = history();
    let policy = CoordinationPolicy::default();
    assert_eq!(assemble(&h.case(), "hp", &policy, None).expect("plan").state, PlanState::Proposed);
    h.add("2026-01-20", consent("parent-1", "bl78"));
    let plan = assemble(&h.case(), "hp", &policy, None).expect("plan");
    assert_eq!(plan.state, PlanState::InForce);
    assert_eq!(plan.agreements[0].agreed_on, Some(day("2026-01-20")));
    h.add("2026-02-01", withdraw("parent-1", "bl78"));
    let plan = assemble(&h.case(), "hp", &policy, None).expect("plan");
    assert_eq!(plan.state, PlanState::AgreementWithdrawn);
    assert_eq!(plan.agreements[0].withdrawn_on, Some(day("2026-02-01")));
    h.add("2026-02-10", consent("parent-1", "bl78"));
    assert_eq!(assemble(&h.case(), "hp", &policy, None).expect("plan").state, PlanState::InForce, "agreed again");
    h.add(
        "2026-03-01",
        EventKind::PlanPrepared {
            plan_id: "hp2".into(),
            kind: PlanKind::Bl78,
            covers: vec![party("parent-1")],
            goals: vec![],
        },
    );
    assert_eq!(assemble(&h.case(), "hp", &policy, None).expect("plan").state, PlanState::Superseded);
    assert!(assemble(&h.case(), "nope", &policy, None).is_none());
}

#[test]
fn the_plan_gathers_only_the_covered_parents_items_and_finds_the_clash() {
    let plan = assemble(&history().case(), "hp", &CoordinationPolicy::default(), None).expect("plan");
    assert_eq!(plan.sector_plans.len(), 1);
    let ids: Vec<&str> = plan.appointments.iter().map(|a| a.appointment_id.as_str()).collect();
    assert_eq!(ids, ["job-m", "psy-m"], "parent-2's meeting is not in parent-1's plan");
    let kinds: Vec<ConflictKind> = plan.conflicts.iter().map(|c| c.kind).collect();
    assert!(kinds.contains(&ConflictKind::AppointmentsOverlap), "{kinds:?}");
    assert!(kinds.contains(&ConflictKind::GoalsPullApart), "full-time activation against the contact goal: {kinds:?}");
    assert!(!kinds.contains(&ConflictKind::NoCoordinator), "a coordinator is named");
}

#[test]
fn a_sector_sees_its_own_items_other_sectors_as_busy_time_and_nothing_else() {
    let mut h = history();
    h.add("2026-01-20", consent("parent-1", "bl78"))
        .add("2026-01-20", consent("parent-1", "share:jobcenter"))
        .add("2026-01-20", consent("parent-1", "share:psychiatry"));
    let plan = assemble(&h.case(), "hp", &CoordinationPolicy::default(), None).expect("plan");
    let view = plan.sector_view(Sector::Jobcentre, "share:jobcenter", &[party("parent-1")]).expect("a view");
    assert_eq!(view.goals.iter().map(|g| g.goal_id.as_str()).collect::<Vec<_>>(), ["samvaer"], "not psychiatry's goal");
    assert_eq!(view.appointments.len(), 1);
    assert_eq!(view.appointments[0].appointment_id, "job-m");
    assert_eq!(view.busy_periods.len(), 1, "psychiatry's meeting as busy time");
    assert_eq!(view.busy_periods[0].start, at("2026-03-02T09:30"));
    assert_eq!(view.agreements[0].shared_with, ["share:jobcenter"], "not that the parent shares with psychiatry");
    assert!(view.authority_measures.is_empty() && view.sector_contacts.is_empty());
    let text = format!("{view:?}");
    for secret in ["Secret title psy", "psychiatry Org", "treatment", "psy-m", "share:psychiatry"] {
        assert!(!text.contains(secret), "{secret} leaked into the jobcentre's view");
    }
    let overlap = view.conflicts.iter().find(|c| c.kind == ConflictKind::AppointmentsOverlap).expect("the clash");
    assert_eq!(overlap.items, ["appointments/job-m"]);
    assert!(!overlap.message.contains("psychiatry"), "{}", overlap.message);
    // Nobody else's consent, no view; a plan not in force is not distributed.
    assert!(plan.sector_view(Sector::Jobcentre, "share:jobcenter", &[party("parent-2")]).is_none());
    h.add("2026-02-01", withdraw("parent-1", "bl78"));
    let withdrawn = assemble(&h.case(), "hp", &CoordinationPolicy::default(), None).expect("plan");
    assert!(withdrawn.sector_view(Sector::Jobcentre, "share:jobcenter", &[party("parent-1")]).is_none());
}

#[test]
fn a_goal_of_both_parents_reaches_a_sector_only_when_both_share() {
    let mut h = History::new();
    h.add(
        "2026-01-15",
        EventKind::PlanPrepared {
            plan_id: "hp".into(),
            kind: PlanKind::Bl78,
            covers: vec![party("parent-1"), party("parent-2")],
            goals: vec![goal("both", Some(GoalAim::Homecoming), None, &[]), goal("mine", None, None, &["parent-1"])],
        },
    )
    .add("2026-01-16", consent("parent-1", "bl78"))
    .add("2026-01-16", consent("parent-2", "bl78"));
    let plan = assemble(&h.case(), "hp", &CoordinationPolicy::default(), None).expect("plan");
    let one = plan.sector_view(Sector::Jobcentre, "share:jobcenter", &[party("parent-1")]).expect("view");
    assert_eq!(one.goals.iter().map(|g| g.goal_id.as_str()).collect::<Vec<_>>(), ["mine"]);
    assert_eq!(one.covers, [party("parent-1")]);
    let both =
        plan.sector_view(Sector::Jobcentre, "share:jobcenter", &[party("parent-1"), party("parent-2")]).expect("view");
    assert_eq!(both.goals.len(), 2);
    let page = plan.parent_view(&party("parent-2")).expect("covered");
    assert_eq!(page.goals.iter().map(|g| g.goal_id.as_str()).collect::<Vec<_>>(), ["both"]);
}

#[test]
fn versions_list_the_changes_that_changed_the_plan() {
    let mut h = history();
    h.add("2026-01-20", consent("parent-1", "bl78"))
        .add("2026-01-21", meeting("psy-3", "parent-2", Sector::Psychiatry, "2026-03-09T09:00", "2026-03-09T10:00"))
        .add("2026-01-22", consent("parent-1", "bl32"))
        .add_from(
            "2026-01-23",
            meeting("job-2", "parent-1", Sector::Jobcentre, "2026-03-10T09:00", "2026-03-10T10:00"),
            Some("jobcenter"),
        )
        .add("2026-01-24", EventKind::PlanGoalsUpdated { plan_id: "hp".into(), goals: vec![] })
        .add("2026-01-25", EventKind::AppointmentCancelled { appointment_id: "job-2".into(), reason: String::new() });
    let versions = versions(&h.case(), &h.0, "hp");
    let changes: Vec<(u64, &str, &str)> =
        versions.iter().map(|v| (v.sequence, v.change.as_str(), v.source_system.as_str())).collect();
    assert_eq!(
        changes,
        [
            (6, "plan created", ""),
            (7, "coordinator named", ""),
            (8, "parent-1 agreed to the plan", ""),
            (11, "appointment scheduled (the jobcentre)", "jobcenter"),
            (12, "goals updated", ""),
            (13, "appointment cancelled", ""),
        ],
        "parent-2's meeting and a § 32 consent do not change parent-1's plan"
    );
}

#[test]
fn a_proposal_gathers_the_goals_of_the_parent_plan_and_the_sectors() {
    let mut h = History::new();
    h.add("2026-01-12", job_plan()).add(
        "2026-01-13",
        EventKind::PlanPrepared {
            plan_id: "p77".into(),
            kind: PlanKind::Bl77,
            covers: vec![],
            goals: vec![goal("samvaer", Some(GoalAim::Contact), None, &[]), goal("other", None, None, &["parent-2"])],
        },
    );
    let case = h.case();
    assert_eq!(default_covers(&case), [party("parent-1")], "the parent with a sector plan");
    let proposal = propose(&case, &[party("parent-1")], day("2026-02-01"), &CoordinationPolicy::default(), None);
    assert_eq!(proposal.state, PlanState::Proposed);
    let goals: Vec<(&str, Option<Sector>, &[String])> =
        proposal.goals.iter().map(|g| (g.goal_id.as_str(), g.owner_sector, g.sub_goals.as_slice())).collect();
    assert_eq!(
        goals,
        [
            ("samvaer", None, &[][..]),
            ("jobcentre-work", Some(Sector::Jobcentre), &["Virksomhedspraktik".to_owned()][..])
        ]
    );
    assert!(proposal.conflicts.iter().any(|c| c.kind == ConflictKind::GoalsPullApart));
}

#[test]
fn a_page_link_is_revoked_by_a_withdrawal_an_update_or_a_new_plan_after_it_was_made() {
    let mut h = history();
    let made_at = h.0.len() as u64;
    let revoked = |h: &History, holder: &str| link_revoked_by(&h.0, "hp", &party(holder), made_at);
    assert_eq!(revoked(&h, "parent-1"), None, "nothing since");
    h.add("2026-03-01", meeting("later", "parent-1", Sector::Psychiatry, "2026-03-05T10:00", "2026-03-05T11:00"));
    h.add("2026-03-01", withdraw("parent-2", "share:psychiatry"));
    assert_eq!(revoked(&h, "parent-1"), None, "appointments and other consents leave the link working");
    h.add("2026-03-02", withdraw("parent-2", ConsentScope::BL78));
    assert_eq!(revoked(&h, "parent-2"), Some("the parent withdrew agreement to the plan"));
    assert_eq!(revoked(&h, "parent-1"), None, "another parent's withdrawal is theirs");
    let mut updated = history();
    updated.add("2026-03-02", EventKind::PlanCoordinatorNamed { plan_id: "hp".into(), coordinator: coordinator() });
    assert_eq!(revoked(&updated, "parent-1"), Some("the plan was updated"));
    let mut replaced = history();
    let new_plan = EventKind::PlanPrepared {
        plan_id: "hp-2".into(),
        kind: PlanKind::Bl78,
        covers: vec![party("parent-1")],
        goals: vec![goal("g", None, None, &["parent-1"])],
    };
    replaced.add("2026-03-02", new_plan);
    assert_eq!(revoked(&replaced, "parent-1"), Some("a new plan replaced it"));
    assert_eq!(revoked(&replaced, "parent-2"), None, "a parent the new plan does not cover keeps the link");
    assert_eq!(link_revoked_by(&replaced.0, "hp", &party("parent-1"), replaced.0.len() as u64), None, "made after");
}
