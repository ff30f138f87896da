//! Writes a § 78 holistic plan as the jobcentre may see it (its consented
//! view) as a Momentum-style `helhedsplan` document: the citizens it covers
//! by CPR number, the shared goals, the coordinator, the jobcentre's own
//! meetings, the times the citizens are taken elsewhere, the conflicts and
//! the agreements. A notice that distribution has ended carries only the
//! plan, its version and status, and the citizens.

pub use bro_adapter_sdk::holistic::MAX_VIEW_LIST;
use bro_adapter_sdk::holistic::{capped, check_items, sector_word};
use bro_adapter_sdk::proto::{self, GoalAim, HolisticPlanState, PersonIdentifierKind, PlanConflictKind, Sector};
use bro_adapter_sdk::{AdapterError, Level, cpr, invalid, log};
use serde::Serialize;

use crate::time;
use crate::write::{Citizen, Meeting, Person, citizen_of, external_id, name_of, person};

/// The document, in the order its fields are written (the README's order).
/// The lists are `None` in a notice, so that it carries none of them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(rename = "type")]
    kind: &'static str,
    plan: String,
    plan_id: String,
    version: i64,
    status: &'static str,
    distribution_ended: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    prepared_on: String,
    citizens: Vec<Citizen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinator: Option<Coordinator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    goals: Option<Vec<Goal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meetings: Option<Vec<PlanMeeting>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    busy: Option<Vec<Busy>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conflicts: Option<Vec<Conflict>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agreements: Option<Vec<Agreement>>,
}

/// The coordinator: a reachable person (as a citizen document's caseworker), their organisation and sector.
#[derive(Serialize)]
struct Coordinator {
    #[serde(flatten)]
    person: Person,
    #[serde(skip_serializing_if = "String::is_empty")]
    organisation: String,
    sector: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Goal {
    goal_id: String,
    text: String,
    /// `null` when the goal does not say (written, not left out).
    aim: Option<&'static str>,
    owner_sector: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    owner: String,
    sub_goals: Vec<String>,
    citizens: Vec<String>,
}

#[derive(Serialize)]
struct PlanMeeting {
    cpr: String,
    #[serde(flatten)]
    meeting: Meeting,
}

#[derive(Serialize)]
struct Busy {
    cpr: String,
    start: String,
    end: String,
}

#[derive(Serialize)]
struct Conflict {
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    cpr: String,
    items: Vec<String>,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Agreement {
    cpr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    agreed_on: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    withdrawn_on: String,
    shared_with: Vec<String>,
}

/// The plan's state as the document's `status` (unspecified is refused
/// before, by `holistic::checked`).
fn status(state: HolisticPlanState) -> &'static str {
    match state {
        HolisticPlanState::Proposed | HolisticPlanState::Unspecified => "foreslået",
        HolisticPlanState::InForce => "gældende",
        HolisticPlanState::AgreementWithdrawn => "samtykke-trukket-tilbage",
        HolisticPlanState::Superseded => "erstattet",
    }
}

fn aim_word(aim: i32, field: &str) -> Result<Option<&'static str>, AdapterError> {
    match GoalAim::try_from(aim) {
        Ok(GoalAim::Unspecified) => Ok(None),
        Ok(GoalAim::Homecoming) => Ok(Some("hjemgivelse")),
        Ok(GoalAim::Contact) => Ok(Some("samvær")),
        Err(_) => Err(invalid(field, "is not a goal aim")),
    }
}

fn conflict_word(kind: i32, field: &str) -> Result<&'static str, AdapterError> {
    match PlanConflictKind::try_from(kind) {
        Ok(PlanConflictKind::AppointmentsOverlap) => Ok("overlappende-aftaler"),
        Ok(PlanConflictKind::TooManyMeetings) => Ok("for-mange-møder"),
        Ok(PlanConflictKind::GoalsPullApart) => Ok("modsatrettede-mål"),
        Ok(PlanConflictKind::RevisionOverdue) => Ok("revision-overskredet"),
        Ok(PlanConflictKind::NoCoordinator) => Ok("ingen-koordinator"),
        Ok(PlanConflictKind::Unspecified) | Err(_) => Err(invalid(field, "the kind of conflict is required")),
    }
}

