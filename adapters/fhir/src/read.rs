//! Reads FHIR R4 JSON: a Bundle of Appointments and the resources they
//! reference, or one Appointment with contained resources, checked field by
//! field and refused by JSON pointer. Every Appointment becomes
//! `appointment_scheduled` and/or `appointment_cancelled` for the one patient
//! of the message (`subjects/0`), dated the Danish day of the message.

use std::collections::BTreeMap;

use bro_adapter_sdk::ids::external_id;
use bro_adapter_sdk::proto::{self, PersonIdentifierKind, case_event::Kind};
use bro_adapter_sdk::{AdapterError, invalid, metadata};
use prost_types::Timestamp;
use serde_json::Value;

use crate::json::{self, MAX_LIST, MAX_TEXT, Obj, is_digits, is_replacement_cpr, normalise_cpr, pointer, quoted};
use crate::time::{self, Ymd};
use crate::{CPR_SYSTEM, CVR_OIDS, CVR_SYSTEM, GLN_SYSTEM, GLN_URL, REPLACEMENT_PREFIX, SOR_SYSTEM, sector};

/// Most entries in a Bundle (Appointments and the resources they reference).
pub const MAX_ENTRIES: usize = 1000;
/// The Bundle types read.
pub const BUNDLE_TYPES: &[&str] = &["collection", "searchset", "transaction", "batch", "history"];
/// The Appointment statuses that schedule (or move) an appointment.
pub const SCHEDULED: &[&str] = &["proposed", "pending", "booked", "arrived", "fulfilled", "checked-in", "waitlist"];
/// The reason written for a no-show without a cancellation reason.
pub const NO_SHOW: &str = "no-show";
/// The reason written for an Appointment entered in error.
pub const ENTERED_IN_ERROR: &str = "entered in error";

/// The custody holder every event names: the message's one patient.
const PATIENT: &str = "subjects/0";

/// A resource: its type and id, its `fullUrl` in a Bundle, and the
/// top-level resource whose `contained` resolves its `#id` references.
#[derive(Clone)]
struct Res<'a> {
    kind: &'a str,
    id: Option<&'a str>,
    full_url: Option<&'a str>,
    obj: Obj<'a>,
    container: Obj<'a>,
}

impl<'a> Res<'a> {
    /// A resource at `at`; `container` is `None` for a top-level one.
    fn at(
        v: &'a Value,
        at: String,
        full_url: Option<&'a str>,
        container: Option<Obj<'a>>,
    ) -> Result<Self, AdapterError> {
        let obj = Obj::at(v, at)?;
        let kind = obj.required("resourceType")?;
        let id = obj.str("id")?;
        let container = container.unwrap_or_else(|| obj.clone());
        Ok(Res { kind, id, full_url, obj, container })
    }
}

/// The message's top-level resources, for resolving references.
struct Resources<'a> {
    list: Vec<Res<'a>>,
    /// Indexes into `list` by `fullUrl` and by type and id; the first one
    /// wins. Ordered maps: a hash map would need a random seed, which an
    /// adapter does not get.
    by_url: BTreeMap<&'a str, usize>,
    by_type_id: BTreeMap<(&'a str, &'a str), usize>,
    /// Whether they come from a Bundle (for the wording of errors).
    bundle: bool,
}

impl<'a> Resources<'a> {
    fn new(list: Vec<Res<'a>>, bundle: bool) -> Self {
        let (mut by_url, mut by_type_id) = (BTreeMap::new(), BTreeMap::new());
        for (i, r) in list.iter().enumerate() {
            if let Some(url) = r.full_url {
                by_url.entry(url).or_insert(i);
            }
            if let Some(id) = r.id {
                by_type_id.entry((r.kind, id)).or_insert(i);
            }
        }
        Resources { list, by_url, by_type_id, bundle }
    }

