//! Writes a § 78 holistic plan as the recipient may see it (its consented
//! view) as a FHIR R4 Bundle of type collection: a Patient and a CarePlan per
//! covered parent; the coordinator as a CareTeam (Practitioner,
//! Organization); the shared goals as Goals; the recipient's own
//! appointments as Appointments; the times a parent is taken elsewhere as
//! busy Slots on a Schedule per parent; the conflicts as DetectedIssues. A
//! notice that distribution has ended is the Patients and revoked CarePlans.
//!
//! Ids are name-based UUIDs of the case's own names (party ids, plan, goal
//! and appointment ids), never of a CPR number, so the same batch gives
//! byte-identical output and a resource keeps its id across versions.

pub use bro_adapter_sdk::holistic::MAX_VIEW_LIST;
use bro_adapter_sdk::holistic::{capped, check_items, sector_word};
use bro_adapter_sdk::ids::{external_id, is_external_id};
use bro_adapter_sdk::proto::{self, GoalAim, HolisticPlanState, PersonIdentifierKind, PlanConflictKind};
use bro_adapter_sdk::{AdapterError, invalid, subjects};
use prost_types::Timestamp;

use crate::ids::{name_uuid, urn};
use crate::json::{is_digits, is_replacement_cpr, normalise_cpr, quoted};
use crate::time;
use crate::tree::Obj;
use crate::{CPR_SYSTEM, CVR_SYSTEM, GLN_SYSTEM, REPLACEMENT_SYSTEM, SOR_SYSTEM};

/// Every CarePlan's title.
pub const TITLE: &str = "Helhedsorienteret plan (barnets lov § 78)";
/// The system of the plan's identifiers (its resource name, goals' paths, the Bundle's id).
pub const PLAN_SYSTEM: &str = "urn:bro:holistic-plan";
/// The system of a conflict's items that are not written as resources.
pub const ITEM_SYSTEM: &str = "urn:bro:case-item";
/// The system of the conflict codes.
pub const CONFLICT_SYSTEM: &str = "urn:bro:plan-conflict";
/// The coordinator's role in the CareTeam.
pub const COORDINATOR_ROLE: &str = "koordinator";
/// An appointment recorded without its end is written as lasting this long
/// (the coordination checks assume the same).
const ASSUMED_SECONDS: i64 = 3600;

/// A reference to the resource with id `id` in the same Bundle.
fn reference(id: &str) -> Obj {
    Obj::new().s("reference", urn(id))
}

fn instant(t: Option<&Timestamp>, field: &str) -> Result<Option<Timestamp>, AdapterError> {
    match t {
        Some(t) if !time::in_range(t) => Err(invalid(field, "is outside the years 1 to 9999")),
        t => Ok(t.copied()),
    }
}

fn later(a: &Timestamp, b: &Timestamp) -> bool {
    (a.seconds, a.nanos) > (b.seconds, b.nanos)
}

/// A conflict kind's code and display.
fn conflict_code(kind: i32, field: &str) -> Result<(&'static str, &'static str), AdapterError> {
    match PlanConflictKind::try_from(kind) {
        Ok(PlanConflictKind::AppointmentsOverlap) => {
            Ok(("appointments-overlap", "Appointments of different sectors overlap"))
        }
        Ok(PlanConflictKind::TooManyMeetings) => Ok((
            "too-many-meetings",
            "More meetings with different professionals in a week than the parents can manage",
        )),
        Ok(PlanConflictKind::GoalsPullApart) => {
            Ok(("goals-pull-apart", "Goals or activities of different sectors pull against each other"))
        }
        Ok(PlanConflictKind::RevisionOverdue) => Ok(("revision-overdue", "The plan is past a § 79 revision date")),
        Ok(PlanConflictKind::NoCoordinator) => {
            Ok(("no-coordinator", "Contacts in several sectors and nobody coordinates"))
        }
        Ok(PlanConflictKind::Unspecified) | Err(_) => Err(invalid(field, "the kind of conflict is required")),
    }
}

/// A HumanName from a display name: the text, the last word as family name.
fn human_name(name: &str) -> Obj {
    let mut words: Vec<String> = name.split_whitespace().map(str::to_owned).collect();
    let family = words.pop().unwrap_or_default();
    Obj::new().s("text", name).s("family", family).strings("given", words)
}

