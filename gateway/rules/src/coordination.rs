//! Coordination checks for the § 78 holistic plan: what in the sectors' plans
//! and appointments pulls in different directions, or would leave the parents
//! to coordinate (seed 000). Pure like the rest of the engine: the case, its
//! evaluation and the policy go in, conflicts naming the items come out.
//!
//! - Appointments of different sectors for the same parent that overlap.
//! - More meetings with different professionals in one week than the policy allows.
//! - Goals or activities whose tags a rule of the policy's table says pull
//!   against each other (e.g. full-time activation against daytime contact).
//! - A plan past its § 79 revision dates (from the evaluation).
//! - A parent with contacts in several sectors and no coordinator.

use std::collections::{BTreeMap, BTreeSet};

use bro_domain::{Case, GoalAim, PartyId, Plan, Sector, Timestamp};
use chrono::Datelike;

use crate::{Evaluation, Status};

/// Weekly minutes from which an activity counts as full-time (37 hours).
pub const FULL_TIME_MINUTES: u32 = 37 * 60;

/// Two tags that pull against each other, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagConflict {
    /// A stable id, e.g. `activation-vs-contact`.
    pub id: String,
    /// One tag (`full-time`, or `aim:contact` / `aim:homecoming` for the
    /// children's authority's goals).
    pub tag: String,
    /// The tag it pulls against.
    pub against: String,
    /// Why, in plain language.
    pub why: String,
}

/// What the checks allow; configurable per municipality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinationPolicy {
    /// Most meetings with different professionals in one week before the
    /// parents are overwhelmed.
    pub max_meetings_per_week: usize,
    /// The rule table of tags that pull against each other.
    pub tag_conflicts: Vec<TagConflict>,
}

impl Default for CoordinationPolicy {
    fn default() -> Self {
        let rule = |id: &str, tag: &str, against: &str, why: &str| TagConflict {
            id: id.into(),
            tag: tag.into(),
            against: against.into(),
            why: why.into(),
        };
        CoordinationPolicy {
            max_meetings_per_week: 3,
            tag_conflicts: vec![
                rule(
                    "activation-vs-contact",
                    "full-time",
                    "aim:contact",
                    "a full-time activation plan leaves no room for the contact with the child",
                ),
                rule(
                    "inpatient-vs-homecoming",
                    "inpatient",
                    "aim:homecoming",
                    "inpatient treatment and preparing a homecoming pull in different directions",
                ),
                rule(
                    "relocation-vs-contact",
                    "relocation",
                    "aim:contact",
                    "a move far away makes the contact schedule hard to keep",
                ),
            ],
        }
    }
}

/// Which check found a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConflictKind {
    /// Appointments of different sectors overlap.
    AppointmentsOverlap,
    /// Too many meetings with different professionals in one week.
    TooManyMeetings,
    /// Goals or activities of different sectors pull against each other.
    GoalsPullApart,
    /// The plan is past a § 79 revision date.
    RevisionOverdue,
    /// Several sector contacts and no coordinator.
    NoCoordinator,
}

/// One conflict, naming the items involved (`appointments/{id}`,
/// `sectorPlans/{plan}/activities/{id}`, `plans/{plan}/goals/{id}`,
/// `sectorContacts/{id}`, `obligations/{rule}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// What kind.
    pub kind: ConflictKind,
    /// The parent it concerns, if one.
    pub custody_holder: Option<PartyId>,
    /// The items involved.
    pub items: Vec<String>,
    /// What is wrong, in plain language.
    pub message: String,
}

/// Every conflict in a case: `evaluation` is the rules' evaluation of the same
/// case (for the § 79 dates); `has_coordinator` says whether a coordinator is named.
pub fn check(
    case: &Case,
    evaluation: &Evaluation,
    policy: &CoordinationPolicy,
    has_coordinator: bool,
) -> Vec<Conflict> {
    let authority: Vec<&Plan> = case.plans.iter().collect();
    let scope = Scope { holders: None, authority_plans: &authority };
    run(case, &scope, Some(evaluation), policy, has_coordinator)
}

/// The conflicts of one § 78 holistic plan: only the parents it covers, with
/// its own goals as the children's authority's (the plan replaces the § 77
/// plan), and its coordinator. Without an evaluation the § 79 dates are not
/// checked (they depend on the day, not on the plan).
pub fn check_plan(
    case: &Case,
    plan: &Plan,
    evaluation: Option<&Evaluation>,
    policy: &CoordinationPolicy,
) -> Vec<Conflict> {
    let authority = [plan];
    let scope = Scope { holders: Some(&plan.covers), authority_plans: &authority };
    run(case, &scope, evaluation, policy, plan.coordinator.is_some())
}

