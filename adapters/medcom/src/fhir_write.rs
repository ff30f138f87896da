//! Writes a canonical correspondence as a MedCom FHIR CareCommunication 5.0
//! message Bundle (XML or JSON from the same tree).
//!
//! Ids are derived, never random: the MessageHeader id is the message id when
//! it is a UUID (else a name-based UUID of it); the Bundle, Patient,
//! Communication, Encounter and Provenance ids are name-based UUIDs of the
//! message id and the resource's role; Organization and Practitioner ids are
//! name-based UUIDs of their content, so they are the same in every message.

use base64::Engine as _;
use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, CorrespondenceActivity as Activity, PersonIdentifierKind as Kind};

use crate::fhir_read::{
    CPR_SYSTEM, EVENT_CODE, EXT_CONTACT, EXT_DATETIME, EXT_IDENTIFIER, EXT_PRACTITIONER, GLN_SYSTEM, SOR_SYSTEM,
};
use crate::fhir_tree::Obj;
use crate::ids::{fhir_id, name_uuid, uuid_of};
use crate::time::format_fhir_datetime;
use crate::{NAME_NOT_KNOWN, Outgoing, invalid_at};

const BASE: &str = "https://medcomfhir.dk/ig/carecommunication/";
const CC_PROFILES: &str = "http://medcomfhir.dk/ig/carecommunication/StructureDefinition/";
const CORE_PROFILES: &str = "http://medcomfhir.dk/ig/core/StructureDefinition/";
const TERMINOLOGY: &str = "http://medcomfhir.dk/ig/terminology/CodeSystem/";
const ORGANIZATION_PROFILE: &str =
    "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-organization";
const DESTINATION_USE: &str =
    "http://medcomfhir.dk/ig/messaging/StructureDefinition/medcom-messaging-destinationUseExtension";
const DEFINITION: &str =
    "http://medcomfhir.dk/ig/messagedefinitions/MessageDefinition/MedComCareCommunicationMessageDefinition|5.0";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const SOR_ENDPOINT: &str = "https://sor2.sum.dsdn.dk/#id=";
/// The replacement CPR system written (the canonical model does not keep the issuer's).
const REPLACEMENT_SYSTEM: &str = "urn:oid:1.2.208.176.1.6.1.1";
/// The category written when the canonical message has none (MedCom's "Andet").
const DEFAULT_CATEGORY: &str = "other";

/// The Encounter status and class of an episode-of-care status.
fn episode_status_to_fhir(status: &str) -> (&str, Option<&'static str>) {
    match status {
        "indlagt" => ("in-progress", Some("IMP")),
        "ambulant" | "ambulant_roentgen" => ("in-progress", Some("AMB")),
        "inaktiv" | "doed" => ("finished", None),
        s @ ("planned" | "arrived" | "triaged" | "in-progress" | "onleave" | "finished" | "cancelled"
        | "entered-in-error") => (s, None),
        _ => ("unknown", None),
    }
}

fn coding(system: &str, code: &str) -> Obj {
    Obj::new().s("system", system).s("code", code)
}

fn reference(kind: &str, id: &str) -> Obj {
    Obj::new().s("reference", format!("{kind}/{id}"))
}

fn meta(profile: String) -> Obj {
    Obj::new().strings("profile", vec![profile])
}

/// A short generated narrative (MedCom requires one in every resource).
fn narrative(summary: &str) -> Obj {
    Obj::new().s("status", "generated").narrative(summary)
}

fn urn(id: &str) -> String {
    format!("urn:uuid:{id}")
}

/// The Organizations of the message, each once, with content-derived ids.
#[derive(Default)]
struct Organizations {
    list: Vec<(String, proto::Organisation)>,
}

impl Organizations {
    fn id(&mut self, org: &proto::Organisation) -> String {
        if let Some((id, _)) = self.list.iter().find(|(_, o)| o == org) {
            return id.clone();
        }
        let id = name_uuid(&format!("organization/{}/{}/{}", org.ean, org.sor, org.display_name));
        self.list.push((id.clone(), org.clone()));
        id
    }
}

/// The authors (PractitionerRole + Practitioner), each once.
#[derive(Default)]
struct Authors {
    list: Vec<(String, String, String, String)>, // role id, practitioner id, name, role code
}

