//! Writes canonical jobcentre events as a Momentum citizen document: the
//! batch's jobcentre plan (one at most; a later record of the same plan
//! replaces an earlier one), its jobcentre appointments and cancellations as
//! meetings, and the citizen they are for, resolved through `subjects` and
//! `parties`. Other sectors' plans and appointments, and every other kind,
//! are skipped and logged.

use bro_adapter_sdk::proto::{self, PersonIdentifierKind, case_event::Kind};
use bro_adapter_sdk::{AdapterError, Level, cpr, invalid, log, subjects};
use serde::Serialize;

use crate::ids::{self, is_external_id};
use crate::json::{is_digits, is_tag, quoted};
use crate::time::{self, Ymd};
use crate::{ACTIVITY_TYPES, known_types};

/// The document, in the order its fields are written (the README's order);
/// empty optional fields are left out rather than written empty.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    message_id: String,
    changed_at: String,
    citizen: Citizen,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobcenter: Option<Jobcenter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caseworker: Option<Person>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    meetings: Vec<Meeting>,
}

#[derive(Serialize)]
pub(crate) struct Citizen {
    pub(crate) cpr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) name: String,
}

#[derive(Serialize)]
struct Jobcenter {
    name: String,
    cvr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ean: String,
}

#[derive(Serialize, Default)]
pub(crate) struct Person {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    role: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    phone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    email: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    plan_id: String,
    valid_from: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    valid_to: String,
    goals: Vec<Goal>,
    activities: Vec<Activity>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Goal {
    goal_id: String,
    text: String,
    tags: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    activity_id: String,
    title: String,
    #[serde(rename = "type")]
    kind: String,
    start_date: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    end_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hours_per_week: Option<serde_json::Number>,
    goal_ids: Vec<String>,
    tags: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meeting {
    pub(crate) meeting_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) start: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) end: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) with: Option<Person>,
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) cancellation_reason: String,
}

/// Weekly hours from minutes: whole hours as an integer, else two decimals
/// (close enough that reading them back gives the same minutes).
fn hours(minutes: i32) -> Option<serde_json::Number> {
    if minutes <= 0 {
        return None;
    }
    if minutes % 60 == 0 {
        return Some(serde_json::Number::from(minutes / 60));
    }
    serde_json::Number::from_f64((f64::from(minutes) / 60.0 * 100.0).round() / 100.0)
}

fn checked_tags(tags: &[String], field: &str) -> Result<Vec<String>, AdapterError> {
    for (i, t) in tags.iter().enumerate() {
        if !is_tag(t) {
            return Err(invalid(format!("{field}[{i}]"), format!("{} is not a tag", quoted(t))));
        }
    }
    Ok(tags.to_vec())
}

/// An id another system assigned, as bro accepts it, or a refusal at `field`.
pub(crate) fn external_id(id: &str, field: &str) -> Result<String, AdapterError> {
    ids::external_id(id, field).map(str::to_owned)
}

/// The citizen a custody-holder reference (`subjects/N` or a party id) names.
pub(crate) fn citizen_of(
    batch: &proto::AdapterBatch,
    reference: &str,
    field: &str,
) -> Result<proto::PersonIdentifier, AdapterError> {
    subjects::person_of(batch, reference, field, quoted)
}

/// The display name of the party that is `who`; empty when the batch names none.
pub(crate) fn name_of(batch: &proto::AdapterBatch, who: &proto::PersonIdentifier) -> String {
    subjects::party(batch, who).map(|p| p.display_name.clone()).unwrap_or_default()
}

