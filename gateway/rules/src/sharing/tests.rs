//! The sharing law as tables: every kind of event against every kind of
//! recipient, what each recorder may record, and what a sector's view holds,
//! written out and compared with golden files.

use std::fmt::Write as _;

use bro_domain::{
    CaseId, Child, ConsentScope, Correspondence, CorrespondenceActivity, CorrespondenceEntry, CorrespondencePriority,
    Date, EventSource, Organisation, PersonId, PersonIdKind, RecordedEvent,
};

use super::*;
use crate::coordination::CoordinationPolicy;

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).expect("id")
}

fn scope(s: &str) -> ConsentScope {
    ConsentScope::parse("s", s).expect("scope")
}

fn org(name: &str) -> Organisation {
    Organisation { display_name: name.into(), ..Default::default() }
}

fn at(hour: u32) -> Timestamp {
    format!("2026-03-02T{hour:02}:00:00Z").parse().expect("time")
}

fn appointment(id: &str, holder: &str, sector: Sector) -> EventKind {
    EventKind::AppointmentScheduled {
        appointment: Box::new(Appointment {
            appointment_id: id.into(),
            custody_holder: party(holder),
            sector,
            organisation: org("Et sted"),
            professional: None,
            title: "Samtale".into(),
            start_time: at(9),
            end_time: Some(at(10)),
            location: String::new(),
            cancelled: false,
            cancellation_reason: String::new(),
        }),
    }
}

fn contact(id: &str, holder: &str, sector: Sector) -> EventKind {
    EventKind::SectorContactAdded {
        contact_id: id.into(),
        custody_holder: party(holder),
        sector,
        organisation: org("Et sted"),
        contact_person: None,
        system_of_record: String::new(),
    }
}

fn sector_plan(id: &str, holder: &str, sector: Sector) -> EventKind {
    EventKind::SectorPlanRecorded {
        plan: Box::new(SectorPlan {
            plan_id: id.into(),
            custody_holder: party(holder),
            sector,
            organisation: org("Et sted"),
            contact_person: None,
            system_of_record: String::new(),
            start_date: None,
            end_date: None,
            goals: Vec::new(),
            activities: Vec::new(),
        }),
    }
}

fn letter(id: &str, holder: &str, sector: Sector) -> EventKind {
    EventKind::CorrespondenceRecorded {
        correspondence: Box::new(Correspondence {
            message_id: id.into(),
            thread_id: String::new(),
            in_reply_to: String::new(),
            activity: CorrespondenceActivity::New,
            sector,
            sender: org("Afsender"),
            receiver: org("Modtager"),
            custody_holder: party(holder),
            person: None,
            episode_of_care: None,
            priority: CorrespondencePriority::Routine,
            category: String::new(),
            subject: "Brev".into(),
            entries: vec![CorrespondenceEntry { text: "Tekst".into(), ..Default::default() }],
            send_time: None,
        }),
    }
}

fn consent(holder: &str, s: &str) -> EventKind {
    EventKind::ConsentGiven { custody_holder: party(holder), scope: scope(s) }
}

fn withdrawal(holder: &str, s: &str) -> EventKind {
    EventKind::ConsentWithdrawn { custody_holder: party(holder), scope: scope(s) }
}

/// A growing history: events get sequence numbers in the order added.
struct History(Vec<RecordedEvent>);

impl History {
    /// A case of municipality 11111111 with three parents: parent-1 shares
    /// with the jobcentre by consent (and withdrew from psychiatry), parent-2
    /// with the jobcentre by a legal basis and with psychiatry by consent,
    /// parent-3 with nobody; each has items of the jobcentre and of
    /// psychiatry.
    fn case_with_items() -> History {
        let opened = EventKind::CaseOpened {
            child: Child { identifier: None, journal_reference: "j".into() },
            custody_holders: ["parent-1", "parent-2", "parent-3"]
                .iter()
                .map(|p| Party {
                    party_id: party(p),
                    identifier: Some(PersonId::parse("p", PersonIdKind::Cpr, "0101901234").expect("cpr")),
                    display_name: String::new(),
                })
                .collect(),
            placing_municipality: Organisation { cvr: "11111111".into(), ..Default::default() },
        };
        let mut h = History(Vec::new());
        h.add(opened);
        h.add(consent("parent-1", "share:jobcenter"));
        h.add(consent("parent-1", "share:psychiatry"));
        h.add(withdrawal("parent-1", "share:psychiatry"));
        h.add(EventKind::LegalBasisRecorded {
            custody_holder: party("parent-2"),
            scope: scope("share:jobcenter"),
            citation: "lov om en aktiv beskæftigelsesindsats".into(),
        });
        h.add(consent("parent-2", "share:psychiatry"));
        for holder in ["parent-1", "parent-2", "parent-3"] {
            let n = holder.trim_start_matches("parent-");
            h.add(appointment(&format!("job-{n}"), holder, Sector::Jobcentre));
            h.add(appointment(&format!("psy-{n}"), holder, Sector::Psychiatry));
            h.add(contact(&format!("contact-job-{n}"), holder, Sector::Jobcentre));
            h.add(contact(&format!("contact-psy-{n}"), holder, Sector::Psychiatry));
            h.add(sector_plan(&format!("plan-job-{n}"), holder, Sector::Jobcentre));
            h.add(letter(&format!("letter-psy-{n}"), holder, Sector::Psychiatry));
        }
        h
    }