impl Authors {
    fn role_id(&mut self, name: &str, role: &str) -> String {
        if let Some(found) = self.list.iter().find(|a| a.2 == name && a.3 == role) {
            return found.0.clone();
        }
        let role_id = name_uuid(&format!("practitionerrole/{name}/{role}"));
        let practitioner_id = name_uuid(&format!("practitioner/{name}"));
        self.list.push((role_id.clone(), practitioner_id, name.to_owned(), role.to_owned()));
        role_id
    }
}

fn organization(id: &str, org: &proto::Organisation) -> Obj {
    let mut identifiers = Vec::new();
    if !org.ean.is_empty() {
        identifiers.push(Obj::new().s("system", GLN_SYSTEM).s("value", org.ean.as_str()));
    }
    if !org.sor.is_empty() {
        identifiers.push(Obj::new().s("system", SOR_SYSTEM).s("value", org.sor.as_str()));
    }
    let summary = if org.display_name.is_empty() { "Organization" } else { org.display_name.as_str() };
    Obj::resource("Organization")
        .s("id", id)
        .o("meta", meta(ORGANIZATION_PROFILE.into()))
        .o("text", narrative(summary))
        .list("identifier", identifiers)
        .s("name", org.display_name.as_str())
}

/// Given names and family name of a display name: the last word is the family name.
fn split_name(name: &str) -> (Vec<String>, String) {
    let mut words: Vec<String> = name.split_whitespace().map(str::to_owned).collect();
    let family = words.pop().unwrap_or_default();
    (words, family)
}