/// What the checks look at.
struct Scope<'a> {
    /// Only these parents (none: all).
    holders: Option<&'a [PartyId]>,
    /// The children's authority's plans whose goals count.
    authority_plans: &'a [&'a Plan],
}

impl Scope<'_> {
    fn includes(&self, holder: &PartyId) -> bool {
        self.holders.is_none_or(|h| h.contains(holder))
    }
}

fn run(
    case: &Case,
    scope: &Scope<'_>,
    evaluation: Option<&Evaluation>,
    policy: &CoordinationPolicy,
    has_coordinator: bool,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    overlapping_appointments(case, scope, &mut out);
    too_many_meetings(case, scope, policy, &mut out);
    goals_pulling_apart(case, scope, policy, &mut out);
    if let Some(evaluation) = evaluation {
        revisions_overdue(evaluation, &mut out);
    }
    if !has_coordinator {
        no_coordinator(case, scope, &mut out);
    }
    out
}

pub(crate) fn sector_name(s: Sector) -> &'static str {
    match s {
        Sector::Jobcentre => "the jobcentre",
        Sector::Psychiatry => "psychiatry",
        Sector::AddictionTreatment => "addiction treatment",
        Sector::Health => "health care",
        Sector::Other => "another sector",
    }
}

/// An appointment's end: its own, or an hour after it starts.
pub(crate) fn end_of(start: Timestamp, end: Option<Timestamp>) -> Timestamp {
    end.unwrap_or(start + chrono::Duration::hours(1))
}

fn overlapping_appointments(case: &Case, scope: &Scope<'_>, out: &mut Vec<Conflict>) {
    // Per parent, sorted by start; a sweep keeps the ones still running.
    let mut by_holder: BTreeMap<&PartyId, Vec<_>> = BTreeMap::new();
    for a in case.appointments.iter().filter(|a| !a.cancelled && scope.includes(&a.custody_holder)) {
        by_holder.entry(&a.custody_holder).or_default().push(a);
    }
    for (holder, mut list) in by_holder {
        list.sort_by_key(|a| (a.start_time, a.appointment_id.clone()));
        let mut running: Vec<&bro_domain::Appointment> = Vec::new();
        for a in list {
            running.retain(|r| end_of(r.start_time, r.end_time) > a.start_time);
            for r in running.iter().filter(|r| r.sector != a.sector) {
                out.push(Conflict {
                    kind: ConflictKind::AppointmentsOverlap,
                    custody_holder: Some(holder.clone()),
                    items: vec![
                        format!("appointments/{}", r.appointment_id),
                        format!("appointments/{}", a.appointment_id),
                    ],
                    message: format!(
                        "{}'s meeting with {} overlaps a meeting with {}",
                        holder,
                        sector_name(r.sector),
                        sector_name(a.sector)
                    ),
                });
            }
            running.push(a);
        }
    }
}

/// A parent's ISO week: (parent, year, week).
type Week<'a> = (&'a PartyId, i32, u32);

fn too_many_meetings(case: &Case, scope: &Scope<'_>, policy: &CoordinationPolicy, out: &mut Vec<Conflict>) {
    // Per parent and ISO week: the distinct professionals met.
    let mut weeks: BTreeMap<Week<'_>, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for a in case.appointments.iter().filter(|a| !a.cancelled && scope.includes(&a.custody_holder)) {
        let week = a.start_time.iso_week();
        let who = match &a.professional {
            Some(p) if !p.display_name.is_empty() => format!("{:?}/{}", a.sector, p.display_name),
            _ => format!("{:?}/{}", a.sector, a.organisation.display_name),
        };
        let entry = weeks.entry((&a.custody_holder, week.year(), week.week())).or_default();
        entry.0.insert(who);
        entry.1.push(format!("appointments/{}", a.appointment_id));
    }
    for ((holder, year, week), (professionals, items)) in weeks {
        if professionals.len() > policy.max_meetings_per_week {
            out.push(Conflict {
                kind: ConflictKind::TooManyMeetings,
                custody_holder: Some(holder.clone()),
                items,
                message: format!(
                    "{holder} meets {} different professionals in week {week} of {year}; more than {} overwhelms the parents",
                    professionals.len(),
                    policy.max_meetings_per_week
                ),
            });
        }
    }
}