    fn add(&mut self, kind: EventKind) -> &mut Self {
        self.0.push(RecordedEvent {
            sequence: self.0.len() as u64 + 1,
            record_time: Timestamp::default(),
            request_id: String::new(),
            event: Event {
                occurred_on: "2026-02-01".parse::<Date>().expect("date"),
                kind,
                source: Some(EventSource { system: "x".into(), message_id: String::new() }),
            },
        });
        self
    }

    fn case(&self) -> Case {
        Case::replay(CaseId::parse("c", "c1").expect("id"), &self.0).expect("replays")
    }
}

/// The recipients every table is written for.
fn recipients() -> Vec<(&'static str, Recipient<'static>)> {
    vec![
        ("journal A", Recipient::Municipality { cvr: "11111111" }),
        ("journal B", Recipient::Municipality { cvr: "22222222" }),
        ("jobcentre", Recipient::Sector { sector: Sector::Jobcentre, scope: "share:jobcenter", serves: None }),
        (
            "jobcentre of B",
            Recipient::Sector { sector: Sector::Jobcentre, scope: "share:jobcenter", serves: Some("22222222") },
        ),
        ("psychiatry", Recipient::Sector { sector: Sector::Psychiatry, scope: "share:psychiatry", serves: None }),
        ("send-only", Recipient::Nobody),
    ]
}

/// Every event kind a case knows, as it would be sent about the case above.
fn events() -> Vec<(&'static str, EventKind)> {
    vec![
        ("placement started", EventKind::PlacementStarted { basis: bro_domain::PlacementBasis::Bl46, site_kind: None }),
        ("support person offered to parent-1", EventKind::SupportPersonOffered { custody_holder: party("parent-1") }),
        ("share:jobcenter consent of parent-1", consent("parent-1", "share:jobcenter")),
        ("share:jobcenter consent of parent-3", consent("parent-3", "share:jobcenter")),
        ("share:jobcenter withdrawn by parent-3", withdrawal("parent-3", "share:jobcenter")),
        ("share:psychiatry withdrawn by parent-1", withdrawal("parent-1", "share:psychiatry")),
        ("bl78 agreement of parent-1", consent("parent-1", "bl78")),
        (
            "share:jobcenter legal basis of parent-2 ended",
            EventKind::LegalBasisEnded { custody_holder: party("parent-2"), scope: scope("share:jobcenter") },
        ),
        ("jobcentre appointment of parent-1", appointment("job-1", "parent-1", Sector::Jobcentre)),
        ("jobcentre appointment of parent-2", appointment("job-2", "parent-2", Sector::Jobcentre)),
        ("jobcentre appointment of parent-3", appointment("job-3", "parent-3", Sector::Jobcentre)),
        ("psychiatry appointment of parent-1", appointment("psy-1", "parent-1", Sector::Psychiatry)),
        (
            "jobcentre appointment job-1 cancelled",
            EventKind::AppointmentCancelled { appointment_id: "job-1".into(), reason: String::new() },
        ),
        (
            "jobcentre appointment job-3 cancelled",
            EventKind::AppointmentCancelled { appointment_id: "job-3".into(), reason: String::new() },
        ),
        (
            "psychiatry appointment psy-1 cancelled",
            EventKind::AppointmentCancelled { appointment_id: "psy-1".into(), reason: String::new() },
        ),
        ("jobcentre contact of parent-1", contact("contact-job-1", "parent-1", Sector::Jobcentre)),
        ("jobcentre contact of parent-1 ended", EventKind::SectorContactEnded { contact_id: "contact-job-1".into() }),
        ("psychiatry contact of parent-1 ended", EventKind::SectorContactEnded { contact_id: "contact-psy-1".into() }),
        ("jobcentre plan of parent-2", sector_plan("plan-job-2", "parent-2", Sector::Jobcentre)),
        ("psychiatry appointment of parent-2", appointment("psy-2", "parent-2", Sector::Psychiatry)),
        ("psychiatry letter to parent-1", letter("letter-psy-1", "parent-1", Sector::Psychiatry)),
        ("psychiatry letter to parent-2", letter("letter-psy-2", "parent-2", Sector::Psychiatry)),
        (
            "psychiatry appointment psy-2 cancelled",
            EventKind::AppointmentCancelled { appointment_id: "psy-2".into(), reason: String::new() },
        ),
        (
            "holistic plan prepared",
            EventKind::PlanPrepared {
                plan_id: "hp".into(),
                kind: PlanKind::Bl78,
                covers: vec![party("parent-1")],
                goals: Vec::new(),
            },
        ),
    ]
}