/// A covered parent.
struct Citizen {
    person: proto::PersonIdentifier,
    /// What the parent's resource ids are derived from: the party id, not the CPR number.
    key: String,
    name: String,
    patient_id: String,
}

/// The parents the plan covers, in order, each identified.
fn covered(batch: &proto::AdapterBatch, plan: &proto::HolisticPlan, case: &str) -> Result<Vec<Citizen>, AdapterError> {
    if plan.covers.is_empty() {
        return Err(invalid("holisticPlan.covers", "the plan covers no parent"));
    }
    capped(&plan.covers, "holisticPlan.covers")?;
    let mut out: Vec<Citizen> = Vec::with_capacity(plan.covers.len());
    for (i, reference) in plan.covers.iter().enumerate() {
        let field = format!("holisticPlan.covers[{i}]");
        let mut person = subjects::person_of(batch, reference, &field, quoted)?;
        match person.kind() {
            PersonIdentifierKind::Cpr => {
                person.value =
                    normalise_cpr(&person.value).ok_or_else(|| invalid(&field, "the CPR number is not ten digits"))?;
            }
            PersonIdentifierKind::ReplacementCpr if is_replacement_cpr(&person.value) => {}
            PersonIdentifierKind::ReplacementCpr => {
                return Err(invalid(field, "the replacement CPR number is not ten letters or digits"));
            }
            PersonIdentifierKind::Unspecified => {
                return Err(invalid(field, "names a person without a CPR or replacement CPR number"));
            }
        }
        if out.iter().any(|c| c.person == person) {
            return Err(invalid(field, "names a parent the plan already covers"));
        }
        let party = subjects::party(batch, &person);
        let key = match party.filter(|p| !p.party_id.is_empty()) {
            Some(p) => format!("{case}/parties/{}", p.party_id),
            None => format!("{}/{reference}", plan.name),
        };
        out.push(Citizen {
            patient_id: name_uuid(&key),
            name: party.map(|p| p.display_name.clone()).unwrap_or_default(),
            person,
            key,
        });
    }
    Ok(out)
}

/// The index of the covered parent a reference names.
fn citizen(
    batch: &proto::AdapterBatch,
    citizens: &[Citizen],
    reference: &str,
    field: &str,
) -> Result<usize, AdapterError> {
    let mut who = subjects::person_of(batch, reference, field, quoted)?;
    if who.kind() == PersonIdentifierKind::Cpr {
        who.value = normalise_cpr(&who.value).unwrap_or(who.value);
    }
    citizens
        .iter()
        .position(|c| c.person == who)
        .ok_or_else(|| invalid(field, "names a parent the plan does not cover"))
}

fn patient(c: &Citizen) -> Obj {
    let identifier = match c.person.kind() {
        PersonIdentifierKind::Cpr => Obj::new().s("system", CPR_SYSTEM),
        _ => Obj::new().s("use", "temp").s("system", REPLACEMENT_SYSTEM),
    };
    Obj::resource("Patient", &c.patient_id)
        .list("identifier", vec![identifier.s("value", c.person.value.as_str())])
        .list("name", if c.name.is_empty() { Vec::new() } else { vec![human_name(&c.name)] })
}

/// One resource of the Bundle.
struct Entry {
    id: String,
    resource: Obj,
}