/// A tagged item of some plan, with its owner.
struct Tagged {
    item: String,
    /// The parents it concerns; empty: every parent of the plan.
    holders: Vec<PartyId>,
    sector: Option<Sector>,
    tags: BTreeSet<String>,
}

fn tagged_items(case: &Case, scope: &Scope<'_>) -> Vec<Tagged> {
    let mut out = Vec::new();
    for plan in case.sector_plans.iter().filter(|p| scope.includes(&p.custody_holder)) {
        for goal in &plan.goals {
            out.push(Tagged {
                item: format!("sectorPlans/{}/goals/{}", plan.plan_id, goal.goal_id),
                holders: vec![plan.custody_holder.clone()],
                sector: Some(plan.sector),
                tags: goal.tags.iter().cloned().collect(),
            });
        }
        for activity in &plan.activities {
            let mut tags: BTreeSet<String> = activity.tags.iter().cloned().collect();
            if activity.minutes_per_week >= FULL_TIME_MINUTES {
                tags.insert("full-time".into());
            }
            out.push(Tagged {
                item: format!("sectorPlans/{}/activities/{}", plan.plan_id, activity.activity_id),
                holders: vec![plan.custody_holder.clone()],
                sector: Some(plan.sector),
                tags,
            });
        }
    }
    // The children's authority's own plans: the goal's aim is its tag.
    for plan in scope.authority_plans {
        for goal in &plan.goals {
            let aim = match goal.aim {
                Some(GoalAim::Contact) => "aim:contact",
                Some(GoalAim::Homecoming) => "aim:homecoming",
                None => continue,
            };
            out.push(Tagged {
                item: format!("plans/{}/goals/{}", plan.plan_id, goal.goal_id),
                holders: goal.custody_holders.clone(),
                sector: goal.owner_sector,
                tags: BTreeSet::from([aim.to_owned()]),
            });
        }
    }
    out
}

fn goals_pulling_apart(case: &Case, scope: &Scope<'_>, policy: &CoordinationPolicy, out: &mut Vec<Conflict>) {
    let items = tagged_items(case, scope);
    for rule in &policy.tag_conflicts {
        for a in items.iter().filter(|i| i.tags.contains(&rule.tag)) {
            for b in items.iter().filter(|i| i.tags.contains(&rule.against)) {
                // Different owners, and a parent in common (or a goal of the whole plan).
                let same_parent =
                    a.holders.is_empty() || b.holders.is_empty() || a.holders.iter().any(|h| b.holders.contains(h));
                if a.item == b.item || a.sector == b.sector || !same_parent {
                    continue;
                }
                let single = |t: &Tagged| if t.holders.len() == 1 { t.holders.first().cloned() } else { None };
                out.push(Conflict {
                    kind: ConflictKind::GoalsPullApart,
                    custody_holder: single(a).or_else(|| single(b)),
                    items: vec![a.item.clone(), b.item.clone()],
                    message: format!("{} ({})", rule.why, rule.id),
                });
            }
        }
    }
}

fn revisions_overdue(evaluation: &Evaluation, out: &mut Vec<Conflict>) {
    for o in &evaluation.obligations {
        if o.rule.as_str().starts_with("bl79") && o.status == Status::Overdue {
            out.push(Conflict {
                kind: ConflictKind::RevisionOverdue,
                custody_holder: o.custody_holder.clone(),
                items: vec![format!("obligations/{}", o.rule.as_str())],
                message: format!(
                    "the plan is past its § 79 revision date{}: {}",
                    o.due.map(|d| format!(" ({d})")).unwrap_or_default(),
                    o.duty
                ),
            });
        }
    }
}

