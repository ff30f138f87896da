//! The parents' page: its text in plain Danish (golden), escaping, and what
//! it leaves out.

use bro_domain::{
    Appointment, ContactPerson, Coordinator, Goal, GoalAim, Organisation, PartyId, Sector, SectorActivity,
    SectorContact, SectorPlan, SupportMeasure,
};
use bro_rules::coordination::{Conflict, ConflictKind};
use bro_rules::holistic::{Agreement, AuthorityMeasure, HolisticPlan, PlanState};

use super::*;

fn party(id: &str) -> PartyId {
    PartyId::parse("p", id).expect("id")
}

fn at(s: &str) -> Timestamp {
    format!("{s}Z").parse().expect("time")
}

fn day(s: &str) -> Date {
    s.parse().expect("date")
}

fn plan() -> HolisticPlan {
    let jobcentre = Organisation { display_name: "Jobcenter Bro".into(), ..Default::default() };
    let meeting = |id: &str, start: &str, end: &str, sector: Sector, org: &Organisation, title: &str| Appointment {
        appointment_id: id.into(),
        custody_holder: party("parent-1"),
        sector,
        organisation: org.clone(),
        professional: Some(ContactPerson { display_name: "Jens Jensen".into(), ..Default::default() }),
        title: title.into(),
        start_time: at(start),
        end_time: Some(at(end)),
        location: "Torvet 1".into(),
        cancelled: false,
        cancellation_reason: String::new(),
    };
    let psychiatry = Organisation { display_name: "Psykiatrisk Center Bro".into(), ..Default::default() };
    HolisticPlan {
        plan_id: "hp-1".into(),
        prepared_on: day("2026-02-01"),
        covers: vec![party("parent-1")],
        goals: vec![
            Goal {
                goal_id: "samvaer".into(),
                change_in_parents: "Anna kommer til samvær hver anden tirsdag og er forberedt".into(),
                aim: Some(GoalAim::Contact),
                sub_goals: vec!["Møder op til tiden".into(), "Har madpakke med <til barnet>".into()],
                owner_sector: None,
                owner: "Familieafdelingen".into(),
                custody_holders: vec![],
            },
            Goal {
                goal_id: "job".into(),
                change_in_parents: "Anna er i praktik 20 timer om ugen".into(),
                aim: None,
                owner_sector: Some(Sector::Jobcentre),
                ..Default::default()
            },
        ],
        coordinator: Some((
            Coordinator {
                person: ContactPerson {
                    display_name: "Karin Koordinator".into(),
                    role: "koordinerende sagsbehandler".into(),
                    phone: "+45 11 22 33 44".into(),
                    email: "karin@bro.example".into(),
                },
                organisation: Organisation { display_name: "Bro Kommune".into(), ..Default::default() },
                sector: None,
            },
            day("2026-02-01"),
        )),
        state: PlanState::InForce,
        sector_plans: vec![SectorPlan {
            plan_id: "job-1".into(),
            custody_holder: party("parent-1"),
            sector: Sector::Jobcentre,
            organisation: jobcentre.clone(),
            contact_person: Some(ContactPerson {
                display_name: "Jens Jensen".into(),
                phone: "70 10 20 30".into(),
                ..Default::default()
            }),
            system_of_record: String::new(),
            start_date: None,
            end_date: None,
            goals: vec![],
            activities: vec![SectorActivity {
                activity_id: "praktik".into(),
                title: "Virksomhedspraktik".into(),
                start_date: Some(day("2026-03-01")),
                minutes_per_week: 20 * 60 + 30,
                ..Default::default()
            }],
        }],
        authority_measures: vec![AuthorityMeasure {
            custody_holder: party("parent-1"),
            measure: SupportMeasure::Bl75,
            granted_on: None,
            started_on: Some(day("2026-01-20")),
        }],
        sector_contacts: vec![SectorContact {
            contact_id: "k1".into(),
            custody_holder: party("parent-1"),
            sector: Sector::Psychiatry,
            organisation: psychiatry.clone(),
            contact_person: Some(ContactPerson { display_name: "Pia Psykolog".into(), ..Default::default() }),
            system_of_record: String::new(),
            start_date: day("2026-01-12"),
            end_date: None,
        }],
        appointments: vec![
            meeting("old", "2026-02-20T09:00:00", "2026-02-20T10:00:00", Sector::Jobcentre, &jobcentre, "Gammelt møde"),
            meeting("job-m", "2026-03-02T08:00:00", "2026-03-02T09:00:00", Sector::Jobcentre, &jobcentre, "Opfølgning"),
            meeting("psy-m", "2026-03-02T08:30:00", "2026-03-02T09:30:00", Sector::Psychiatry, &psychiatry, "Samtale"),
        ],
        busy_periods: vec![],
        agreements: vec![Agreement {
            custody_holder: party("parent-1"),
            agreed_on: Some(day("2026-02-02")),
            withdrawn_on: None,
            shared_with: vec!["share:jobcenter".into(), "share:psychiatry".into()],
        }],
        conflicts: vec![Conflict {
            kind: ConflictKind::AppointmentsOverlap,
            custody_holder: Some(party("parent-1")),
            items: vec!["appointments/job-m".into(), "appointments/psy-m".into()],
            message: String::new(),
        }],
        next_revision_due: Some(day("2026-05-01")),
    }
}

#[test]
fn the_page_says_it_in_plain_danish() {
    let municipality =
        Organisation { display_name: "Bro Kommune".into(), cvr: "12345678".into(), ..Default::default() };
    let html = render(&plan(), "Anna Testesen", &municipality, at("2026-02-25T12:00:00"));
    expect_test::expect_file!["golden_page.html"].assert_eq(&html);
}

#[test]
fn text_from_outside_is_escaped_and_past_appointments_left_out() {
    let municipality = Organisation::default();
    let html = render(&plan(), "<script>alert(1)</script>", &municipality, at("2026-02-25T12:00:00"));
    assert!(!html.contains("<script>"), "no markup from data");
    assert!(html.contains("&lt;script&gt;") && html.contains("&lt;til barnet&gt;"));
    assert!(!html.contains("Gammelt møde"), "a past appointment is not listed");
    assert!(html.contains("mandag 2. marts 2026 kl. 09.00–10.00"), "Danish local time (UTC+1 in winter)");
    assert!(html.contains("Obs: Aftalen falder sammen"), "the clash is pointed out");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "nothing external");
}

#[test]
fn a_withdrawn_agreement_and_no_coordinator_are_said_plainly() {
    let mut plan = plan();
    plan.state = PlanState::AgreementWithdrawn;
    plan.coordinator = None;
    plan.agreements[0].agreed_on = None;
    plan.agreements[0].withdrawn_on = Some(day("2026-02-10"));
    plan.agreements[0].shared_with.clear();
    let html = render(&plan, "Anna", &Organisation::default(), at("2026-02-25T12:00:00"));
    assert!(html.contains("Samtykket er trukket tilbage"));
    assert!(html.contains("Du trak dit samtykke til planen tilbage den 10. februar 2026."));
    assert!(html.contains("Der er endnu ikke valgt en koordinator."));
    assert!(html.contains("deles ikke med andre steder"));
}
