//! Plan distribution through the outbox planner: who is sent what, when a
//! view changes, and that a withdrawal ends it.

use std::sync::Arc;

use bro_api::v1 as pb;
use bro_domain::{
    Appointment, CaseId, Child, ConsentScope, ContactPerson, Coordinator, Event, EventKind, Organisation, Party,
    PartyId, PersonId, PersonIdKind, PlanKind, RecordedEvent, Sector, Timestamp,
};
use bro_store::DeliveryPlanner as _;
use prost::Message as _;

use super::*;
use crate::pipeline::outbox::{Outbox, still_sendable};
use crate::pipeline::subjects;
use crate::systems::{SystemAccess, Transport};

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).expect("id")
}

fn systems() -> Arc<Systems> {
    let sector = |name: &str, sector: pb::Sector, scope: &str| {
        SystemConfig::new(name, "a", "t", &[HOLISTIC_PLAN], Transport::Pull)
            .with_access(SystemAccess::Sector { sector, scope: scope.into() })
    };
    Arc::new(
        Systems::new(vec![
            sector("jobcenter", pb::Sector::Jobcentre, "share:jobcenter"),
            sector("psykiatri", pb::Sector::Psychiatry, "share:psychiatry"),
            SystemConfig::new("journal", "a", "t", &[HOLISTIC_PLAN], Transport::Pull)
                .with_access(SystemAccess::Municipal { cvr: "12345678".into() }),
        ])
        .expect("valid"),
    )
}

/// A history that grows one event at a time, planning each write.
struct Run {
    events: Vec<RecordedEvent>,
    outbox: Outbox,
}

impl Run {
    fn new() -> Run {
        let opened = EventKind::CaseOpened {
            child: Child { identifier: None, journal_reference: "j".into() },
            custody_holders: vec![
                Party {
                    party_id: party("parent-1"),
                    identifier: Some(PersonId::parse("p", PersonIdKind::Cpr, "0101901234").expect("cpr")),
                    display_name: "Anna Testesen".into(),
                },
                Party {
                    party_id: party("parent-2"),
                    identifier: Some(PersonId::parse("p", PersonIdKind::Cpr, "2207921238").expect("cpr")),
                    display_name: "Bo Testesen".into(),
                },
            ],
            placing_municipality: Organisation { cvr: "12345678".into(), ..Default::default() },
        };
        let outbox = Outbox::new(systems(), Arc::new(CoordinationPolicy::default()));
        let mut run = Run { events: Vec::new(), outbox };
        run.write(opened);
        run
    }

    /// A plan for parent-1, who shares with the jobcentre, in force; and the
    /// deliveries of the agreement as queued.
    fn in_force() -> (Run, Vec<(String, pb::AdapterBatch)>) {
        let mut run = Run::new();
        run.write(consent("parent-1", "share:jobcenter", true));
        run.write(EventKind::PlanPrepared {
            plan_id: "hp".into(),
            kind: PlanKind::Bl78,
            covers: vec![party("parent-1")],
            goals: vec![],
        });
        let agreed = run.queue(consent("parent-1", "bl78", true));
        (run, agreed)
    }

    fn case_at(&self, n: usize) -> Case {
        Case::replay(CaseId::parse("c", "c1").expect("id"), &self.events[..n]).expect("replays")
    }

    /// The case as it is now.
    fn case(&self) -> Case {
        self.case_at(self.events.len())
    }

    /// Appends one event; returns the plan deliveries as queued: (system, canonical batch).
    fn queue(&mut self, kind: EventKind) -> Vec<(String, pb::AdapterBatch)> {
        let before = (!self.events.is_empty()).then(|| self.case());
        self.events.push(RecordedEvent {
            sequence: self.events.len() as u64 + 1,
            record_time: Timestamp::default(),
            request_id: String::new(),
            event: Event { occurred_on: "2026-02-01".parse().expect("date"), kind, source: None },
        });
        let after = self.case();
        let recorded = self.events.last().expect("one").clone();
        let numbered = bro_api::convert::recorded_event_to_pb(&recorded);
        self.outbox
            // 2026-02-15, after the events: their consents hold (they count from their dates).
            .plan(
                before.as_ref(),
                &after,
                &[recorded],
                &[numbered],
                Timestamp::from_timestamp(1_771_113_600, 0).expect("a time"),
            )
            .into_iter()
            .map(|d| (d.system, pb::AdapterBatch::decode(d.payload.as_slice()).expect("a batch")))
            .filter(|(_, batch)| batch.holistic_plan.is_some())
            .collect()
    }

    /// Appends one event; returns the plan deliveries as they reach the
    /// receiving system's adapter: (system, plan sent).
    fn write(&mut self, kind: EventKind) -> Vec<(String, pb::HolisticPlan)> {
        self.queue(kind)
            .into_iter()
            .filter_map(|(system, batch)| Some((system, subjects::encode(batch).holistic_plan?)))
            .collect()
    }
}

fn consent(holder: &str, scope: &str, given: bool) -> EventKind {
    let (custody_holder, scope) = (party(holder), ConsentScope::parse("s", scope).expect("scope"));
    if given {
        EventKind::ConsentGiven { custody_holder, scope }
    } else {
        EventKind::ConsentWithdrawn { custody_holder, scope }
    }
}