/// The Bundle of a correspondence message.
pub fn bundle(out: &Outgoing<'_>) -> Result<Obj, AdapterError> {
    let c = out.correspondence;
    let message_id = c.message_id.as_str();
    let header_id = fhir_id(message_id);
    let derived = |role: &str| name_uuid(&format!("{message_id}#{role}"));
    let (bundle_id, patient_id, communication_id) = (derived("bundle"), derived("patient"), derived("communication"));
    let (encounter_id, provenance_id) = (derived("encounter"), derived("provenance"));
    let mut orgs = Organizations::default();
    let mut authors = Authors::default();
    let receiver_id = orgs.id(out.receiver);
    let sender_id = orgs.id(out.sender);
    let sent = format_fhir_datetime(&out.send_time);

    let activity = match c.activity() {
        Activity::New => "new-message",
        Activity::Reply => "reply-message",
        Activity::Forward => "forward-message",
        Activity::Unspecified => return Err(invalid_at(&out.path, "activity", "new, reply or forward is required")),
    };
    // The conversation id travels as a `urn:uuid:`; a non-UUID thread id is hashed into one.
    let thread = match (uuid_of(&c.thread_id), c.thread_id.is_empty()) {
        (Some(u), _) => urn(&u),
        (None, false) => urn(&name_uuid(&format!("thread/{}", c.thread_id))),
        (None, true) => urn(&derived("thread")),
    };

    let mut payloads = Vec::new();
    for (i, e) in c.entries.iter().enumerate() {
        let entry_id = match (uuid_of(&e.entry_id), e.entry_id.is_empty()) {
            (Some(u), _) => urn(&u),
            (None, false) => urn(&name_uuid(&format!("entry/{}", e.entry_id))),
            (None, true) => urn(&derived(&format!("entry/{i}"))),
        };
        // MedCom wants every payload's identifier assigned; without an author organisation, the sender did.
        let assigner = e.author_organisation.as_ref().map_or_else(|| sender_id.clone(), |o| orgs.id(o));
        let written = e.write_time.as_ref().map_or_else(|| sent.clone(), format_fhir_datetime);
        let mut extensions = vec![
            Obj::extension(EXT_DATETIME).s("valueDateTime", written),
            Obj::extension(EXT_IDENTIFIER).o(
                "valueIdentifier",
                Obj::new().s("value", entry_id).o("assigner", reference("Organization", &assigner)),
            ),
        ];
        if let Some(a) = &e.author {
            if !a.display_name.is_empty() || !a.role.is_empty() {
                let role_id = authors.role_id(&a.display_name, &a.role);
                extensions.push(
                    Obj::extension(EXT_PRACTITIONER).o("valueReference", reference("PractitionerRole", &role_id)),
                );
            }
            // The contact extension holds one contact point: the phone number, else the e-mail address.
            let (system, value) = if a.phone.is_empty() { ("email", &a.email) } else { ("phone", &a.phone) };
            if !value.is_empty() {
                extensions.push(
                    Obj::extension(EXT_CONTACT)
                        .o("valueContactPoint", Obj::new().s("system", system).s("value", value.as_str())),
                );
            }
        }
        let payload = Obj::new().list("extension", extensions);
        payloads.push(match (&e.attachment, e.text.is_empty()) {
            (None, false) => payload.s("contentString", e.text.as_str()),
            (Some(a), true) => {
                let data = base64::engine::general_purpose::STANDARD.encode(&a.data);
                let creation = a.create_time.as_ref().map(format_fhir_datetime).unwrap_or_default();
                payload.o(
                    "contentAttachment",
                    Obj::new()
                        .s("contentType", a.content_type.as_str())
                        .s("data", data)
                        .s("url", a.url.as_str())
                        .s("title", a.title.as_str())
                        .s("creation", creation),
                )
            }
            (None, true) => {
                return Err(invalid_at(&out.path, &format!("entries[{i}]"), "has neither text nor attachment"));
            }
            (Some(_), false) => {
                return Err(invalid_at(&out.path, &format!("entries[{i}]"), "has both text and an attachment"));
            }
        });
    }

    // An Encounter only carries an episode of care that has an identifier.
    let episode = c.episode_of_care.as_ref().filter(|e| !e.identifier.is_empty());
    let category = if c.category.is_empty() { DEFAULT_CATEGORY } else { c.category.as_str() };
    let communication = Obj::resource("Communication")
        .s("id", communication_id.as_str())
        .o("meta", meta(format!("{CC_PROFILES}medcom-careCommunication-communication")))
        .o("text", narrative(if c.subject.is_empty() { "CareCommunication" } else { c.subject.as_str() }))
        .list("identifier", vec![Obj::new().s("value", thread)])
        .s("status", "unknown")
        .list(
            "category",
            vec![Obj::new().list(
                "coding",
                vec![coding(&format!("{TERMINOLOGY}medcom-careCommunication-categoryCodes"), category)],
            )],
        )
        .s("priority", if c.priority() == proto::CorrespondencePriority::High { "asap" } else { "" })
        .o("subject", reference("Patient", &patient_id))
        .o("topic", Obj::new().s("text", c.subject.as_str()))
        .o("encounter", if episode.is_some() { reference("Encounter", &encounter_id) } else { Obj::new() })
        .list("payload", payloads);

    let (system, use_) = match out.person.kind() {
        Kind::Cpr => (CPR_SYSTEM, ""),
        _ => (REPLACEMENT_SYSTEM, "temp"),
    };
    let patient = Obj::resource("Patient")
        .s("id", patient_id.as_str())
        .o("meta", meta(format!("{CORE_PROFILES}medcom-core-patient")))
        .o("text", narrative("Patient"))
        .list("identifier", vec![Obj::new().s("use", use_).s("system", system).s("value", out.person.value.as_str())])
        .list("name", vec![Obj::new().s("use", "official").s("family", NAME_NOT_KNOWN)]);

    // Endpoints are SOR addresses; without a SOR code (an XDIS91 party) there is none to write.
    let endpoint = |org: &proto::Organisation| {
        if org.sor.is_empty() { String::new() } else { format!("{SOR_ENDPOINT}{}", org.sor) }
    };
    let header = Obj::resource("MessageHeader")
        .s("id", header_id.as_str())
        .o("meta", meta(format!("{CC_PROFILES}medcom-careCommunication-messageHeader")))
        .o("text", narrative(&format!("CareCommunication, {activity}")))
        .o("eventCoding", coding(&format!("{TERMINOLOGY}medcom-messaging-eventCodes"), EVENT_CODE))
        .list(
            "destination",
            vec![
                Obj::new()
                    .list(
                        "extension",
                        vec![Obj::extension(DESTINATION_USE).o(
                            "valueCoding",
                            coding(&format!("{TERMINOLOGY}medcom-messaging-destinationUse"), "primary"),
                        )],
                    )
                    .s("endpoint", endpoint(out.receiver))
                    .o("receiver", reference("Organization", &receiver_id)),
            ],
        )
        .o("sender", reference("Organization", &sender_id))
        .o("source", Obj::new().s("endpoint", endpoint(out.sender)))
        .list("focus", vec![reference("Communication", &communication_id)])
        .s("definition", DEFINITION);

    // A reply or a forward points at the earlier MessageHeader as its `revision`.
    let mut entities = Vec::new();
    if !c.in_reply_to.is_empty() {
        entities.push(Obj::new().s("role", "revision").o("what", reference("MessageHeader", &fhir_id(&c.in_reply_to))));
    } else if c.activity() == Activity::Reply {
        return Err(invalid_at(&out.path, "in_reply_to", "a reply names the message it answers"));
    }
    let provenance = Obj::resource("Provenance")
        .s("id", provenance_id.as_str())
        .o("meta", meta(format!("{CC_PROFILES}medcom-careCommunication-provenance")))
        .o("text", narrative(activity))
        .list("target", vec![reference("MessageHeader", &header_id)])
        .s("occurredDateTime", sent.as_str())
        .s("recorded", sent.as_str())
        .o(
            "activity",
            Obj::new().list("coding", vec![coding(&format!("{TERMINOLOGY}medcom-messaging-activityCodes"), activity)]),
        )
        .list("agent", vec![Obj::new().o("who", reference("Organization", &sender_id))])
        .list("entity", entities);

    // Entries in the samples' order: header, patient, communication, then what they refer to.
    let mut resources = vec![("MessageHeader", header_id.clone(), header), ("Patient", patient_id.clone(), patient)];
    resources.push(("Communication", communication_id.clone(), communication));
    if let Some(e) = episode {
        let (status, class) = episode_status_to_fhir(&e.status);
        let system = endpoint(out.sender);
        let encounter = Obj::resource("Encounter")
            .s("id", encounter_id.as_str())
            .o("meta", meta(format!("{CORE_PROFILES}medcom-core-encounter")))
            .o("text", narrative(&format!("Encounter, {status}")))
            .s("status", status)
            .o("class", class.map_or_else(Obj::new, |c| coding(ACT_CODE, c)))
            .o("subject", reference("Patient", &patient_id))
            .list(
                "episodeOfCare",
                vec![Obj::new().o("identifier", Obj::new().s("system", system).s("value", e.identifier.as_str()))],
            );
        resources.push(("Encounter", encounter_id.clone(), encounter));
    }
    for (role_id, practitioner_id, name, role) in &authors.list {
        let codes = if role.is_empty() {
            Vec::new()
        } else {
            vec![Obj::new().list(
                "coding",
                vec![coding(&format!("{TERMINOLOGY}medcom-core-PractitionerRolesSKSadministrativ"), role)],
            )]
        };
        // A role without a name (no Practitioner) still says which profession wrote.
        let with_name = !name.is_empty();
        let practitioner_ref = if with_name { reference("Practitioner", practitioner_id) } else { Obj::new() };
        let practitioner_role = Obj::resource("PractitionerRole")
            .s("id", role_id.as_str())
            .o("meta", meta(format!("{CORE_PROFILES}medcom-core-practitionerrole")))
            .o("text", narrative(if role.is_empty() { "PractitionerRole" } else { role.as_str() }))
            .o("practitioner", practitioner_ref)
            .list("code", codes);
        resources.push(("PractitionerRole", role_id.clone(), practitioner_role));
        if with_name {
            let (given, family) = split_name(name);
            let practitioner = Obj::resource("Practitioner")
                .s("id", practitioner_id.as_str())
                .o("meta", meta(format!("{CORE_PROFILES}medcom-core-practitioner")))
                .o("text", narrative("Practitioner"))
                .list("name", vec![Obj::new().s("family", family).strings("given", given)]);
            resources.push(("Practitioner", practitioner_id.clone(), practitioner));
        }
    }
    for (id, org) in &orgs.list {
        resources.push(("Organization", id.clone(), organization(id, org)));
    }
    resources.push(("Provenance", provenance_id, provenance));

    let entries = resources
        .into_iter()
        .map(|(kind, id, resource)| Obj::new().s("fullUrl", format!("{BASE}{kind}/{id}")).o("resource", resource))
        .collect();
    Ok(Obj::resource("Bundle")
        .s("id", bundle_id)
        .o("meta", meta(format!("{CC_PROFILES}medcom-careCommunication-message")))
        .s("type", "message")
        .s("timestamp", sent)
        .list("entry", entries))
}