/// The citizens the plan covers, in order, each with a CPR number.
struct Citizens {
    list: Vec<(proto::PersonIdentifier, String)>,
}

impl Citizens {
    fn covered(batch: &proto::AdapterBatch, plan: &proto::HolisticPlan) -> Result<Citizens, AdapterError> {
        if plan.covers.is_empty() {
            return Err(invalid("holisticPlan.covers", "the plan covers no citizen"));
        }
        capped(&plan.covers, "holisticPlan.covers")?;
        let mut list: Vec<(proto::PersonIdentifier, String)> = Vec::with_capacity(plan.covers.len());
        for (i, reference) in plan.covers.iter().enumerate() {
            let field = format!("holisticPlan.covers[{i}]");
            let who = citizen_of(batch, reference, &field)?;
            if who.kind() != PersonIdentifierKind::Cpr {
                return Err(invalid(
                    field,
                    "names a person without a CPR number; Momentum identifies citizens by CPR number",
                ));
            }
            let cpr = cpr::normalise(&who.value).ok_or_else(|| invalid(&field, "the CPR number is not ten digits"))?;
            if list.iter().any(|(_, c)| *c == cpr) {
                return Err(invalid(field, "names a citizen the plan already covers"));
            }
            list.push((who, cpr));
        }
        Ok(Citizens { list })
    }

    /// The CPR number of a covered citizen a reference names.
    fn cpr(&self, batch: &proto::AdapterBatch, reference: &str, field: &str) -> Result<String, AdapterError> {
        let who = citizen_of(batch, reference, field)?;
        self.list
            .iter()
            .find(|(p, _)| *p == who)
            .map(|(_, cpr)| cpr.clone())
            .ok_or_else(|| invalid(field, "names a citizen the plan does not cover"))
    }

    /// The document's citizens, named from `parties`.
    fn written(&self, batch: &proto::AdapterBatch) -> Vec<Citizen> {
        self.list.iter().map(|(who, cpr)| Citizen { cpr: cpr.clone(), name: name_of(batch, who) }).collect()
    }
}