fn meeting(id: &str, sector: Sector, hour: u32) -> EventKind {
    let start: Timestamp = format!("2026-03-02T{hour:02}:00:00Z").parse().expect("time");
    EventKind::AppointmentScheduled {
        appointment: Box::new(Appointment {
            appointment_id: id.into(),
            custody_holder: party("parent-1"),
            sector,
            organisation: Organisation { display_name: "Psykiatrisk Center".into(), ..Default::default() },
            professional: None,
            title: "Samtale om medicin".into(),
            start_time: start,
            end_time: Some(start + chrono::Duration::hours(1)),
            location: String::new(),
            cancelled: false,
            cancellation_reason: String::new(),
        }),
    }
}

fn systems_of(sent: &[(String, pb::HolisticPlan)]) -> Vec<&str> {
    let mut names: Vec<&str> = sent.iter().map(|(s, _)| s.as_str()).collect();
    names.sort();
    names
}

#[test]
fn each_system_gets_its_view_when_it_changes_and_a_notice_when_it_ends() {
    let mut run = Run::new();
    run.write(consent("parent-1", "share:jobcenter", true));
    let created = run.write(EventKind::PlanPrepared {
        plan_id: "hp".into(),
        kind: PlanKind::Bl78,
        covers: vec![party("parent-1")],
        goals: vec![],
    });
    assert_eq!(systems_of(&created), ["journal"], "a proposal goes to the municipality's own system only");
    run.write(EventKind::PlanCoordinatorNamed {
        plan_id: "hp".into(),
        coordinator: Coordinator {
            person: ContactPerson { display_name: "Karin".into(), phone: "1".into(), ..Default::default() },
            ..Default::default()
        },
    });
    let agreed = run.write(consent("parent-1", "bl78", true));
    assert_eq!(systems_of(&agreed), ["jobcenter", "journal"], "in force: the consented sector too, not psychiatry");
    let (_, view) = agreed.iter().find(|(s, _)| s == "jobcenter").expect("jobcentre's view");
    assert_eq!(view.covers, ["subjects/0"], "parents cross as subjects");
    assert_eq!(view.state(), pb::HolisticPlanState::InForce);
    assert_eq!(view.version, 5, "the case version the view reflects");

    let psychiatry = run.write(meeting("psy-1", Sector::Psychiatry, 9));
    let (_, view) = psychiatry.iter().find(|(s, _)| s == "jobcenter").expect("busy time changed the jobcentre's view");
    assert_eq!(view.busy_periods.len(), 1);
    let bytes = view.encode_to_vec();
    assert!(!String::from_utf8_lossy(&bytes).contains("medicin"), "psychiatry's title does not reach the jobcentre");
    assert!(!String::from_utf8_lossy(&bytes).contains("Psykiatrisk"), "nor its organisation");

    let unrelated = run.write(consent("parent-2", "share:psychiatry", true));
    assert_eq!(systems_of(&unrelated), Vec::<&str>::new(), "nothing in any view changed");

    let withdrawn = run.write(consent("parent-1", "bl78", false));
    let (_, notice) = withdrawn.iter().find(|(s, _)| s == "jobcenter").expect("a notice");
    assert!(notice.distribution_ended);
    assert_eq!(notice.state(), pb::HolisticPlanState::AgreementWithdrawn);
    assert!(notice.goals.is_empty() && notice.busy_periods.is_empty() && notice.coordinator.is_none());
    let later = run.write(meeting("psy-2", Sector::Psychiatry, 11));
    assert_eq!(systems_of(&later), ["journal"], "distribution to the sectors has stopped");
}

#[test]
fn a_queued_view_is_held_back_once_the_plan_is_no_longer_in_force() {
    let (mut run, agreed) = Run::in_force();
    let (_, view) = agreed.into_iter().find(|(s, _)| s == "jobcenter").expect("view");
    let jobcenter = run.outbox.systems().get("jobcenter").expect("configured").clone();
    let sendable = |run: &Run, batch: &pb::AdapterBatch| {
        still_sendable(&jobcenter, &run.case(), batch.clone(), "2099-12-31".parse().expect("a date"))
            .expect("a readable batch")
            .is_some()
    };
    assert!(sendable(&run, &view));
    let withdrawn = run.queue(consent("parent-1", "bl78", false));
    assert!(!sendable(&run, &view), "the queued view is dead-lettered");
    let (_, notice) = withdrawn.into_iter().find(|(s, _)| s == "jobcenter").expect("notice");
    assert!(sendable(&run, &notice), "the notice still goes out");
    run.write(consent("parent-1", "bl78", true));
    run.write(consent("parent-1", "share:jobcenter", false));
    assert!(!sendable(&run, &view), "nor after the consent to share is withdrawn");
}

#[test]
fn a_delivered_view_is_cut_to_what_an_adapter_can_render() {
    let (run, _) = Run::in_force();
    let case = run.case_at(run.events.len());
    let mut plan = bro_rules::holistic::assemble(&case, "hp", &CoordinationPolicy::default(), None).expect("plan");
    let start: Timestamp = "2026-03-01T08:00:00Z".parse().expect("time");
    plan.busy_periods = (0..300)
        .map(|i| bro_rules::holistic::BusyPeriod {
            custody_holder: party("parent-1"),
            start: start + chrono::Duration::hours(2 * i),
            end: start + chrono::Duration::hours(2 * i + 1),
        })
        .collect();
    let now = start + chrono::Duration::days(20);
    limit_for_delivery(&mut plan, now);
    assert_eq!(plan.busy_periods.len(), MAX_DELIVERED_ITEMS);
    let from = now - chrono::Duration::days(DELIVERED_HISTORY_DAYS);
    assert!(plan.busy_periods.iter().all(|b| b.end >= from), "nothing older than two weeks");
    assert!(plan.busy_periods[0].end < from + chrono::Duration::hours(2), "the earliest that are left come first");
}