/// The plan, refused where the reader would refuse it (types, tags, ids, dates).
fn plan(p: &proto::SectorPlan, at: &str) -> Result<Plan, AdapterError> {
    let mut goals = Vec::with_capacity(p.goals.len());
    for (i, g) in p.goals.iter().enumerate() {
        let field = format!("{at}.goals[{i}]");
        goals.push(Goal {
            goal_id: external_id(&g.goal_id, &format!("{field}.goalId"))?,
            text: g.text.clone(),
            tags: checked_tags(&g.tags, &format!("{field}.tags"))?,
        });
    }
    let mut activities = Vec::with_capacity(p.activities.len());
    for (i, a) in p.activities.iter().enumerate() {
        let field = format!("{at}.activities[{i}]");
        if !ACTIVITY_TYPES.contains(&a.kind.as_str()) {
            return Err(invalid(
                format!("{field}.kind"),
                format!("{} is not a Momentum activity type; expected {}", quoted(&a.kind), known_types()),
            ));
        }
        if !(0..=168 * 60).contains(&a.minutes_per_week) {
            return Err(invalid(format!("{field}.minutesPerWeek"), "is not between 0 and a week"));
        }
        activities.push(Activity {
            activity_id: external_id(&a.activity_id, &format!("{field}.activityId"))?,
            title: a.title.clone(),
            kind: a.kind.clone(),
            start_date: time::date_text(a.start_date.as_ref(), &format!("{field}.startDate"), true)?,
            end_date: time::date_text(a.end_date.as_ref(), &format!("{field}.endDate"), false)?,
            hours_per_week: hours(a.minutes_per_week),
            goal_ids: a.goal_ids.clone(),
            tags: checked_tags(&a.tags, &format!("{field}.tags"))?,
        });
    }
    Ok(Plan {
        plan_id: external_id(&p.plan_id, &format!("{at}.planId"))?,
        valid_from: time::date_text(p.start_date.as_ref(), &format!("{at}.startDate"), true)?,
        valid_to: time::date_text(p.end_date.as_ref(), &format!("{at}.endDate"), false)?,
        goals,
        activities,
    })
}

pub(crate) fn person(p: &proto::ContactPerson, reachable: bool) -> Option<Person> {
    let out = Person {
        name: p.display_name.clone(),
        role: p.role.clone(),
        phone: if reachable { p.phone.clone() } else { String::new() },
        email: if reachable { p.email.clone() } else { String::new() },
    };
    let empty = out.name.is_empty() && out.role.is_empty() && out.phone.is_empty() && out.email.is_empty();
    (!empty).then_some(out)
}

fn instant(t: Option<&prost_types::Timestamp>, field: &str) -> Result<String, AdapterError> {
    let t = t.ok_or_else(|| invalid(field, "is required for a planned meeting"))?;
    if !time::in_range(t) {
        return Err(invalid(field, "is outside the years 1 to 9999"));
    }
    Ok(time::format_datetime(t))
}

/// A scheduled appointment as a planned meeting: its times in Danish time with offset.
fn scheduled(a: &proto::Appointment, at: &str) -> Result<Meeting, AdapterError> {
    let start = instant(a.start_time.as_ref(), &format!("{at}.startTime"))?;
    let end = instant(a.end_time.as_ref(), &format!("{at}.endTime"))?;
    if a.end_time.map(|t| (t.seconds, t.nanos)) <= a.start_time.map(|t| (t.seconds, t.nanos)) {
        return Err(invalid(format!("{at}.endTime"), "is not after the start"));
    }
    Ok(Meeting {
        meeting_id: external_id(&a.appointment_id, &format!("{at}.appointmentId"))?,
        title: a.title.clone(),
        start,
        end,
        location: a.location.clone(),
        with: a.professional.as_ref().and_then(|p| person(p, false)),
        status: "planned",
        cancellation_reason: String::new(),
    })
}

/// The message's id: the batch's own when it has one, else derived from the
/// case and the sequences, else from the batch's bytes.
fn message_id(batch: &proto::AdapterBatch) -> String {
    if is_external_id(&batch.source_message_id) {
        return batch.source_message_id.clone();
    }
    let first = batch.events.first().map_or(0, |e| e.sequence);
    let last = batch.events.last().map_or(0, |e| e.sequence);
    if !batch.case.is_empty() {
        return ids::name_uuid(&format!("{}#{first}-{last}", batch.case));
    }
    let bytes = bro_adapter_sdk::prost::Message::encode_to_vec(batch);
    ids::name_uuid(&format!("batch:{}", sha1_smol::Sha1::from(bytes).digest()))
}