fn no_coordinator(case: &Case, scope: &Scope<'_>, out: &mut Vec<Conflict>) {
    let mut by_holder: BTreeMap<&PartyId, (BTreeSet<&'static str>, Vec<String>)> = BTreeMap::new();
    for c in case.sector_contacts.iter().filter(|c| c.end_date.is_none() && scope.includes(&c.custody_holder)) {
        let entry = by_holder.entry(&c.custody_holder).or_default();
        entry.0.insert(sector_name(c.sector));
        entry.1.push(format!("sectorContacts/{}", c.contact_id));
    }
    for (holder, (sectors, items)) in by_holder {
        if sectors.len() >= 2 {
            out.push(Conflict {
                kind: ConflictKind::NoCoordinator,
                custody_holder: Some(holder.clone()),
                items,
                message: format!(
                    "{holder} has contacts in {} sectors and nobody coordinates: name one coordinator as the parents' contact",
                    sectors.len()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use bro_domain::{
        Appointment, CaseId, ContactPerson, Event, EventKind, Goal, Organisation, Plan, PlanKind, SectorActivity,
        SectorContact, SectorPlan,
    };

    use super::*;

    fn party(id: &str) -> PartyId {
        PartyId::parse("p", id).expect("id")
    }

    fn at(day: u32, hour: u32, minute: u32) -> Timestamp {
        chrono::NaiveDate::from_ymd_opt(2026, 3, day)
            .expect("date")
            .and_hms_opt(hour, minute, 0)
            .expect("time")
            .and_utc()
    }

    fn base_case() -> Case {
        let on = chrono::NaiveDate::from_ymd_opt(2026, 1, 10).expect("date");
        let holders = [party("parent-1"), party("parent-2")];
        Case::opened_for(CaseId::parse("c", "c1").expect("id"), &holders, "12345678", on).expect("opens")
    }

    fn meeting(id: &str, holder: &str, sector: Sector, who: &str, start: Timestamp, minutes: i64) -> Appointment {
        Appointment {
            appointment_id: id.into(),
            custody_holder: party(holder),
            sector,
            organisation: Organisation { display_name: format!("{sector:?}"), ..Default::default() },
            professional: Some(ContactPerson { display_name: who.into(), ..Default::default() }),
            title: "Samtale".into(),
            start_time: start,
            end_time: Some(start + chrono::Duration::minutes(minutes)),
            location: String::new(),
            cancelled: false,
            cancellation_reason: String::new(),
        }
    }

    fn contact(id: &str, holder: &str, sector: Sector) -> SectorContact {
        SectorContact {
            contact_id: id.into(),
            custody_holder: party(holder),
            sector,
            organisation: Organisation::default(),
            contact_person: None,
            system_of_record: String::new(),
            start_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 12).expect("date"),
            end_date: None,
        }
    }

    fn evaluation() -> Evaluation {
        crate::evaluate(
            &[party("parent-1"), party("parent-2")],
            &[],
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("d"),
        )
    }

    fn kinds(conflicts: &[Conflict]) -> Vec<(ConflictKind, Vec<String>)> {
        conflicts.iter().map(|c| (c.kind, c.items.clone())).collect()
    }

    #[test]
    fn overlapping_meetings_of_different_sectors_clash_for_the_same_parent_only() {
        let mut case = base_case();
        case.appointments = vec![
            meeting("job-1", "parent-1", Sector::Jobcentre, "Jens", at(2, 10, 0), 60),
            meeting("psy-1", "parent-1", Sector::Psychiatry, "Pia", at(2, 10, 30), 60),
            // Back to back is no overlap; the other parent's meeting is not hers; a cancelled one is gone.
            meeting("psy-2", "parent-1", Sector::Psychiatry, "Pia", at(2, 11, 30), 60),
            meeting("job-2", "parent-2", Sector::Jobcentre, "Jens", at(2, 10, 0), 60),
            Appointment {
                cancelled: true,
                ..meeting("add-1", "parent-1", Sector::AddictionTreatment, "Ole", at(2, 10, 15), 30)
            },
            // Same sector overlapping is that sector's own business.
            meeting("job-3", "parent-1", Sector::Jobcentre, "Jens", at(2, 10, 45), 30),
        ];
        let conflicts = check(&case, &evaluation(), &CoordinationPolicy::default(), true);
        let overlaps: Vec<_> =
            kinds(&conflicts).into_iter().filter(|(k, _)| *k == ConflictKind::AppointmentsOverlap).collect();
        assert_eq!(
            overlaps.iter().map(|(_, items)| items.join(" & ")).collect::<Vec<_>>(),
            ["appointments/job-1 & appointments/psy-1", "appointments/psy-1 & appointments/job-3"]
        );
        assert!(conflicts[0].message.contains("the jobcentre") && conflicts[0].message.contains("psychiatry"));
    }

    #[test]
    fn too_many_professionals_in_one_week_is_reported_by_the_policys_limit() {
        let mut case = base_case();
        case.appointments = (0..4)
            .map(|i| meeting(&format!("m-{i}"), "parent-1", Sector::Other, &format!("Person {i}"), at(2 + i, 9, 0), 30))
            .chain([meeting("m-next-week", "parent-1", Sector::Other, "Person 9", at(10, 9, 0), 30)])
            .collect();
        let strict = CoordinationPolicy { max_meetings_per_week: 3, ..CoordinationPolicy::default() };
        let found = check(&case, &evaluation(), &strict, true);
        let too_many: Vec<_> = found.iter().filter(|c| c.kind == ConflictKind::TooManyMeetings).collect();
        assert_eq!(too_many.len(), 1);
        assert_eq!(too_many[0].items.len(), 4, "the week's four meetings, not next week's");
        let lenient = CoordinationPolicy { max_meetings_per_week: 4, ..CoordinationPolicy::default() };
        assert!(check(&case, &evaluation(), &lenient, true).iter().all(|c| c.kind != ConflictKind::TooManyMeetings));
    }

    #[test]
    fn full_time_activation_pulls_against_the_contact_goal() {
        let mut case = base_case();
        case.sector_plans = vec![SectorPlan {
            plan_id: "jobplan".into(),
            custody_holder: party("parent-1"),
            sector: Sector::Jobcentre,
            organisation: Organisation::default(),
            contact_person: None,
            system_of_record: String::new(),
            start_date: None,
            end_date: None,
            goals: vec![],
            activities: vec![
                SectorActivity { activity_id: "praktik".into(), minutes_per_week: 37 * 60, ..Default::default() },
                SectorActivity { activity_id: "kursus".into(), minutes_per_week: 6 * 60, ..Default::default() },
            ],
        }];
        case.plans = vec![Plan {
            plan_id: "bl77-1".into(),
            kind: PlanKind::Bl77,
            prepared_on: chrono::NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
            covers: vec![],
            goals: vec![Goal { goal_id: "samvaer".into(), aim: Some(GoalAim::Contact), ..Default::default() }],
            coordinator: None,
        }];
        let found = check(&case, &evaluation(), &CoordinationPolicy::default(), true);
        let pulls: Vec<_> = found.iter().filter(|c| c.kind == ConflictKind::GoalsPullApart).collect();
        assert_eq!(pulls.len(), 1, "{pulls:#?}");
        assert_eq!(pulls[0].items, ["sectorPlans/jobplan/activities/praktik", "plans/bl77-1/goals/samvaer"]);
        assert!(pulls[0].message.contains("activation-vs-contact"));
        // An empty rule table finds nothing: the table is the whole rule.
        let none = CoordinationPolicy { tag_conflicts: vec![], ..CoordinationPolicy::default() };
        assert!(check(&case, &evaluation(), &none, true).iter().all(|c| c.kind != ConflictKind::GoalsPullApart));
    }

    #[test]
    fn several_sectors_without_a_coordinator_are_reported() {
        let mut case = base_case();
        case.sector_contacts = vec![
            contact("k1", "parent-1", Sector::Jobcentre),
            contact("k2", "parent-1", Sector::Psychiatry),
            contact("k3", "parent-2", Sector::Jobcentre),
        ];
        let found = check(&case, &evaluation(), &CoordinationPolicy::default(), false);
        assert_eq!(
            kinds(&found),
            [(ConflictKind::NoCoordinator, vec!["sectorContacts/k1".to_owned(), "sectorContacts/k2".to_owned()])]
        );
        assert!(check(&case, &evaluation(), &CoordinationPolicy::default(), true).is_empty(), "a coordinator is named");
    }

    #[test]
    fn an_overdue_revision_is_a_conflict() {
        let on = |d: &str| d.parse::<chrono::NaiveDate>().expect("date");
        let holders = [party("parent-1")];
        let events = vec![
            Event {
                occurred_on: on("2026-01-15"),
                source: None,
                kind: EventKind::PlacementStarted { basis: bro_domain::PlacementBasis::Bl46, site_kind: None },
            },
            Event {
                occurred_on: on("2026-01-20"),
                source: None,
                kind: EventKind::PlanPrepared {
                    plan_id: "p1".into(),
                    kind: PlanKind::Bl77,
                    covers: vec![],
                    goals: vec![],
                },
            },
        ];
        let evaluation = crate::evaluate(&holders, &events, on("2026-06-01"));
        let found = check(&base_case(), &evaluation, &CoordinationPolicy::default(), true);
        assert!(
            found.iter().any(|c| c.kind == ConflictKind::RevisionOverdue && c.items[0].starts_with("obligations/bl79")),
            "{found:#?}"
        );
    }
}