/// The coordinator: a CareTeam, its Practitioner and Organization.
fn coordinator(plan_name: &str, c: &proto::Coordinator) -> Result<(String, Vec<Entry>), AdapterError> {
    let mut out = Vec::new();
    let mut participant = Obj::new().list("role", vec![Obj::new().s("text", COORDINATOR_ROLE)]);
    let person = c.person.clone().unwrap_or_default();
    if !(person.display_name.is_empty() && person.phone.is_empty() && person.email.is_empty()) {
        let id = name_uuid(&format!("{plan_name}/coordinator"));
        let telecom = [("phone", &person.phone), ("email", &person.email)]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(system, value)| Obj::new().s("system", system).s("value", value.as_str()))
            .collect();
        let practitioner = Obj::resource("Practitioner", &id)
            .list(
                "name",
                if person.display_name.is_empty() { Vec::new() } else { vec![human_name(&person.display_name)] },
            )
            .list("telecom", telecom)
            .list("qualification", vec![Obj::new().o("code", Obj::new().s("text", person.role.as_str()))]);
        participant = participant.o("member", reference(&id));
        out.push(Entry { id, resource: practitioner });
    }
    if let Some(org) = c.organisation.as_ref().filter(|o| **o != proto::Organisation::default()) {
        let at = "holisticPlan.coordinator.organisation";
        if !org.cvr.is_empty() && !is_digits(&org.cvr, 8) {
            return Err(invalid(format!("{at}.cvr"), "is not a CVR number (eight digits)"));
        }
        if !org.ean.is_empty() && !is_digits(&org.ean, 13) {
            return Err(invalid(format!("{at}.ean"), "is not an EAN/GLN location number (13 digits)"));
        }
        if org.sor.len() > 20 || !org.sor.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("{at}.sor"), "is not a SOR code (up to 20 digits)"));
        }
        let id = name_uuid(&format!("organization/{}/{}/{}/{}", org.cvr, org.ean, org.sor, org.display_name));
        let identifiers = [(SOR_SYSTEM, &org.sor), (GLN_SYSTEM, &org.ean), (CVR_SYSTEM, &org.cvr)]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(system, value)| Obj::new().s("system", system).s("value", value.as_str()))
            .collect();
        let sector = sector_word(c.sector, "holisticPlan.coordinator.sector")?;
        let organization = Obj::resource("Organization", &id)
            .list("identifier", identifiers)
            .list("type", vec![Obj::new().s("text", sector)])
            .s("name", org.display_name.as_str());
        participant = participant.o("onBehalfOf", reference(&id));
        out.push(Entry { id, resource: organization });
    }
    let team_id = name_uuid(&format!("{plan_name}/careTeam"));
    let team = Obj::resource("CareTeam", &team_id)
        .s("status", "active")
        .s("name", "Koordinator for den helhedsorienterede plan")
        .list("participant", vec![participant]);
    out.insert(0, Entry { id: team_id.clone(), resource: team });
    Ok((team_id, out))
}

/// Renders a batch carrying a holistic plan as a FHIR Bundle.
pub fn write(batch: &proto::AdapterBatch) -> Result<Vec<u8>, AdapterError> {
    let Some(plan) = batch.holistic_plan.as_ref() else {
        return Err(invalid("events", "the fhir adapter sends holistic plans only"));
    };
    let sent = bro_adapter_sdk::holistic::checked(batch, plan)?;
    let (case, state) = (sent.case, sent.state);
    let status = match state {
        _ if plan.distribution_ended => "revoked",
        HolisticPlanState::InForce => "active",
        HolisticPlanState::Proposed => "draft",
        _ => "revoked",
    };
    let citizens = covered(batch, plan, &case)?;
    let care_plan = |c: &Citizen| {
        Obj::resource("CarePlan", &name_uuid(&format!("{}/carePlans/{}", plan.name, c.key)))
            .o("meta", Obj::new().s("versionId", plan.version.to_string()))
            .list("identifier", vec![Obj::new().s("system", PLAN_SYSTEM).s("value", plan.name.as_str())])
            .s("status", status)
            .s("intent", "plan")
            .s("title", TITLE)
            .o("subject", reference(&c.patient_id))
    };
    let mut entries: Vec<Entry> =
        citizens.iter().map(|c| Entry { id: c.patient_id.clone(), resource: patient(c) }).collect();
    if plan.distribution_ended {
        // A notice: the recipient stops relying on the plan it holds; nothing else is sent.
        for c in &citizens {
            let resource = care_plan(c);
            entries.push(Entry { id: name_uuid(&format!("{}/carePlans/{}", plan.name, c.key)), resource });
        }
    } else {
        entries.extend(view(batch, plan, &case, state, &citizens, &care_plan)?);
    }

    let own_id = is_external_id(&batch.source_message_id).then(|| batch.source_message_id.clone());
    let suffix = if plan.distribution_ended { "/distribution-ended" } else { "" };
    let bundle_identifier = own_id.unwrap_or_else(|| format!("{}/versions/{}{suffix}", plan.name, plan.version));
    let timestamp = match instant(plan.update_time.as_ref(), "holisticPlan.updateTime")? {
        Some(t) if !plan.distribution_ended => time::format_datetime(&t),
        _ => String::new(),
    };
    let bundle = Obj::resource("Bundle", &name_uuid(&format!("bundle/{bundle_identifier}")))
        .o("identifier", Obj::new().s("system", PLAN_SYSTEM).s("value", bundle_identifier))
        .s("type", "collection")
        .s("timestamp", timestamp)
        .list(
            "entry",
            entries.into_iter().map(|e| Obj::new().s("fullUrl", urn(&e.id)).o("resource", e.resource)).collect(),
        );
    bundle.to_json().map_err(|e| AdapterError::Internal(e.to_string()))
}