/// A day after every event of these cases: what is recorded holds.
fn today() -> bro_domain::Date {
    "2099-12-31".parse().expect("a date")
}

#[test]
fn what_each_recipient_may_see_and_be_sent() {
    let case = History::case_with_items().case();
    let recipients = recipients();
    let mut table = String::from("see/send per recipient: S = shown on read, R = sent, - = neither\n");
    for (what, kind) in events() {
        let cells: Vec<String> = recipients
            .iter()
            .map(|(name, recipient)| {
                let (see, send) = match recipient.share(&case, today()) {
                    None => (false, false),
                    Some(Share::Whole) => (true, true),
                    Some(Share::Sector(scope)) => (scope.may_see(&kind), scope.may_receive(&kind)),
                };
                let mark = match (see, send) {
                    (true, true) => "SR",
                    (false, true) => " R",
                    (true, false) => "S ",
                    (false, false) => " -",
                };
                format!("{name}: {mark}")
            })
            .collect();
        writeln!(table, "{what}\n  {}", cells.join(" | ")).expect("write");
    }
    expect_test::expect_file!["receive_table.txt"].assert_eq(&table);
}

#[test]
fn a_sector_view_holds_only_its_own_items_of_the_parents_who_share() {
    let case = History::case_with_items().case();
    let mut out = String::new();
    for (name, recipient) in recipients() {
        let Some(Share::Sector(scope)) = recipient.share(&case, today()) else {
            writeln!(out, "{name}: no sector view").expect("write");
            continue;
        };
        let view = scope.view(&case);
        let ids = |items: Vec<String>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
        writeln!(out, "{name}:").expect("write");
        writeln!(out, "  parents: {}", ids(view.custody_holders.iter().map(|p| p.party_id.to_string()).collect()))
            .expect("write");
        writeln!(out, "  appointments: {}", ids(view.appointments.iter().map(|a| a.appointment_id.clone()).collect()))
            .expect("write");
        writeln!(out, "  contacts: {}", ids(view.sector_contacts.iter().map(|c| c.contact_id.clone()).collect()))
            .expect("write");
        writeln!(out, "  plans: {}", ids(view.sector_plans.iter().map(|p| p.plan_id.clone()).collect()))
            .expect("write");
        writeln!(out, "  letters: {}", ids(view.correspondence.iter().map(|c| c.message_id.clone()).collect()))
            .expect("write");
        writeln!(
            out,
            "  consents: {}",
            ids(view.consents.iter().map(|c| format!("{} {}", c.custody_holder, c.scope.as_str())).collect())
        )
        .expect("write");
        writeln!(
            out,
            "  legal bases: {}",
            ids(view.legal_bases.iter().map(|b| format!("{} {}", b.custody_holder, b.scope.as_str())).collect())
        )
        .expect("write");
    }
    expect_test::expect_file!["view_table.txt"].assert_eq(&out);
}

#[test]
fn what_each_recorder_may_record() {
    let recorders = [
        ("municipality", Recorder::Municipality),
        ("jobcentre", Recorder::Sector(Sector::Jobcentre)),
        ("psychiatry", Recorder::Sector(Sector::Psychiatry)),
        ("nobody", Recorder::Nobody),
    ];
    let submitted = [
        ("appointment_scheduled", Some(Sector::Jobcentre)),
        ("appointment_scheduled", Some(Sector::Psychiatry)),
        ("appointment_scheduled", None),
        ("correspondence_recorded", Some(Sector::Jobcentre)),
        ("sector_plan_recorded", Some(Sector::Jobcentre)),
        ("sector_contact_added", Some(Sector::Jobcentre)),
        ("appointment_cancelled", None),
        ("sector_contact_ended", None),
        ("consent_given", None),
        ("legal_basis_recorded", None),
        ("placement_started", None),
        ("plan_prepared", None),
    ];
    let mut table = String::new();
    for (event_type, sector) in submitted {
        let cells: Vec<String> = recorders
            .iter()
            .map(|(name, recorder)| {
                let verdict = match may_record(*recorder, &[Some(Submitted { event_type, sector })]) {
                    Ok(()) => "yes".to_owned(),
                    Err(why) => format!("no ({why})"),
                };
                format!("{name}: {verdict}")
            })
            .collect();
        let sector = sector.map_or("-".to_owned(), |s| format!("{s:?}"));
        writeln!(table, "{event_type} ({sector})\n  {}", cells.join("\n  ")).expect("write");
    }
    expect_test::expect_file!["record_table.txt"].assert_eq(&table);
}

