//! Reads a Momentum citizen document: every field checked and refused by
//! JSON pointer, then one batch — the citizen as `subjects[0]`, the plan as a
//! `sector_plan_recorded`, each meeting as an `appointment_scheduled` or
//! `appointment_cancelled`, all dated the Danish day of `changedAt`.

use bro_adapter_sdk::proto::{self, PersonIdentifierKind, case_event::Kind};
use bro_adapter_sdk::{AdapterError, cpr, invalid};

use crate::ids;
use crate::json::{self, Obj, is_digits, is_tag, pointer, quoted};
use crate::time::{self, Offset, Ymd};
use crate::{ACTIVITY_TYPES, FULL_TIME_HOURS, FULL_TIME_TAG, known_types};

/// The custody holder every event names: the document's one citizen.
const CITIZEN: &str = "subjects/0";

/// Reads one document.
pub fn read(body: &[u8]) -> Result<proto::AdapterBatch, AdapterError> {
    // Sniffed and parsed first; then checked field by field, in document order.
    let root = json::parse(body)?;
    let Some(map) = root.as_object() else {
        return Err(AdapterError::Unsupported(
            "a JSON document that is not an object; the jobcenter adapter reads the Momentum citizen document".into(),
        ));
    };
    let doc = Obj { map, at: String::new() };
    let message_id = external_id(&doc, "messageId")?;
    let changed = doc.required("changedAt")?;
    let changed = time::parse_datetime(changed, Offset::Required)
        .ok_or_else(|| invalid("/changedAt", "is not a date-time YYYY-MM-DDThh:mm:ss with Z or ±hh:mm"))?;
    // Every event takes effect on the Danish day the jobcentre changed the document.
    let day = time::copenhagen_date(&changed);
    if !time::is_canonical(day) {
        return Err(invalid("/changedAt", "is outside the years 1900 to 9999"));
    }
    let occurred_on = Some(proto::Date { year: day.year, month: day.month as i32, day: day.day as i32 });

    let citizen = doc.object("citizen")?.ok_or_else(|| invalid("/citizen/cpr", "is required"))?;
    let cpr = citizen.required("cpr")?;
    let cpr = cpr::normalise(cpr).ok_or_else(|| invalid("/citizen/cpr", "is not a CPR number (ten digits)"))?;
    // The name is checked but not kept: the canonical model names people in the case only.
    citizen.str("name")?;

    let organisation = match doc.object("jobcenter")? {
        Some(m) => Some(organisation(&m)?),
        None => None,
    };
    // A plan and a planned meeting belong to the jobcentre; a cancellation alone need not name it.
    let jobcentre =
        || organisation.clone().ok_or_else(|| invalid("/jobcenter", "is required for a plan or a planned meeting"));
    let caseworker = match doc.object("caseworker")? {
        Some(m) => Some(contact(&m, true)?),
        None => None,
    };

    let mut events = Vec::new();
    if let Some(plan) = doc.object("plan")? {
        let plan = sector_plan(&plan, jobcentre()?, caseworker)?;
        events.push(Kind::SectorPlanRecorded(proto::SectorPlanRecorded { plan: Some(plan) }));
    }
    // Meetings in document order; an id may appear once.
    let meetings = doc.array("meetings")?;
    let mut ids: Vec<&str> = Vec::with_capacity(meetings.len());
    for (i, m) in meetings.iter().enumerate() {
        let at = pointer("/meetings", &i.to_string());
        let m = Obj::at(m, at)?;
        let id = external_id(&m, "meetingId")?;
        if ids.contains(&id) {
            return Err(invalid(m.ptr("meetingId"), "is used by an earlier meeting"));
        }
        ids.push(id);
        events.extend(meeting(&m, id, &jobcentre)?);
    }
    if events.is_empty() {
        return Err(invalid("/plan", "the document has neither a plan nor meetings: nothing to record"));
    }
    Ok(proto::AdapterBatch {
        subjects: vec![proto::PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value: cpr }],
        case: String::new(),
        source_message_id: message_id.to_owned(),
        events: events
            .into_iter()
            .map(|kind| proto::CaseEvent { occurred_on, kind: Some(kind), ..Default::default() })
            .collect(),
        parties: Vec::new(),
        holistic_plan: None,
        settings: Default::default(),
        addressed_municipality: String::new(),
    })
}

/// A required id assigned by the jobcentre.
fn external_id<'a>(o: &Obj<'a>, key: &str) -> Result<&'a str, AdapterError> {
    ids::external_id(o.required(key)?, o.ptr(key))
}