    /// The resource a reference in `within` names: `#id` among its
    /// container's contained resources; else by `fullUrl`; else by its last
    /// two segments `Type/id` (relative or absolute, a `_history` version dropped).
    fn resolve(&self, reference: &str, within: &Res<'a>) -> Result<Option<Res<'a>>, AdapterError> {
        if let Some(local) = reference.strip_prefix('#') {
            let at = within.container.ptr("contained");
            for (i, v) in within.container.array("contained")?.iter().enumerate() {
                let r = Res::at(v, pointer(&at, &i.to_string()), None, Some(within.container.clone()))?;
                if r.id == Some(local) {
                    return Ok(Some(r));
                }
            }
            return Ok(None);
        }
        let versionless = reference.split("/_history/").next().unwrap_or(reference);
        let by_url = self.by_url.get(reference).or_else(|| self.by_url.get(versionless));
        if let Some(r) = by_url.and_then(|i| self.list.get(*i)) {
            return Ok(Some(r.clone()));
        }
        if versionless.starts_with("urn:") {
            return Ok(None);
        }
        let mut parts = versionless.rsplit('/');
        let found = match (parts.next(), parts.next()) {
            (Some(id), Some(kind)) => self.by_type_id.get(&(kind, id)).and_then(|i| self.list.get(*i)),
            _ => None,
        };
        Ok(found.cloned())
    }

    /// Where a reference that resolves nowhere was looked for, for an error.
    fn nowhere(&self) -> &'static str {
        if self.bundle {
            "names no resource of the Bundle (by fullUrl, Type/id or #id of a contained resource)"
        } else {
            "names no contained resource (#id)"
        }
    }
}

/// A Reference: what it resolves to, and what it says itself.
struct Reference<'a> {
    obj: Obj<'a>,
    target: Option<Res<'a>>,
    /// The resource type: the target's, else `type`, else the reference's `Type/id`.
    kind: Option<&'a str>,
}

impl<'a> Reference<'a> {
    fn display(&self) -> Result<Option<&'a str>, AdapterError> {
        self.obj.str("display")
    }
}

/// A resource type named by a reference's text: the segment before the id.
fn kind_in_reference(reference: &str) -> Option<&str> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let versionless = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = versionless.rsplit('/');
    parts.next();
    parts.next().filter(|k| k.bytes().next().is_some_and(|b| b.is_ascii_uppercase()))
}

fn reference<'a>(resources: &Resources<'a>, obj: Obj<'a>, within: &Res<'a>) -> Result<Reference<'a>, AdapterError> {
    let text = obj.str("reference")?;
    let target = match text {
        Some(t) => resources.resolve(t, within)?,
        None => None,
    };
    let declared = obj.str("type")?.map(|t| t.rsplit('/').next().unwrap_or(t));
    let kind = target.as_ref().map(|t| t.kind).or(declared).or_else(|| text.and_then(kind_in_reference));
    Ok(Reference { obj, target, kind })
}

/// A CodeableConcept's words: its `text`, else the first coding's `display`.
fn concept_text(concept: &Obj<'_>) -> Result<Option<String>, AdapterError> {
    if let Some(text) = concept.str("text")? {
        return Ok(Some(text.to_owned()));
    }
    for coding in concept.objects("coding")? {
        if let Some(display) = coding.str("display")? {
            return Ok(Some(display.to_owned()));
        }
    }
    Ok(None)
}

/// An optional list of strings (`HumanName.given`).
fn strings<'a>(o: &Obj<'a>, key: &str) -> Result<Vec<&'a str>, AdapterError> {
    let at = o.ptr(key);
    let mut out = Vec::new();
    for (i, v) in o.array(key)?.iter().enumerate() {
        match v {
            Value::String(s) if s.len() <= MAX_TEXT => out.push(s.as_str()),
            Value::String(_) => {
                return Err(invalid(pointer(&at, &i.to_string()), format!("is longer than {MAX_TEXT} bytes")));
            }
            v => return Err(invalid(pointer(&at, &i.to_string()), format!("is {}, not a string", json::kind(v)))),
        }
    }
    Ok(out)
}

/// Free text kept as canonical text: at most [`MAX_TEXT`] bytes.
fn capped(text: String, at: &str) -> Result<String, AdapterError> {
    if text.len() > MAX_TEXT {
        return Err(invalid(at, format!("is {} bytes long; at most {MAX_TEXT} are allowed", text.len())));
    }
    Ok(text)
}

/// A person's name: the first HumanName's `text`, else its given names and family name.
fn human_name(o: &Obj<'_>) -> Result<String, AdapterError> {
    let Some(name) = o.first("name")? else { return Ok(String::new()) };
    if let Some(text) = name.str("text")? {
        return Ok(text.to_owned());
    }
    let mut parts = strings(&name, "given")?;
    parts.extend(name.str("family")?);
    capped(parts.join(" "), &name.at)
}