#[test]
fn a_refusal_names_the_first_event_it_cannot_record() {
    let events = [
        Some(Submitted { event_type: "appointment_scheduled", sector: Some(Sector::Jobcentre) }),
        None,
        Some(Submitted { event_type: "appointment_scheduled", sector: Some(Sector::Psychiatry) }),
        Some(Submitted { event_type: "consent_given", sector: None }),
    ];
    let why = may_record(Recorder::Sector(Sector::Jobcentre), &events).expect_err("refused");
    assert_eq!(why, "events[2]: this system records only its own sector's items", "indices count every event");
}

#[test]
fn a_sector_changes_only_its_own_items() {
    let case = History::case_with_items().case();
    let event = |kind: EventKind| Event { occurred_on: "2026-02-02".parse().expect("date"), kind, source: None };
    let cancel = |id: &str| event(EventKind::AppointmentCancelled { appointment_id: id.into(), reason: String::new() });
    let end = |id: &str| event(EventKind::SectorContactEnded { contact_id: id.into() });
    assert!(only_own_items(&case, Sector::Jobcentre, &[cancel("job-3"), end("contact-job-1")]).is_ok());
    assert_eq!(
        only_own_items(&case, Sector::Jobcentre, &[cancel("psy-1")]),
        Err("an appointment of another sector cannot be cancelled by this system".into())
    );
    assert_eq!(
        only_own_items(&case, Sector::Psychiatry, &[end("contact-job-2")]),
        Err("a contact of another sector cannot be ended by this system".into())
    );
    assert!(only_own_items(&case, Sector::Jobcentre, &[cancel("unknown")]).is_ok(), "the case refuses that one");
}

#[test]
fn a_sector_batch_names_only_the_parents_its_events_are_about() {
    let case = History::case_with_items().case();
    let jobcentre = Recipient::Sector { sector: Sector::Jobcentre, scope: "share:jobcenter", serves: None };
    let share = jobcentre.share(&case, today()).expect("within reach");
    let kinds = [appointment("job-2", "parent-2", Sector::Jobcentre)];
    let named: Vec<&str> = share.parties(&case, kinds.iter()).iter().map(|p| p.party_id.as_str()).collect();
    assert_eq!(named, ["parent-2"]);
    let whole: Vec<&str> = Share::Whole.parties(&case, kinds.iter()).iter().map(|p| p.party_id.as_str()).collect();
    assert_eq!(whole, ["parent-1", "parent-2", "parent-3"], "the municipality's own system gets every parent");
}

#[test]
fn a_plan_view_leaves_only_while_the_plan_is_in_force() {
    let mut history = History::case_with_items();
    history.add(EventKind::PlanPrepared {
        plan_id: "hp".into(),
        kind: PlanKind::Bl78,
        covers: vec![party("parent-1")],
        goals: Vec::new(),
    });
    let jobcentre = Recipient::Sector { sector: Sector::Jobcentre, scope: "share:jobcenter", serves: None };
    let journal = Recipient::Municipality { cvr: "11111111" };
    let parents = [party("parent-1")];
    let proposed = history.case();
    let policy = CoordinationPolicy::default();
    let plan = holistic::assemble(&proposed, "hp", &policy, None).expect("plan");
    assert!(plan_view(&jobcentre, &plan, &proposed, today()).is_none(), "a proposal stays with the municipality");
    assert!(plan_view(&journal, &plan, &proposed, today()).is_some());
    assert!(!plan_still_sendable(&jobcentre, &proposed, "hp", &parents, false, today()));

    history.add(consent("parent-1", "bl78"));
    let in_force = history.case();
    let plan = holistic::assemble(&in_force, "hp", &policy, None).expect("plan");
    let view = plan_view(&jobcentre, &plan, &in_force, today()).expect("in force: the jobcentre's view");
    assert_eq!(view.covers, parents);
    assert!(plan_still_sendable(&jobcentre, &in_force, "hp", &parents, false, today()));

    history.add(withdrawal("parent-1", "share:jobcenter"));
    let withdrawn = history.case();
    assert!(
        !plan_still_sendable(&jobcentre, &withdrawn, "hp", &parents, false, today()),
        "the queued view is held back"
    );
    assert!(plan_still_sendable(&jobcentre, &withdrawn, "hp", &parents, true, today()), "the notice still goes");
    assert!(plan_still_sendable(&journal, &withdrawn, "hp", &parents, false, today()));
    let other = Recipient::Municipality { cvr: "22222222" };
    assert!(!plan_still_sendable(&other, &withdrawn, "hp", &parents, true, today()), "never outside the municipality");
}