fn instant(t: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<String>, AdapterError> {
    match t {
        None => Ok(None),
        Some(t) if time::in_range(t) => Ok(Some(time::format_datetime(t))),
        Some(_) => Err(invalid(field, "is outside the years 1 to 9999")),
    }
}

/// A start and an end after it, both required.
fn period(
    start: Option<&prost_types::Timestamp>,
    end: Option<&prost_types::Timestamp>,
    at: &str,
) -> Result<(String, String), AdapterError> {
    let s =
        instant(start, &format!("{at}.startTime"))?.ok_or_else(|| invalid(format!("{at}.startTime"), "is required"))?;
    let e = instant(end, &format!("{at}.endTime"))?.ok_or_else(|| invalid(format!("{at}.endTime"), "is required"))?;
    if end.map(|t| (t.seconds, t.nanos)) <= start.map(|t| (t.seconds, t.nanos)) {
        return Err(invalid(format!("{at}.endTime"), "is not after the start"));
    }
    Ok((s, e))
}

fn coordinator(c: &proto::Coordinator) -> Result<Coordinator, AdapterError> {
    Ok(Coordinator {
        person: c.person.as_ref().and_then(|p| person(p, true)).unwrap_or_default(),
        organisation: c.organisation.as_ref().map(|o| o.display_name.clone()).unwrap_or_default(),
        sector: sector_word(c.sector, "holisticPlan.coordinator.sector")?,
    })
}

fn goals(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    citizens: &Citizens,
) -> Result<Vec<Goal>, AdapterError> {
    capped(&plan.goals, "holisticPlan.goals")?;
    let mut out: Vec<Goal> = Vec::with_capacity(plan.goals.len());
    for (i, g) in plan.goals.iter().enumerate() {
        let at = format!("holisticPlan.goals[{i}]");
        let goal_id = external_id(&g.goal_id, &format!("{at}.goalId"))?;
        if out.iter().any(|h| h.goal_id == goal_id) {
            return Err(invalid(format!("{at}.goalId"), "is used by an earlier goal"));
        }
        // No custody holders: the goal concerns every citizen the plan covers.
        let concerned = if g.custody_holders.is_empty() {
            citizens.list.iter().map(|(_, cpr)| cpr.clone()).collect()
        } else {
            let mut list = Vec::with_capacity(g.custody_holders.len());
            for (j, reference) in g.custody_holders.iter().enumerate() {
                let cpr = citizens.cpr(batch, reference, &format!("{at}.custodyHolders[{j}]"))?;
                if !list.contains(&cpr) {
                    list.push(cpr);
                }
            }
            list
        };
        capped(&g.sub_goals, &format!("{at}.subGoals"))?;
        out.push(Goal {
            goal_id,
            text: g.change_in_parents.clone(),
            aim: aim_word(g.aim, &format!("{at}.aim"))?,
            owner_sector: sector_word(g.owner_sector, &format!("{at}.ownerSector"))?,
            owner: g.owner.clone(),
            sub_goals: g.sub_goals.clone(),
            citizens: concerned,
        });
    }
    Ok(out)
}

/// The jobcentre's own appointments as meetings, in the plan's order; other
/// sectors' are skipped (the gateway sends none; the jobcentre sees only busy periods).
fn meetings(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    citizens: &Citizens,
) -> Result<Vec<PlanMeeting>, AdapterError> {
    capped(&plan.appointments, "holisticPlan.appointments")?;
    let mut out: Vec<PlanMeeting> = Vec::new();
    let mut skipped = 0;
    for (i, a) in plan.appointments.iter().enumerate() {
        if a.sector() != Sector::Jobcentre {
            skipped += 1;
            continue;
        }
        let at = format!("holisticPlan.appointments[{i}]");
        let meeting_id = external_id(&a.appointment_id, &format!("{at}.appointmentId"))?;
        if out.iter().any(|m| m.meeting.meeting_id == meeting_id) {
            return Err(invalid(format!("{at}.appointmentId"), "is used by an earlier appointment"));
        }
        let start = instant(a.start_time.as_ref(), &format!("{at}.startTime"))?
            .ok_or_else(|| invalid(format!("{at}.startTime"), "is required"))?;
        // An appointment recorded without its end is written without one.
        let end = instant(a.end_time.as_ref(), &format!("{at}.endTime"))?.unwrap_or_default();
        if a.end_time.is_some()
            && a.end_time.map(|t| (t.seconds, t.nanos)) <= a.start_time.map(|t| (t.seconds, t.nanos))
        {
            return Err(invalid(format!("{at}.endTime"), "is not after the start"));
        }
        out.push(PlanMeeting {
            cpr: citizens.cpr(batch, &a.custody_holder, &format!("{at}.custodyHolder"))?,
            meeting: Meeting {
                meeting_id,
                title: a.title.clone(),
                start,
                end,
                location: a.location.clone(),
                with: a.professional.as_ref().and_then(|p| person(p, false)),
                status: if a.cancelled { "cancelled" } else { "planned" },
                cancellation_reason: if a.cancelled { a.cancellation_reason.clone() } else { String::new() },
            },
        });
    }
    if skipped > 0 {
        log(Level::Info, &format!("skipped {skipped} appointment(s) of another sector in the plan view"));
    }
    Ok(out)
}

fn busy(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    citizens: &Citizens,
) -> Result<Vec<Busy>, AdapterError> {
    capped(&plan.busy_periods, "holisticPlan.busyPeriods")?;
    let mut out = Vec::with_capacity(plan.busy_periods.len());
    for (i, b) in plan.busy_periods.iter().enumerate() {
        let at = format!("holisticPlan.busyPeriods[{i}]");
        let (start, end) = period(b.start_time.as_ref(), b.end_time.as_ref(), &at)?;
        out.push(Busy { cpr: citizens.cpr(batch, &b.custody_holder, &format!("{at}.custodyHolder"))?, start, end });
    }
    Ok(out)
}

fn conflicts(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    citizens: &Citizens,
) -> Result<Vec<Conflict>, AdapterError> {
    capped(&plan.conflicts, "holisticPlan.conflicts")?;
    let mut out = Vec::with_capacity(plan.conflicts.len());
    for (i, c) in plan.conflicts.iter().enumerate() {
        let at = format!("holisticPlan.conflicts[{i}]");
        check_items(&c.items, &at)?;
        let cpr = if c.custody_holder.is_empty() {
            String::new()
        } else {
            citizens.cpr(batch, &c.custody_holder, &format!("{at}.custodyHolder"))?
        };
        out.push(Conflict {
            kind: conflict_word(c.kind, &format!("{at}.kind"))?,
            cpr,
            items: c.items.clone(),
            message: c.message.clone(),
        });
    }
    Ok(out)
}

fn agreements(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    citizens: &Citizens,
) -> Result<Vec<Agreement>, AdapterError> {
    capped(&plan.agreements, "holisticPlan.agreements")?;
    let mut out = Vec::with_capacity(plan.agreements.len());
    for (i, a) in plan.agreements.iter().enumerate() {
        let at = format!("holisticPlan.agreements[{i}]");
        capped(&a.shared_with, &format!("{at}.sharedWith"))?;
        out.push(Agreement {
            cpr: citizens.cpr(batch, &a.custody_holder, &format!("{at}.custodyHolder"))?,
            agreed_on: time::date_text(a.agreed_on.as_ref(), &format!("{at}.agreedOn"), false)?,
            withdrawn_on: time::date_text(a.withdrawn_on.as_ref(), &format!("{at}.withdrawnOn"), false)?,
            shared_with: a.shared_with.clone(),
        });
    }
    Ok(out)
}

/// Renders a batch carrying a holistic plan as a `helhedsplan` document.
pub fn write(batch: &proto::AdapterBatch) -> Result<Vec<u8>, AdapterError> {
    let Some(plan) = batch.holistic_plan.as_ref() else {
        return Err(invalid("holisticPlan", "is required"));
    };
    let sent = bro_adapter_sdk::holistic::checked(batch, plan)?;
    let citizens = Citizens::covered(batch, plan)?;
    let mut document = Document {
        kind: "helhedsplan",
        plan: plan.name.clone(),
        plan_id: sent.plan_id,
        version: plan.version,
        status: status(sent.state),
        distribution_ended: plan.distribution_ended,
        prepared_on: String::new(),
        citizens: citizens.written(batch),
        coordinator: None,
        goals: None,
        meetings: None,
        busy: None,
        conflicts: None,
        agreements: None,
    };
    // A notice: the recipient stops relying on its copy; nothing else is written.
    if !plan.distribution_ended {
        document.prepared_on = time::date_text(plan.prepared_on.as_ref(), "holisticPlan.preparedOn", true)?;
        document.coordinator = plan.coordinator.as_ref().map(coordinator).transpose()?;
        document.goals = Some(goals(batch, plan, &citizens)?);
        document.meetings = Some(meetings(batch, plan, &citizens)?);
        document.busy = Some(busy(batch, plan, &citizens)?);
        document.conflicts = Some(conflicts(batch, plan, &citizens)?);
        document.agreements = Some(agreements(batch, plan, &citizens)?);
    }
    let mut out = serde_json::to_vec_pretty(&document).map_err(|e| AdapterError::Internal(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}