/// A Practitioner: name, phone and e-mail.
fn practitioner(p: &Res<'_>) -> Result<proto::ContactPerson, AdapterError> {
    let mut out = proto::ContactPerson { display_name: human_name(&p.obj)?, ..Default::default() };
    for t in p.obj.objects("telecom")? {
        let value = t.text("value")?;
        match t.str("system")? {
            Some("phone") if out.phone.is_empty() => out.phone = value,
            Some("email") if out.email.is_empty() => out.email = value,
            _ => {}
        }
    }
    Ok(out)
}

/// An Organization: its name (required) and SOR, EAN/GLN and CVR identifiers.
fn organisation(o: &Obj<'_>) -> Result<proto::Organisation, AdapterError> {
    let name = o.str("name")?.ok_or_else(|| invalid(o.ptr("name"), "the organisation's name is required"))?;
    let mut out = proto::Organisation { display_name: name.to_owned(), ..Default::default() };
    for identifier in o.objects("identifier")? {
        let value = identifier.text("value")?;
        let field = identifier.ptr("value");
        match identifier.str("system")? {
            Some(SOR_SYSTEM) if out.sor.is_empty() => {
                if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(field, "is not a SOR code (up to 20 digits)"));
                }
                out.sor = value;
            }
            Some(GLN_SYSTEM | GLN_URL) if out.ean.is_empty() => {
                if !is_digits(&value, 13) {
                    return Err(invalid(field, "is not an EAN/GLN location number (13 digits)"));
                }
                out.ean = value;
            }
            Some(system) if out.cvr.is_empty() && (system == CVR_SYSTEM || CVR_OIDS.contains(&system)) => {
                if !is_digits(&value, 8) {
                    return Err(invalid(field, "is not a CVR number (eight digits)"));
                }
                out.cvr = value;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// An organisation from a reference: the Organization it resolves to, else its `display`.
fn organisation_of(r: &Reference<'_>) -> Result<Option<proto::Organisation>, AdapterError> {
    match &r.target {
        Some(t) if t.kind == "Organization" => organisation(&t.obj).map(Some),
        Some(_) => Ok(None),
        None => {
            Ok(r.display()?.map(|name| proto::Organisation { display_name: name.to_owned(), ..Default::default() }))
        }
    }
}

/// A patient by CPR number, else by replacement CPR number, from identifiers at `at`.
fn person(identifiers: &[Obj<'_>], at: &str) -> Result<proto::PersonIdentifier, AdapterError> {
    let system = |i: &Obj<'_>| i.str("system").ok().flatten().unwrap_or_default().to_owned();
    if let Some(cpr) = identifiers.iter().find(|i| system(i) == CPR_SYSTEM) {
        let value = cpr
            .str("value")?
            .and_then(normalise_cpr)
            .ok_or_else(|| invalid(cpr.ptr("value"), "is not a CPR number (ten digits, DDMMYY first)"))?;
        return Ok(proto::PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value });
    }
    if let Some(replacement) = identifiers.iter().find(|i| system(i).starts_with(REPLACEMENT_PREFIX)) {
        let value = replacement.str("value")?.filter(|v| is_replacement_cpr(v)).ok_or_else(|| {
            invalid(replacement.ptr("value"), "is not a replacement CPR number (ten letters or digits)")
        })?;
        return Ok(proto::PersonIdentifier {
            kind: PersonIdentifierKind::ReplacementCpr as i32,
            value: value.to_owned(),
        });
    }
    Err(invalid(
        at,
        format!("the patient has no CPR ({CPR_SYSTEM}) or replacement CPR ({REPLACEMENT_PREFIX}*) identifier"),
    ))
}

/// An optional FHIR instant.
fn instant(o: &Obj<'_>, key: &str) -> Result<Option<Timestamp>, AdapterError> {
    match o.str(key)? {
        None => Ok(None),
        Some(text) => time::parse_instant(text)
            .map(Some)
            .ok_or_else(|| invalid(o.ptr(key), "is not a FHIR instant YYYY-MM-DDThh:mm:ss with Z or ±hh:mm")),
    }
}

/// The Danish day of an instant, as every event's `occurred_on`.
fn danish_day(t: &Timestamp, at: &str) -> Result<proto::Date, AdapterError> {
    let d: Ymd = time::copenhagen_date(t);
    if !time::is_canonical(d) {
        return Err(invalid(at, "is outside the years 1900 to 9999"));
    }
    Ok(proto::Date { year: d.year, month: d.month as i32, day: d.day as i32 })
}

/// A resource's `meta.lastUpdated`, with its pointer.
fn last_updated(o: &Obj<'_>) -> Result<Option<(Timestamp, String)>, AdapterError> {
    let Some(meta) = o.object("meta")? else { return Ok(None) };
    Ok(instant(&meta, "lastUpdated")?.map(|t| (t, meta.ptr("lastUpdated"))))
}

/// What one Appointment says.
struct Read {
    patient: proto::PersonIdentifier,
    /// Where the patient was named, for an error about a second patient.
    patient_at: String,
    id: String,
    events: Vec<Kind>,
}

/// What the participants of an Appointment name.
#[derive(Default)]
struct Participants {
    patients: Vec<(proto::PersonIdentifier, String)>,
    professional: Option<proto::ContactPerson>,
    location: Option<String>,
    /// Organisation candidates by priority: an Organization participant, a
    /// HealthcareService's `providedBy`, a PractitionerRole's `organization`.
    organisations: [Option<proto::Organisation>; 3],
}

fn participants<'a>(resources: &Resources<'a>, a: &Res<'a>) -> Result<Participants, AdapterError> {
    let mut out = Participants::default();
    for p in a.obj.objects("participant")? {
        let Some(actor) = p.object("actor")? else { continue };
        let r = reference(resources, actor, a)?;
        // A reference that resolves nowhere and names no type could be the patient: refused.
        let reference_text = r.obj.str("reference")?;
        if r.target.is_none() && r.kind.is_none() && reference_text.is_some() {
            return Err(invalid(r.obj.ptr("reference"), resources.nowhere()));
        }
        match r.kind {
            Some("Patient") => {
                let who = match &r.target {
                    Some(t) => person(&t.obj.objects("identifier")?, &t.obj.ptr("identifier"))?,
                    None => match r.obj.object("identifier")? {
                        Some(i) => person(std::slice::from_ref(&i), &r.obj.ptr("identifier"))?,
                        None if reference_text.is_some() => {
                            return Err(invalid(r.obj.ptr("reference"), resources.nowhere()));
                        }
                        None => return Err(invalid(r.obj.ptr("identifier"), "the patient is not identified")),
                    },
                };
                out.patients.push((who, r.obj.at.clone()));
            }
            Some("Practitioner") if out.professional.is_none() => {
                out.professional = match &r.target {
                    Some(t) => Some(practitioner(t)?),
                    None => r
                        .display()?
                        .map(|name| proto::ContactPerson { display_name: name.to_owned(), ..Default::default() }),
                };
            }
            Some("PractitionerRole") => {
                let Some(role) = &r.target else { continue };
                if out.professional.is_none() {
                    let person = match role.obj.object("practitioner")? {
                        Some(o) => {
                            let pr = reference(resources, o, role)?;
                            match &pr.target {
                                Some(t) if t.kind == "Practitioner" => Some(practitioner(t)?),
                                _ => pr.display()?.map(|name| proto::ContactPerson {
                                    display_name: name.to_owned(),
                                    ..Default::default()
                                }),
                            }
                        }
                        None => None,
                    };
                    let code = match role.obj.first("code")? {
                        Some(c) => concept_text(&c)?,
                        None => None,
                    };
                    out.professional = person.map(|mut p| {
                        p.role = code.unwrap_or_default();
                        p
                    });
                }
                if out.organisations[2].is_none()
                    && let Some(o) = role.obj.object("organization")?
                {
                    out.organisations[2] = organisation_of(&reference(resources, o, role)?)?;
                }
            }
            Some("Location") if out.location.is_none() => {
                let name = match &r.target {
                    Some(t) => t.obj.str("name")?,
                    None => None,
                };
                out.location = name.or(r.display()?).map(str::to_owned);
            }
            Some("Organization") if out.organisations[0].is_none() => {
                out.organisations[0] = organisation_of(&r)?;
            }
            Some("HealthcareService") if out.organisations[1].is_none() => {
                let Some(service) = &r.target else { continue };
                if let Some(o) = service.obj.object("providedBy")? {
                    out.organisations[1] = organisation_of(&reference(resources, o, service)?)?;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The appointment's title: `description`, else a service type's or the
/// appointment type's words.
fn title(a: &Obj<'_>) -> Result<String, AdapterError> {
    if let Some(d) = a.str("description")? {
        return Ok(d.to_owned());
    }
    for concept in a.objects("serviceType")? {
        if let Some(t) = concept_text(&concept)? {
            return Ok(t);
        }
    }
    Ok(match a.object("appointmentType")? {
        Some(c) => concept_text(&c)?.unwrap_or_default(),
        None => String::new(),
    })
}

/// The appointment's id: its first identifier's value, else its resource id.
fn appointment_id(a: &Res<'_>) -> Result<String, AdapterError> {
    let (id, at) = match a.obj.first("identifier")? {
        Some(i) if i.str("value")?.is_some() => (i.str("value")?.unwrap_or_default(), i.ptr("value")),
        _ => match a.id {
            Some(id) => (id, a.obj.ptr("id")),
            None => return Err(invalid(a.obj.ptr("id"), "the Appointment has neither an identifier nor an id")),
        },
    };
    external_id(id, at).map(str::to_owned)
}

fn appointment<'a>(
    resources: &Resources<'a>,
    a: &Res<'a>,
    sector: proto::Sector,
    fallback: Option<&SingleOrganisation<'_>>,
) -> Result<Read, AdapterError> {
    let id = appointment_id(a)?;
    let status = a.obj.required("status")?;
    let start = instant(&a.obj, "start")?;
    let end = instant(&a.obj, "end")?;
    if let (Some(s), Some(e)) = (start, end)
        && (e.seconds, e.nanos) <= (s.seconds, s.nanos)
    {
        return Err(invalid(a.obj.ptr("end"), "is not after start"));
    }
    let found = participants(resources, a)?;
    let (patient, patient_at) = match found.patients.as_slice() {
        [one] => one.clone(),
        [] => return Err(invalid(a.obj.ptr("participant"), "the Appointment has no Patient participant")),
        _ => return Err(invalid(a.obj.ptr("participant"), "the Appointment has more than one Patient participant")),
    };
    let reason = match a.obj.object("cancelationReason")? {
        Some(c) => concept_text(&c)?.unwrap_or_default(),
        None => String::new(),
    };
    let cancelled =
        |reason: String| Kind::AppointmentCancelled(proto::AppointmentCancelled { appointment_id: id.clone(), reason });
    let scheduled = |start: Timestamp, end: Timestamp| -> Result<Kind, AdapterError> {
        let [participant, service, role] = found.organisations.clone();
        let organisation = match participant.or(service).or(role) {
            Some(o) => Some(o),
            None => fallback.map(|f| f.read()).transpose()?,
        };
        Ok(Kind::AppointmentScheduled(proto::AppointmentScheduled {
            appointment: Some(proto::Appointment {
                appointment_id: id.clone(),
                custody_holder: PATIENT.into(),
                sector: sector as i32,
                organisation,
                professional: found.professional.clone(),
                title: capped(title(&a.obj)?, &a.obj.ptr("description"))?,
                start_time: Some(start),
                end_time: Some(end),
                location: found.location.clone().unwrap_or_default(),
                cancellation_reason: String::new(),
                cancelled: false,
            }),
        }))
    };
    let events = match status {
        s if SCHEDULED.contains(&s) => {
            let needed = format!("is required for a {s} appointment");
            let start = start.ok_or_else(|| invalid(a.obj.ptr("start"), needed.clone()))?;
            let end = end.ok_or_else(|| invalid(a.obj.ptr("end"), needed))?;
            vec![scheduled(start, end)?]
        }
        "cancelled" | "noshow" => {
            let reason = if reason.is_empty() && status == "noshow" { NO_SHOW.to_owned() } else { reason };
            // Known times: scheduled, then cancelled, so a cancellation bro never saw scheduled is recorded too.
            match start {
                Some(start) => {
                    let end = end.ok_or_else(|| invalid(a.obj.ptr("end"), "is required with start"))?;
                    vec![scheduled(start, end)?, cancelled(reason)]
                }
                None => vec![cancelled(reason)],
            }
        }
        "entered-in-error" => vec![cancelled(ENTERED_IN_ERROR.to_owned())],
        other => {
            return Err(invalid(
                a.obj.ptr("status"),
                format!(
                    "unknown status {}; expected {}, cancelled, noshow or entered-in-error",
                    quoted(other),
                    SCHEDULED.join(", ")
                ),
            ));
        }
    };
    Ok(Read { patient, patient_at, id, events })
}

/// The message's single Organization, used when an Appointment names none.
struct SingleOrganisation<'a> {
    obj: Obj<'a>,
}

impl SingleOrganisation<'_> {
    fn read(&self) -> Result<proto::Organisation, AdapterError> {
        organisation(&self.obj)
    }
}

/// The Organizations an Appointment contains.
fn contained_organisations<'a>(r: &Res<'a>) -> Result<Vec<Obj<'a>>, AdapterError> {
    let mut out = Vec::new();
    for o in r.obj.objects("contained")? {
        if o.str("resourceType")? == Some("Organization") {
            out.push(o);
        }
    }
    Ok(out)
}

/// The batch of a message's Appointments, dated `day` unless an
/// Appointment's own `meta.lastUpdated` must date it.
fn batch<'a>(
    resources: &Resources<'a>,
    appointments: &[Res<'a>],
    day: Option<proto::Date>,
    message_id: String,
    meta: &[(String, String)],
    allow_versions: bool,
) -> Result<proto::AdapterBatch, AdapterError> {
    let sector = sector(metadata(meta, "sector"))?;
    let organisations: Vec<&Res<'a>> = resources.list.iter().filter(|r| r.kind == "Organization").collect();
    let mut subject: Option<(proto::PersonIdentifier, String)> = None;
    let mut ids: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for a in appointments {
        // Fallback organisation: the Bundle's single Organization, else the Appointment's single contained one.
        let single = match organisations.as_slice() {
            [one] => Some(SingleOrganisation { obj: one.obj.clone() }),
            [] => match contained_organisations(a)?.as_slice() {
                [one] => Some(SingleOrganisation { obj: one.clone() }),
                _ => None,
            },
            _ => None,
        };
        let read = appointment(resources, a, sector, single.as_ref())?;
        if !allow_versions && ids.contains(&read.id) {
            return Err(invalid(
                a.obj.at.clone(),
                "is the same appointment as an earlier Appointment of the Bundle (only a history Bundle repeats one)",
            ));
        }
        ids.push(read.id.clone());
        match &subject {
            Some((p, _)) if *p != read.patient => {
                return Err(invalid(
                    read.patient_at,
                    "is another patient than the first Appointment's; a message concerns one patient",
                ));
            }
            Some(_) => {}
            None => subject = Some((read.patient.clone(), read.patient_at.clone())),
        }
        let occurred_on = match day {
            Some(d) => d,
            None => match last_updated(&a.obj)? {
                Some((t, at)) => danish_day(&t, &at)?,
                None => {
                    return Err(invalid(
                        "/timestamp",
                        "the time of the message is required: Bundle.timestamp, or meta.lastUpdated of the Bundle or of every Appointment",
                    ));
                }
            },
        };
        events.extend(read.events.into_iter().map(|kind| proto::CaseEvent {
            occurred_on: Some(occurred_on),
            kind: Some(kind),
            ..Default::default()
        }));
    }
    let Some((patient, _)) = subject else { return Err(invalid("/entry", "the message holds no Appointment")) };
    Ok(proto::AdapterBatch {
        subjects: vec![patient],
        case: String::new(),
        source_message_id: message_id,
        events,
        parties: Vec::new(),
        holistic_plan: None,
        settings: Default::default(),
        addressed_municipality: String::new(),
    })
}

/// The message id from the message, else the transport's `message-id`.
fn message_id(own: Option<(String, String)>, meta: &[(String, String)], at: &str) -> Result<String, AdapterError> {
    match own {
        Some((id, at)) => external_id(&id, at).map(str::to_owned),
        None => match metadata(meta, "message-id") {
            Some(id) => external_id(id, "metadata.message-id").map(str::to_owned),
            None => Err(invalid(at, "the message has no id of its own and the transport gave none")),
        },
    }
}

fn bundle(top: Obj<'_>, meta: &[(String, String)]) -> Result<proto::AdapterBatch, AdapterError> {
    let kind = top.required("type")?;
    if !BUNDLE_TYPES.contains(&kind) {
        return Err(AdapterError::Unsupported(format!(
            "a FHIR Bundle of type {}; the fhir adapter reads Bundles of type collection, searchset, transaction, batch or history",
            quoted(kind)
        )));
    }
    let history = kind == "history";
    // The message's day: its timestamp, else the Bundle's meta.lastUpdated.
    let day = match instant(&top, "timestamp")? {
        Some(t) => Some(danish_day(&t, &top.ptr("timestamp"))?),
        None => match last_updated(&top)? {
            Some((t, at)) => Some(danish_day(&t, &at)?),
            None => None,
        },
    };
    let own = match top.object("identifier")? {
        Some(i) if i.str("value")?.is_some() => i.str("value")?.map(|v| (v.to_owned(), i.ptr("value"))),
        _ => top.str("id")?.map(|id| (id.to_owned(), top.ptr("id"))),
    };
    let message_id = message_id(own, meta, "/identifier")?;

    let mut list = Vec::new();
    for (i, e) in top.array_of("entry", MAX_ENTRIES)?.iter().enumerate() {
        let entry = Obj::at(e, pointer("/entry", &i.to_string()))?;
        let full_url = entry.str("fullUrl")?;
        match entry.map.get("resource").filter(|v| !v.is_null()) {
            Some(v) => list.push(Res::at(v, entry.ptr("resource"), full_url, None)?),
            // A history entry without a resource records a deletion.
            None if history => {}
            None => return Err(invalid(entry.ptr("resource"), "is required")),
        }
    }
    let resources = Resources::new(list, true);
    let mut appointments: Vec<Res<'_>> = resources.list.iter().filter(|r| r.kind == "Appointment").cloned().collect();
    if appointments.is_empty() {
        return Err(invalid("/entry", "the Bundle holds no Appointment"));
    }
    if appointments.len() > MAX_LIST {
        return Err(invalid(
            "/entry",
            format!("the Bundle holds {} Appointments; at most {MAX_LIST} are read", appointments.len()),
        ));
    }
    // A history lists the newest version first; events go oldest first.
    if history {
        appointments.reverse();
    }
    batch(&resources, &appointments, day, message_id, meta, history)
}

fn single(top: Obj<'_>, meta: &[(String, String)]) -> Result<proto::AdapterBatch, AdapterError> {
    let res = Res { kind: "Appointment", id: top.str("id")?, full_url: None, obj: top.clone(), container: top.clone() };
    let version = match top.object("meta")? {
        Some(m) => m.str("versionId")?,
        None => None,
    };
    let own = match (res.id, version) {
        (Some(id), Some(v)) => Some((format!("Appointment/{id}/_history/{v}"), top.ptr("id"))),
        _ => None,
    };
    let message_id = message_id(own, meta, "/meta/versionId")?;
    let Some((t, at)) = last_updated(&top)? else {
        return Err(invalid("/meta/lastUpdated", "the time of the message is required"));
    };
    let day = danish_day(&t, &at)?;
    let resources = Resources::new(vec![res.clone()], false);
    batch(&resources, std::slice::from_ref(&res), Some(day), message_id, meta, false)
}

/// Reads one message.
pub fn read(body: &[u8], meta: &[(String, String)]) -> Result<proto::AdapterBatch, AdapterError> {
    let root = json::parse(body)?;
    let Value::Object(map) = &root else {
        return Err(AdapterError::Unsupported(
            "a JSON document that is not an object; the fhir adapter reads FHIR R4 JSON resources".into(),
        ));
    };
    let top = Obj { map, at: String::new() };
    match map.get("resourceType") {
        Some(Value::String(kind)) if kind == "Bundle" => bundle(top, meta),
        Some(Value::String(kind)) if kind == "Appointment" => single(top, meta),
        Some(Value::String(kind)) => Err(AdapterError::Unsupported(format!(
            "a FHIR {}; the fhir adapter reads Bundles of Appointments and single Appointments",
            quoted(kind)
        ))),
        _ => Err(AdapterError::Unsupported(
            "JSON without a resourceType is not a FHIR resource; the fhir adapter reads FHIR R4 JSON".into(),
        )),
    }
}