/// The jobcentre: name and CVR number required, EAN/GLN optional.
fn organisation(o: &Obj<'_>) -> Result<proto::Organisation, AdapterError> {
    let name = o.required("name")?;
    let cvr = o.required("cvr")?;
    if !is_digits(cvr, 8) {
        return Err(invalid(o.ptr("cvr"), "is not a CVR number (eight digits)"));
    }
    let ean = o.text("ean")?;
    if !ean.is_empty() && !is_digits(&ean, 13) {
        return Err(invalid(o.ptr("ean"), "is not an EAN/GLN location number (13 digits)"));
    }
    Ok(proto::Organisation { display_name: name.to_owned(), cvr: cvr.to_owned(), ean, ..Default::default() })
}

/// A person: `name` and `role`, and with `reachable` also `phone` and `email`.
fn contact(o: &Obj<'_>, reachable: bool) -> Result<proto::ContactPerson, AdapterError> {
    Ok(proto::ContactPerson {
        display_name: o.text("name")?,
        role: o.text("role")?,
        phone: if reachable { o.text("phone")? } else { String::new() },
        email: if reachable { o.text("email")? } else { String::new() },
    })
}

/// A required or optional date `YYYY-MM-DD`.
fn date(o: &Obj<'_>, key: &str, required: bool) -> Result<Option<Ymd>, AdapterError> {
    let Some(text) = o.str(key)? else {
        return if required { Err(invalid(o.ptr(key), "is required")) } else { Ok(None) };
    };
    let d = time::parse_date(text).ok_or_else(|| invalid(o.ptr(key), "is not a date YYYY-MM-DD"))?;
    if !time::is_canonical(d) {
        return Err(invalid(o.ptr(key), "is outside the years 1900 to 9999"));
    }
    Ok(Some(d))
}

fn pb_date(d: Ymd) -> proto::Date {
    proto::Date { year: d.year, month: d.month as i32, day: d.day as i32 }
}

/// Tags, checked, without duplicates, in order.
fn tags(o: &Obj<'_>) -> Result<Vec<String>, AdapterError> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in o.strings("tags")?.into_iter().enumerate() {
        if !is_tag(t) {
            return Err(invalid(
                pointer(&o.ptr("tags"), &i.to_string()),
                format!("{} is not a tag: 1 to 63 lowercase letters, digits, '-' or '_'", quoted(t)),
            ));
        }
        if !out.iter().any(|s| s == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// The plan (Min Plan) as a jobcentre sector plan for `subjects/0`.
fn sector_plan(
    p: &Obj<'_>,
    organisation: proto::Organisation,
    caseworker: Option<proto::ContactPerson>,
) -> Result<proto::SectorPlan, AdapterError> {
    let plan_id = external_id(p, "planId")?;
    let from = date(p, "validFrom", true)?;
    let to = date(p, "validTo", false)?;
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        return Err(invalid(p.ptr("validTo"), "is before validFrom"));
    }
    let mut goals: Vec<proto::SectorGoal> = Vec::new();
    for (i, g) in p.array("goals")?.iter().enumerate() {
        let at = pointer("/plan/goals", &i.to_string());
        let g = Obj::at(g, at)?;
        let goal_id = external_id(&g, "goalId")?;
        if goals.iter().any(|h| h.goal_id == goal_id) {
            return Err(invalid(g.ptr("goalId"), "is used by an earlier goal"));
        }
        goals.push(proto::SectorGoal { goal_id: goal_id.to_owned(), text: g.text("text")?, tags: tags(&g)? });
    }
    let mut activities: Vec<proto::SectorActivity> = Vec::new();
    for (i, a) in p.array("activities")?.iter().enumerate() {
        let at = pointer("/plan/activities", &i.to_string());
        let a = Obj::at(a, at)?;
        let activity_id = external_id(&a, "activityId")?;
        if activities.iter().any(|b| b.activity_id == activity_id) {
            return Err(invalid(a.ptr("activityId"), "is used by an earlier activity"));
        }
        let kind = a.required("type")?;
        if !ACTIVITY_TYPES.contains(&kind) {
            return Err(invalid(
                a.ptr("type"),
                format!("unknown activity type {}; expected {}", quoted(kind), known_types()),
            ));
        }
        let start = date(&a, "startDate", true)?;
        let end = date(&a, "endDate", false)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(invalid(a.ptr("endDate"), "is before startDate"));
        }
        // Decimal hours become whole minutes; absent is 0, "not stated".
        let hours = a.number("hoursPerWeek")?.unwrap_or(0.0);
        if !(0.0..=168.0).contains(&hours) {
            return Err(invalid(a.ptr("hoursPerWeek"), "is not between 0 and 168 (the hours of a week)"));
        }
        let mut goal_ids = Vec::new();
        for (j, g) in a.strings("goalIds")?.into_iter().enumerate() {
            if !goals.iter().any(|goal| goal.goal_id == g) {
                return Err(invalid(pointer(&a.ptr("goalIds"), &j.to_string()), "names no goal of the plan"));
            }
            goal_ids.push(g.to_owned());
        }
        let mut tags = tags(&a)?;
        // Coordination checks read full-time activities by this tag.
        if hours >= FULL_TIME_HOURS && !tags.iter().any(|t| t == FULL_TIME_TAG) {
            tags.push(FULL_TIME_TAG.to_owned());
        }
        activities.push(proto::SectorActivity {
            activity_id: activity_id.to_owned(),
            title: a.text("title")?,
            kind: kind.to_owned(),
            start_date: start.map(pb_date),
            end_date: end.map(pb_date),
            minutes_per_week: (hours * 60.0).round() as i32,
            goal_ids,
            tags,
        });
    }
    Ok(proto::SectorPlan {
        plan_id: plan_id.to_owned(),
        custody_holder: CITIZEN.into(),
        sector: proto::Sector::Jobcentre as i32,
        organisation: Some(organisation),
        contact_person: caseworker,
        system_of_record: String::new(),
        start_date: from.map(pb_date),
        end_date: to.map(pb_date),
        goals,
        activities,
    })
}