/// The resources of a full view after the Patients: the CarePlans, then what they refer to.
fn view(
    batch: &proto::AdapterBatch,
    plan: &proto::HolisticPlan,
    case: &str,
    state: HolisticPlanState,
    citizens: &[Citizen],
    care_plan: &dyn Fn(&Citizen) -> Obj,
) -> Result<Vec<Entry>, AdapterError> {
    let prepared_on = time::date_text(plan.prepared_on.as_ref(), "holisticPlan.preparedOn", true)?;
    let (team, coordination) = match &plan.coordinator {
        Some(c) => {
            let (id, entries) = coordinator(&plan.name, c)?;
            (Some(id), entries)
        }
        None => (None, Vec::new()),
    };

    // Goals: one Goal per goal and parent it concerns (a Goal has one subject).
    capped(&plan.goals, "holisticPlan.goals")?;
    let mut goals: Vec<(usize, Entry)> = Vec::new();
    let mut goal_ids: Vec<&str> = Vec::new();
    for (i, g) in plan.goals.iter().enumerate() {
        let at = format!("holisticPlan.goals[{i}]");
        external_id(&g.goal_id, format!("{at}.goalId"))?;
        if goal_ids.contains(&g.goal_id.as_str()) {
            return Err(invalid(format!("{at}.goalId"), "is used by an earlier goal"));
        }
        goal_ids.push(&g.goal_id);
        capped(&g.sub_goals, &format!("{at}.subGoals"))?;
        let mut concerned: Vec<usize> = Vec::new();
        for (j, holder) in g.custody_holders.iter().enumerate() {
            let n = citizen(batch, citizens, holder, &format!("{at}.custodyHolders[{j}]"))?;
            if !concerned.contains(&n) {
                concerned.push(n);
            }
        }
        if g.custody_holders.is_empty() {
            concerned = (0..citizens.len()).collect();
        }
        let aim = match GoalAim::try_from(g.aim) {
            Ok(GoalAim::Homecoming) => "Sigte: hjemgivelse",
            Ok(GoalAim::Contact) => "Sigte: samvær",
            Ok(GoalAim::Unspecified) => "Sigte: ikke angivet",
            Err(_) => return Err(invalid(format!("{at}.aim"), "is not a goal aim")),
        };
        let owner = sector_word(g.owner_sector, &format!("{at}.ownerSector"))?;
        let owner =
            if g.owner.is_empty() { format!("Ansvarlig: {owner}") } else { format!("Ansvarlig: {owner}, {}", g.owner) };
        let mut notes = vec![aim.to_owned(), owner];
        notes.extend(g.sub_goals.iter().map(|s| format!("Delmål: {s}")));
        let description =
            if g.change_in_parents.is_empty() { "(ingen beskrivelse)" } else { g.change_in_parents.as_str() };
        let lifecycle = if state == HolisticPlanState::Proposed { "proposed" } else { "active" };
        for n in concerned {
            let c = &citizens[n];
            let id = name_uuid(&format!("{}/goals/{}/{}", plan.name, g.goal_id, c.key));
            let goal = Obj::resource("Goal", &id)
                .list(
                    "identifier",
                    vec![Obj::new().s("system", PLAN_SYSTEM).s("value", format!("{}/goals/{}", plan.name, g.goal_id))],
                )
                .s("lifecycleStatus", lifecycle)
                .o("description", Obj::new().s("text", description))
                .o("subject", reference(&c.patient_id))
                .list("note", notes.iter().map(|t| Obj::new().s("text", t.as_str())).collect());
            goals.push((n, Entry { id, resource: goal }));
        }
    }

    // The recipient's own appointments.
    capped(&plan.appointments, "holisticPlan.appointments")?;
    let mut appointments: Vec<(usize, String, Entry)> = Vec::new();
    for (i, a) in plan.appointments.iter().enumerate() {
        let at = format!("holisticPlan.appointments[{i}]");
        external_id(&a.appointment_id, format!("{at}.appointmentId"))?;
        if appointments.iter().any(|(_, id, _)| *id == a.appointment_id) {
            return Err(invalid(format!("{at}.appointmentId"), "is used by an earlier appointment"));
        }
        let n = citizen(batch, citizens, &a.custody_holder, &format!("{at}.custodyHolder"))?;
        let start = instant(a.start_time.as_ref(), &format!("{at}.startTime"))?
            .ok_or_else(|| invalid(format!("{at}.startTime"), "is required"))?;
        let end = match instant(a.end_time.as_ref(), &format!("{at}.endTime"))? {
            Some(e) if !later(&e, &start) => return Err(invalid(format!("{at}.endTime"), "is not after the start")),
            Some(e) => e,
            None => Timestamp { seconds: start.seconds + ASSUMED_SECONDS, nanos: start.nanos },
        };
        let id = name_uuid(&format!("{case}/appointments/{}", a.appointment_id));
        let professional = a.professional.clone().unwrap_or_default();
        let mut participants = vec![Obj::new().o("actor", reference(&citizens[n].patient_id)).s("status", "accepted")];
        if !professional.display_name.is_empty() {
            participants.push(
                Obj::new()
                    .list("type", vec![Obj::new().s("text", professional.role.as_str())])
                    .o("actor", Obj::new().s("type", "Practitioner").s("display", professional.display_name.as_str()))
                    .s("status", "accepted"),
            );
        }
        if !a.location.is_empty() {
            participants.push(
                Obj::new()
                    .o("actor", Obj::new().s("type", "Location").s("display", a.location.as_str()))
                    .s("status", "accepted"),
            );
        }
        let reason = if a.cancelled { a.cancellation_reason.as_str() } else { "" };
        let appointment = Obj::resource("Appointment", &id)
            .list("identifier", vec![Obj::new().s("value", a.appointment_id.as_str())])
            .s("status", if a.cancelled { "cancelled" } else { "booked" })
            .o("cancelationReason", Obj::new().s("text", reason))
            .s("description", a.title.as_str())
            .s("start", time::format_datetime(&start))
            .s("end", time::format_datetime(&end))
            .list("participant", participants);
        appointments.push((n, a.appointment_id.clone(), Entry { id, resource: appointment }));
    }

    // Busy periods: Slots on one Schedule per parent; a repeated period once.
    capped(&plan.busy_periods, "holisticPlan.busyPeriods")?;
    let mut schedules: Vec<(usize, String, Vec<Entry>)> = Vec::new();
    for (i, b) in plan.busy_periods.iter().enumerate() {
        let at = format!("holisticPlan.busyPeriods[{i}]");
        let n = citizen(batch, citizens, &b.custody_holder, &format!("{at}.custodyHolder"))?;
        let start = instant(b.start_time.as_ref(), &format!("{at}.startTime"))?
            .ok_or_else(|| invalid(format!("{at}.startTime"), "is required"))?;
        let end = instant(b.end_time.as_ref(), &format!("{at}.endTime"))?
            .ok_or_else(|| invalid(format!("{at}.endTime"), "is required"))?;
        if !later(&end, &start) {
            return Err(invalid(format!("{at}.endTime"), "is not after the start"));
        }
        let c = &citizens[n];
        let schedule_id = name_uuid(&format!("{}/busy/{}", plan.name, c.key));
        let (start, end) = (time::format_datetime(&start), time::format_datetime(&end));
        let slot_id = name_uuid(&format!("{}/busy/{}/{start}/{end}", plan.name, c.key));
        let slot = Obj::resource("Slot", &slot_id)
            .o("schedule", reference(&schedule_id))
            .s("status", "busy-unavailable")
            .s("start", start)
            .s("end", end);
        let position = match schedules.iter().position(|(m, _, _)| *m == n) {
            Some(p) => p,
            None => {
                schedules.push((n, schedule_id, Vec::new()));
                schedules.len() - 1
            }
        };
        if let Some((_, _, slots)) = schedules.get_mut(position)
            && !slots.iter().any(|s| s.id == slot_id)
        {
            slots.push(Entry { id: slot_id, resource: slot });
        }
    }

    // Conflicts: a DetectedIssue each; an item that is an appointment written here is referenced.
    capped(&plan.conflicts, "holisticPlan.conflicts")?;
    let mut issues: Vec<Entry> = Vec::new();
    for (i, c) in plan.conflicts.iter().enumerate() {
        let at = format!("holisticPlan.conflicts[{i}]");
        let (code, display) = conflict_code(c.kind, &format!("{at}.kind"))?;
        check_items(&c.items, &at)?;
        let mut implicated = Vec::new();
        for item in &c.items {
            let written = item
                .strip_prefix("appointments/")
                .and_then(|id| appointments.iter().find(|(_, own, _)| own == id))
                .map(|(_, _, e)| e.id.clone());
            implicated.push(match written {
                Some(id) => reference(&id),
                None => Obj::new().o("identifier", Obj::new().s("system", ITEM_SYSTEM).s("value", item.as_str())),
            });
        }
        let holder = if c.custody_holder.is_empty() {
            None
        } else {
            Some(citizen(batch, citizens, &c.custody_holder, &format!("{at}.custodyHolder"))?)
        };
        let key = holder.map(|n| citizens[n].key.as_str()).unwrap_or_default();
        let id = name_uuid(&format!("{}/conflicts/{code}/{}/{key}", plan.name, c.items.join(" ")));
        if issues.iter().any(|e| e.id == id) {
            continue;
        }
        let issue = Obj::resource("DetectedIssue", &id)
            .s("status", "preliminary")
            .o(
                "code",
                Obj::new().list(
                    "coding",
                    vec![Obj::new().s("system", CONFLICT_SYSTEM).s("code", code).s("display", display)],
                ),
            )
            .o("patient", holder.map_or_else(Obj::new, |n| reference(&citizens[n].patient_id)))
            .list("implicated", implicated)
            .s("detail", c.message.as_str());
        issues.push(Entry { id, resource: issue });
    }

    // Each parent's agreement, as a note on that parent's CarePlan.
    capped(&plan.agreements, "holisticPlan.agreements")?;
    let mut agreements: Vec<(usize, String)> = Vec::new();
    for (i, a) in plan.agreements.iter().enumerate() {
        let at = format!("holisticPlan.agreements[{i}]");
        let n = citizen(batch, citizens, &a.custody_holder, &format!("{at}.custodyHolder"))?;
        capped(&a.shared_with, &format!("{at}.sharedWith"))?;
        let mut words = Vec::new();
        let agreed = time::date_text(a.agreed_on.as_ref(), &format!("{at}.agreedOn"), false)?;
        if !agreed.is_empty() {
            words.push(format!("Forælderens tilslutning til planen: {agreed}."));
        }
        let withdrawn = time::date_text(a.withdrawn_on.as_ref(), &format!("{at}.withdrawnOn"), false)?;
        if !withdrawn.is_empty() {
            words.push(format!("Tilslutningen blev trukket tilbage: {withdrawn}."));
        }
        if !a.shared_with.is_empty() {
            words.push(format!("Deles med: {}.", a.shared_with.join(", ")));
        }
        agreements.push((n, words.join(" ")));
    }

    let mut out = Vec::new();
    for (n, c) in citizens.iter().enumerate() {
        let resource = care_plan(c)
            .s("created", prepared_on.as_str())
            .list("careTeam", team.iter().map(|id| reference(id)).collect())
            .list("goal", goals.iter().filter(|(m, _)| *m == n).map(|(_, e)| reference(&e.id)).collect())
            .list(
                "activity",
                appointments
                    .iter()
                    .filter(|(m, _, _)| *m == n)
                    .map(|(_, _, e)| Obj::new().o("reference", reference(&e.id)))
                    .collect(),
            )
            .list(
                "note",
                agreements.iter().filter(|(m, _)| *m == n).map(|(_, t)| Obj::new().s("text", t.as_str())).collect(),
            );
        out.push(Entry { id: name_uuid(&format!("{}/carePlans/{}", plan.name, c.key)), resource });
    }
    out.extend(coordination);
    out.extend(goals.into_iter().map(|(_, e)| e));
    out.extend(appointments.into_iter().map(|(_, _, e)| e));
    for (n, id, slots) in schedules {
        let schedule = Obj::resource("Schedule", &id)
            .b("active", true)
            .list("actor", vec![reference(&citizens[n].patient_id)])
            .s("comment", "Tider hvor forælderen er optaget af aftaler i andre sektorer; hvad og hos hvem deles ikke");
        out.push(Entry { id, resource: schedule });
        out.extend(slots);
    }
    out.extend(issues);
    Ok(out)
}