/// Renders a batch as a Momentum citizen document.
pub fn write(batch: &proto::AdapterBatch) -> Result<Vec<u8>, AdapterError> {
    // The citizen is whoever the plan and appointments are for; all must agree.
    let mut citizen: Option<(proto::PersonIdentifier, String)> = None;
    let mut sets_citizen = |reference: &str, field: String| -> Result<(), AdapterError> {
        let who = citizen_of(batch, reference, &field)?;
        match &citizen {
            Some((c, _)) if *c != who => Err(invalid(
                field,
                "is another citizen than the batch's other jobcentre events; a Momentum document is about one citizen",
            )),
            Some(_) => Ok(()),
            None => {
                citizen = Some((who, field));
                Ok(())
            }
        }
    };
    let mut the_plan: Option<(usize, &proto::SectorPlan)> = None;
    let mut meetings: Vec<Meeting> = Vec::new();
    let mut other_sector: Vec<&str> = Vec::new();
    let (mut used, mut skipped, mut latest) = (0usize, Vec::<&str>::new(), None::<Ymd>);
    // One pass: pick the jobcentre's events, merge meetings by id, note what is skipped.
    for (i, e) in batch.events.iter().enumerate() {
        let at = format!("events[{i}]");
        let mine = match &e.kind {
            Some(Kind::SectorPlanRecorded(r)) => {
                let p =
                    r.plan.as_ref().ok_or_else(|| invalid(format!("{at}.sectorPlanRecorded.plan"), "is missing"))?;
                if p.sector() != proto::Sector::Jobcentre {
                    skipped.push("another sector's plan");
                    continue;
                }
                sets_citizen(&p.custody_holder, format!("{at}.sectorPlanRecorded.plan.custodyHolder"))?;
                if let Some((j, earlier)) = the_plan
                    && earlier.plan_id != p.plan_id
                {
                    return Err(invalid(
                        format!("{at}.sectorPlanRecorded.plan.planId"),
                        format!("is another plan than events[{j}]'s; a Momentum document carries one plan"),
                    ));
                }
                the_plan = Some((i, p));
                true
            }
            Some(Kind::AppointmentScheduled(s)) => {
                let a = s
                    .appointment
                    .as_ref()
                    .ok_or_else(|| invalid(format!("{at}.appointmentScheduled.appointment"), "is missing"))?;
                if a.sector() != proto::Sector::Jobcentre {
                    other_sector.push(a.appointment_id.as_str());
                    skipped.push("another sector's appointment");
                    continue;
                }
                sets_citizen(&a.custody_holder, format!("{at}.appointmentScheduled.appointment.custodyHolder"))?;
                let m = scheduled(a, &format!("{at}.appointmentScheduled.appointment"))?;
                // A later record of the same appointment moves it.
                match meetings.iter_mut().find(|n| n.meeting_id == m.meeting_id) {
                    Some(n) => *n = m,
                    None => meetings.push(m),
                }
                true
            }
            // A cancellation has no sector: it is the jobcentre's unless another sector scheduled that id here.
            Some(Kind::AppointmentCancelled(c)) if !other_sector.contains(&c.appointment_id.as_str()) => {
                let id = external_id(&c.appointment_id, &format!("{at}.appointmentCancelled.appointmentId"))?;
                match meetings.iter_mut().find(|n| n.meeting_id == id) {
                    Some(n) => {
                        n.status = "cancelled";
                        n.cancellation_reason.clone_from(&c.reason);
                    }
                    None => meetings.push(Meeting {
                        meeting_id: id,
                        title: String::new(),
                        start: String::new(),
                        end: String::new(),
                        location: String::new(),
                        with: None,
                        status: "cancelled",
                        cancellation_reason: c.reason.clone(),
                    }),
                }
                true
            }
            Some(Kind::AppointmentCancelled(_)) => {
                skipped.push("another sector's cancellation");
                false
            }
            Some(_) => {
                skipped.push("an event of another kind");
                false
            }
            None => return Err(invalid(at, "no event kind is set")),
        };
        // changedAt is the latest legal date among the events written.
        if mine {
            used += 1;
            let day = time::canonical_date(&e.occurred_on.unwrap_or_default())
                .ok_or_else(|| invalid(format!("{at}.occurredOn"), "is not a date in the years 1900 to 9999"))?;
            latest = latest.max(Some(day));
        }
    }
    if !skipped.is_empty() {
        skipped.sort_unstable();
        skipped.dedup();
        log(
            Level::Info,
            &format!("skipped {} event(s) Momentum does not record: {}", batch.events.len() - used, skipped.join(", ")),
        );
    }
    let Some(latest) = latest else {
        return Err(invalid(
            "events",
            "no jobcentre sector_plan_recorded, appointment_scheduled or appointment_cancelled event; the jobcenter adapter writes the jobcentre's plan and meetings",
        ));
    };
    let (who, field) = match citizen {
        Some(c) => c,
        // Only cancellations: they name no custody holder, so the batch must have one person.
        None => match batch.subjects.as_slice() {
            [one] => (one.clone(), "subjects[0]".to_owned()),
            _ => {
                return Err(invalid(
                    "subjects",
                    "a cancellation alone does not say whose meeting it is; the batch needs exactly one subject",
                ));
            }
        },
    };
    if who.kind() != PersonIdentifierKind::Cpr {
        return Err(invalid(field, "names a person without a CPR number; Momentum identifies citizens by CPR number"));
    }
    let cpr = cpr::normalise(&who.value).ok_or_else(|| invalid(&field, "the CPR number is not ten digits"))?;
    let name = name_of(batch, &who);

    // The jobcentre: the plan's organisation, else the first jobcentre appointment's.
    let organisation_of = |e: &proto::CaseEvent| match &e.kind {
        Some(Kind::AppointmentScheduled(s)) => s
            .appointment
            .as_ref()
            .filter(|a| a.sector() == proto::Sector::Jobcentre)
            .and_then(|a| a.organisation.clone()),
        _ => None,
    };
    let (org, org_field) = match the_plan {
        Some((i, p)) => (p.organisation.clone(), format!("events[{i}].sectorPlanRecorded.plan.organisation")),
        None => match batch.events.iter().enumerate().find_map(|(i, e)| organisation_of(e).map(|o| (i, o))) {
            Some((i, o)) => (Some(o), format!("events[{i}].appointmentScheduled.appointment.organisation")),
            None => (None, "events".to_owned()),
        },
    };
    let jobcentre = match org {
        Some(org) => {
            if org.display_name.is_empty() {
                return Err(invalid(format!("{org_field}.displayName"), "the jobcentre's name is required"));
            }
            if !is_digits(&org.cvr, 8) {
                return Err(invalid(
                    format!("{org_field}.cvr"),
                    "the jobcentre's CVR number (eight digits) is required",
                ));
            }
            if !org.ean.is_empty() && !is_digits(&org.ean, 13) {
                return Err(invalid(format!("{org_field}.ean"), "is not an EAN/GLN location number (13 digits)"));
            }
            Some(Jobcenter { name: org.display_name, cvr: org.cvr, ean: org.ean })
        }
        // Cancellations alone: the document need not name the jobcentre.
        None if the_plan.is_none() && !meetings.iter().any(|m| m.status == "planned" || !m.start.is_empty()) => None,
        None => return Err(invalid(&org_field, "the jobcentre (name and CVR number) is required")),
    };
    // Written in the reader's shape, so the document reads back to the same events.
    let plan = match the_plan {
        Some((i, p)) => Some(plan(p, &format!("events[{i}].sectorPlanRecorded.plan"))?),
        None => None,
    };
    let document = Document {
        message_id: message_id(batch),
        changed_at: time::format_datetime(&time::copenhagen_midnight(latest)),
        citizen: Citizen { cpr, name },
        jobcenter: jobcentre,
        caseworker: the_plan.and_then(|(_, p)| p.contact_person.as_ref()).and_then(|c| person(c, true)),
        plan,
        meetings,
    };
    let mut out = serde_json::to_vec_pretty(&document).map_err(|e| AdapterError::Internal(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}