/// A meeting's `start` or `end`: an ISO 8601 date-time with an offset.
fn instant(m: &Obj<'_>, key: &str) -> Result<Option<prost_types::Timestamp>, AdapterError> {
    let Some(text) = m.str(key)? else { return Ok(None) };
    time::parse_datetime(text, Offset::Required)
        .filter(time::in_range)
        .map(Some)
        .ok_or_else(|| invalid(m.ptr(key), "is not a date-time YYYY-MM-DDThh:mm:ss with Z or ±hh:mm"))
}

/// One meeting: planned → scheduled (with its times); cancelled with its times
/// → scheduled then cancelled (so a cancellation bro never saw scheduled is
/// still recorded, and a repeated snapshot records the same); cancelled with
/// only its id → cancelled.
fn meeting(
    m: &Obj<'_>,
    id: &str,
    jobcentre: &dyn Fn() -> Result<proto::Organisation, AdapterError>,
) -> Result<Vec<Kind>, AdapterError> {
    let status = m.required("status")?;
    let start = instant(m, "start")?;
    let end = instant(m, "end")?;
    if let (Some(s), Some(e)) = (start, end)
        && (e.seconds, e.nanos) <= (s.seconds, s.nanos)
    {
        return Err(invalid(m.ptr("end"), "is not after start"));
    }
    let title = m.text("title")?;
    let location = m.text("location")?;
    let professional = match m.object("with")? {
        Some(w) => Some(contact(&w, false)?),
        None => None,
    };
    let cancelled = || {
        Ok::<_, AdapterError>(Kind::AppointmentCancelled(proto::AppointmentCancelled {
            appointment_id: id.to_owned(),
            reason: m.text("cancellationReason")?,
        }))
    };
    match status {
        "cancelled" if start.is_none() => Ok(vec![cancelled()?]),
        "planned" | "cancelled" => {
            let start = start.ok_or_else(|| invalid(m.ptr("start"), "is required for a planned meeting"))?;
            let needed =
                if status == "planned" { "is required for a planned meeting" } else { "is required with start" };
            let end = end.ok_or_else(|| invalid(m.ptr("end"), needed))?;
            let scheduled = Kind::AppointmentScheduled(proto::AppointmentScheduled {
                appointment: Some(proto::Appointment {
                    appointment_id: id.to_owned(),
                    custody_holder: CITIZEN.into(),
                    sector: proto::Sector::Jobcentre as i32,
                    organisation: Some(jobcentre()?),
                    professional,
                    title,
                    start_time: Some(start),
                    end_time: Some(end),
                    location,
                    cancellation_reason: String::new(),
                    cancelled: false,
                }),
            });
            if status == "cancelled" { Ok(vec![scheduled, cancelled()?]) } else { Ok(vec![scheduled]) }
        }
        other => {
            Err(invalid(m.ptr("status"), format!("unknown status {}; expected planned or cancelled", quoted(other))))
        }
    }
}
