//! Reads MedCom FHIR CareCommunication messages (5.0), in FHIR XML and FHIR
//! JSON alike: one reader walks a [`Node`] that is either a JSON value or an
//! XML element, so both forms of a Bundle give the same canonical output.
//!
//! The message id is the MessageHeader's id; the thread id the
//! Communication's identifier (shared by a conversation); the activity and
//! the message replied to come from the Provenance whose target is this
//! message's MessageHeader.

use base64::Engine as _;
use bro_adapter_sdk::proto::{self, PersonIdentifierKind as Kind};
use bro_adapter_sdk::xml::{Document, Node as XmlNode};
use bro_adapter_sdk::{AdapterError, invalid, malformed};
use serde_json::Value;

use crate::fhir_tree::FHIR_NS;
use crate::xml::echo;
use crate::{Read, normalise_cpr, time};

/// MedCom's message event code for a CareCommunication.
pub const EVENT_CODE: &str = "care-communication-message";
/// The CPR number's identifier system.
pub const CPR_SYSTEM: &str = "urn:oid:1.2.208.176.1.2";
/// The prefix of the regions' replacement CPR systems.
pub const REPLACEMENT_PREFIX: &str = "urn:oid:1.2.208.176.1.6.1.";
/// The SOR code's identifier system.
pub const SOR_SYSTEM: &str = "urn:oid:1.2.208.176.1.1";
/// The GLN (EAN location number) identifier system MedCom uses.
pub const GLN_SYSTEM: &str = "https://www.gs1.org/gln";
/// The older GLN system (GS1's OID).
const GLN_OID: &str = "urn:oid:1.3.88";
/// The payload write-time extension.
pub const EXT_DATETIME: &str = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-datetime-extension";
/// The payload identifier extension.
pub const EXT_IDENTIFIER: &str = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-identifier-extension";
/// The payload author extension.
pub const EXT_PRACTITIONER: &str =
    "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-practitioner-extension";
/// The payload author's contact extension.
pub const EXT_CONTACT: &str = "http://medcomfhir.dk/ig/core/StructureDefinition/medcom-core-contact-extension";

/// An element of a FHIR resource, in either form.
#[derive(Clone, Copy)]
enum Node<'a, 'i> {
    Json(&'a Value),
    Xml(XmlNode<'a, 'i>),
}

impl<'a, 'i> Node<'a, 'i> {
    /// The child elements called `name` (a JSON array or single value; repeated XML elements).
    fn children(self, name: &str) -> Vec<Node<'a, 'i>> {
        match self {
            Node::Json(v) => match v.get(name) {
                Some(Value::Array(items)) => items.iter().map(Node::Json).collect(),
                Some(item) => vec![Node::Json(item)],
                None => Vec::new(),
            },
            Node::Xml(n) => n
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(FHIR_NS))
                .map(Node::Xml)
                .collect(),
        }
    }

    fn child(self, name: &str) -> Option<Node<'a, 'i>> {
        self.children(name).into_iter().next()
    }

    /// A primitive's value (a JSON string; an XML `value` attribute), if not empty.
    fn value(self) -> Option<&'a str> {
        let v = match self {
            Node::Json(v) => v.as_str(),
            Node::Xml(n) => n.attribute("value"),
        };
        v.filter(|s| !s.is_empty())
    }

    /// The primitive child `name`'s value.
    fn str(self, name: &str) -> Option<&'a str> {
        self.child(name).and_then(Node::value)
    }

    /// Walks a path of single children to a primitive.
    fn at(self, path: &[&str]) -> Option<&'a str> {
        let (last, init) = path.split_last()?;
        let mut node = self;
        for name in init {
            node = node.child(name)?;
        }
        node.str(last)
    }

    /// An extension's `url`.
    fn url(self) -> Option<&'a str> {
        match self {
            Node::Json(v) => v.get("url").and_then(Value::as_str),
            Node::Xml(n) => n.attribute("url"),
        }
    }

    /// The extensions with `url`.
    fn extension(self, url: &str) -> Option<Node<'a, 'i>> {
        self.children("extension").into_iter().find(|e| e.url() == Some(url))
    }

    /// A resource and its type: JSON `resourceType`, or the XML element wrapped by `resource`.
    fn resource(self) -> Option<(&'a str, Node<'a, 'i>)> {
        match self {
            Node::Json(v) => v.get("resourceType").and_then(Value::as_str).map(|t| (t, self)),
            Node::Xml(n) => n.children().find(|c| c.is_element()).map(|c| (c.tag_name().name(), Node::Xml(c))),
        }
    }
}

/// One resource of the Bundle.
struct Entry<'a, 'i> {
    full_url: Option<&'a str>,
    kind: &'a str,
    id: Option<&'a str>,
    node: Node<'a, 'i>,
}

/// The Bundle's resources, for resolving references.
struct Bundle<'a, 'i> {
    entries: Vec<Entry<'a, 'i>>,
}

impl<'a, 'i> Bundle<'a, 'i> {
    /// The index of the resource a reference names: by `fullUrl`, else by a
    /// RESTful `fullUrl` ending in it, else by its last two segments `Type/id`.
    fn index_of(&self, reference: &str) -> Option<usize> {
        let by_url = self.entries.iter().position(|e| e.full_url == Some(reference));
        let by_base = || {
            self.entries.iter().position(|e| {
                e.full_url.is_some_and(|u| u.strip_suffix(reference).is_some_and(|base| base.ends_with('/')))
            })
        };
        let by_id = || {
            let mut parts = reference.rsplit('/');
            let (id, kind) = (parts.next()?, parts.next()?);
            self.entries.iter().position(|e| e.kind == kind && e.id == Some(id))
        };
        by_url.or_else(by_base).or_else(by_id)
    }

    /// The resource a reference names.
    fn resolve(&self, reference: &str) -> Option<&Entry<'a, 'i>> {
        self.entries.get(self.index_of(reference)?)
    }

    /// The resource `node.reference` names, if it is of `kind`.
    fn follow(&self, node: Option<Node<'a, 'i>>, kind: &str) -> Option<Node<'a, 'i>> {
        let reference = node?.str("reference")?;
        self.resolve(reference).filter(|e| e.kind == kind).map(|e| e.node)
    }

    fn first(&self, kind: &str) -> Option<Node<'a, 'i>> {
        self.entries.iter().find(|e| e.kind == kind).map(|e| e.node)
    }
}

/// Reads a CareCommunication from FHIR JSON bytes.
pub fn read_json(body: &[u8]) -> Result<Read, AdapterError> {
    bro_adapter_sdk::json::within_caps(body, &bro_adapter_sdk::json::CAPS)?;
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("{}:{}", e.line(), e.column()), format!("not JSON: {e}")))?;
    let kind = root.get("resourceType").and_then(Value::as_str).unwrap_or("JSON without a resourceType");
    read(Node::Json(&root), kind)
}

/// Reads a CareCommunication from a parsed FHIR XML document.
pub fn read_xml(doc: &Document<'_>) -> Result<Read, AdapterError> {
    let root = doc.root_element();
    read(Node::Xml(root), root.tag_name().name())
}

fn read(root: Node<'_, '_>, kind: &str) -> Result<Read, AdapterError> {
    if kind != "Bundle" {
        return Err(AdapterError::Unsupported(format!(
            "a FHIR {} is not a MedCom message; the medcom adapter reads CareCommunication message Bundles and XDIS91",
            echo(kind, 40)
        )));
    }
    let bundle_type = root.str("type").unwrap_or("without a type");
    if bundle_type != "message" {
        return Err(AdapterError::Unsupported(format!(
            "a FHIR Bundle {} is not a MedCom message; the medcom adapter reads CareCommunication message Bundles",
            echo(bundle_type, 40)
        )));
    }
    let mut entries = Vec::new();
    for (i, e) in root.children("entry").into_iter().enumerate() {
        let (kind, node) = e
            .child("resource")
            .and_then(Node::resource)
            .ok_or_else(|| invalid(format!("Bundle.entry[{i}].resource"), "is missing"))?;
        entries.push(Entry { full_url: e.str("fullUrl"), kind, id: node.str("id"), node });
    }
    let bundle = Bundle { entries };
    let header = match bundle.entries.first() {
        Some(e) if e.kind == "MessageHeader" => e,
        _ => return Err(invalid("Bundle.entry[0]", "the first entry of a message Bundle must be its MessageHeader")),
    };
    let (header_node, header_id) = (header.node, header.id);
    let event =
        header_node.at(&["eventCoding", "code"]).ok_or_else(|| invalid("MessageHeader.eventCoding", "is required"))?;
    if event != EVENT_CODE {
        let code = if event.len() <= 60 && event.bytes().all(|b| b.is_ascii_graphic()) {
            echo(event, 60)
        } else {
            "an event".to_owned()
        };
        return Err(AdapterError::Unsupported(format!(
            "{code} (MedCom FHIR) is not a correspondence message; the medcom adapter reads XDIS91 and CareCommunication"
        )));
    }
    let send_time = root
        .str("timestamp")
        .map(|t| time::parse_fhir_datetime(t).ok_or_else(|| invalid("Bundle.timestamp", "is not a FHIR instant")))
        .transpose()?
        .ok_or_else(|| invalid("Bundle.timestamp", "the time the message was sent is required"))?;

    let sender = bundle
        .follow(header_node.child("sender"), "Organization")
        .map(organisation)
        .ok_or_else(|| invalid("MessageHeader.sender", "the sender Organization is required"))?;
    let destinations = header_node.children("destination");
    let primary = destinations
        .iter()
        .find(|d| d.children("extension").iter().any(|x| x.at(&["valueCoding", "code"]) == Some("primary")))
        .or(destinations.first())
        .copied();
    let receiver = bundle
        .follow(primary.and_then(|d| d.child("receiver")), "Organization")
        .map(organisation)
        .ok_or_else(|| invalid("MessageHeader.destination.receiver", "the receiver Organization is required"))?;

    let communication = bundle
        .follow(header_node.child("focus"), "Communication")
        .or_else(|| bundle.first("Communication"))
        .ok_or_else(|| invalid("MessageHeader.focus", "the Communication is required"))?;
    let patient = bundle
        .follow(communication.child("subject"), "Patient")
        .or_else(|| bundle.first("Patient"))
        .ok_or_else(|| invalid("Communication.subject", "the Patient is required"))?;
    let person = person(patient)?;
    let thread_id = communication
        .child("identifier")
        .and_then(|i| i.str("value"))
        .ok_or_else(|| invalid("Communication.identifier", "the conversation's identifier is required"))?;
    let category = communication.child("category").and_then(|c| c.child("coding")).and_then(|c| c.str("code"));
    let priority = match communication.str("priority") {
        None | Some("routine") => proto::CorrespondencePriority::Routine,
        Some("asap" | "urgent" | "stat") => proto::CorrespondencePriority::High,
        Some(other) => {
            return Err(invalid(
                "Communication.priority",
                format!("unknown code {:?}; expected routine or asap", echo(other, 30)),
            ));
        }
    };
    let episode_of_care = bundle.follow(communication.child("encounter"), "Encounter").and_then(episode);

    let mut entries = Vec::new();
    for (i, payload) in communication.children("payload").into_iter().enumerate() {
        entries.push(entry(&bundle, payload, i)?);
    }
    if entries.is_empty() {
        return Err(invalid("Communication.payload", "at least one text or attachment is required"));
    }

    let (activity, in_reply_to) = provenance(&bundle)?;
    let correspondence = proto::Correspondence {
        message_id: header_id.unwrap_or_default().to_owned(),
        thread_id: thread_id.to_owned(),
        in_reply_to,
        activity: activity as i32,
        sender: Some(sender),
        receiver: Some(receiver),
        episode_of_care,
        priority: priority as i32,
        category: category.unwrap_or_default().to_owned(),
        subject: communication.at(&["topic", "text"]).unwrap_or_default().to_owned(),
        entries,
        send_time: Some(send_time),
        ..Default::default()
    };
    Ok(Read { person, message_id: correspondence.message_id.clone(), correspondence })
}

fn organisation(org: Node<'_, '_>) -> proto::Organisation {
    let mut out =
        proto::Organisation { display_name: org.str("name").unwrap_or_default().to_owned(), ..Default::default() };
    for identifier in org.children("identifier") {
        let value = identifier.str("value").unwrap_or_default().to_owned();
        match identifier.str("system") {
            Some(GLN_SYSTEM | GLN_OID) => out.ean = value,
            Some(SOR_SYSTEM) => out.sor = value,
            _ => {}
        }
    }
    out
}

/// The patient's CPR number, else a replacement CPR number.
fn person(patient: Node<'_, '_>) -> Result<proto::PersonIdentifier, AdapterError> {
    let identifiers = patient.children("identifier");
    if let Some(cpr) = identifiers.iter().find(|i| i.str("system") == Some(CPR_SYSTEM)) {
        let value = cpr
            .str("value")
            .and_then(normalise_cpr)
            .ok_or_else(|| invalid("Patient.identifier", "the patient identifier is not ten digits"))?;
        return Ok(proto::PersonIdentifier { kind: Kind::Cpr as i32, value });
    }
    let replacement = identifiers.iter().find(|i| {
        let system = i.str("system").unwrap_or_default();
        system.starts_with(REPLACEMENT_PREFIX) || (i.str("use") == Some("temp") && !system.is_empty())
    });
    match replacement.and_then(|i| i.str("value")) {
        Some(v) if v.len() <= 64 && !v.chars().any(char::is_whitespace) => {
            Ok(proto::PersonIdentifier { kind: Kind::ReplacementCpr as i32, value: v.to_owned() })
        }
        Some(_) => Err(invalid("Patient.identifier", "the patient identifier is malformed")),
        None => Err(invalid("Patient.identifier", "the patient has no CPR or replacement CPR identifier")),
    }
}

/// The episode of care named by an Encounter.
fn episode(encounter: Node<'_, '_>) -> Option<proto::EpisodeOfCare> {
    let identifier = encounter.child("episodeOfCare").and_then(|e| e.child("identifier")).and_then(|i| i.str("value"));
    let status = episode_status_from_fhir(
        encounter.str("status").unwrap_or_default(),
        encounter.at(&["class", "code"]).unwrap_or_default(),
    );
    identifier.map(|id| proto::EpisodeOfCare { identifier: id.to_owned(), status })
}

fn entry(bundle: &Bundle<'_, '_>, payload: Node<'_, '_>, i: usize) -> Result<proto::CorrespondenceEntry, AdapterError> {
    let field = |f: &str| format!("Communication.payload[{i}].{f}");
    let write_time = match payload.extension(EXT_DATETIME).and_then(|x| x.str("valueDateTime")) {
        Some(t) => {
            Some(time::parse_fhir_datetime(t).ok_or_else(|| invalid(field("extension"), "is not a FHIR dateTime"))?)
        }
        None => None,
    };
    let identifier = payload.extension(EXT_IDENTIFIER).and_then(|x| x.child("valueIdentifier"));
    let author_organisation =
        bundle.follow(identifier.and_then(|i| i.child("assigner")), "Organization").map(organisation);
    let mut author = payload.extension(EXT_PRACTITIONER).and_then(|x| {
        let role = bundle.follow(x.child("valueReference"), "PractitionerRole")?;
        let practitioner = bundle.follow(role.child("practitioner"), "Practitioner");
        let name = practitioner.and_then(|p| p.child("name")).map(human_name).unwrap_or_default();
        let code = role.child("code").and_then(|c| c.child("coding")).and_then(|c| c.str("code"));
        Some(proto::ContactPerson {
            display_name: name,
            role: code.unwrap_or_default().to_owned(),
            ..Default::default()
        })
    });
    if let Some(contact) = payload.extension(EXT_CONTACT).and_then(|x| x.child("valueContactPoint")) {
        let a = author.get_or_insert_with(proto::ContactPerson::default);
        let value = contact.str("value").unwrap_or_default().to_owned();
        match contact.str("system") {
            Some("email") => a.email = value,
            _ => a.phone = value,
        }
    }
    let mut out = proto::CorrespondenceEntry {
        entry_id: identifier.and_then(|i| i.str("value")).unwrap_or_default().to_owned(),
        write_time,
        author,
        author_organisation,
        ..Default::default()
    };
    if let Some(text) = payload.str("contentString") {
        out.text = text.to_owned();
    } else if let Some(a) = payload.child("contentAttachment") {
        let data = match a.str("data") {
            Some(d) => {
                // Line breaks in base64 are common; copied out only when present.
                let compact: std::borrow::Cow<'_, [u8]> = if d.bytes().any(|b| b.is_ascii_whitespace()) {
                    d.bytes().filter(|b| !b.is_ascii_whitespace()).collect::<Vec<u8>>().into()
                } else {
                    d.as_bytes().into()
                };
                base64::engine::general_purpose::STANDARD
                    .decode(&compact)
                    .map_err(|_| invalid(field("contentAttachment.data"), "is not base64"))?
            }
            None => Vec::new(),
        };
        let create_time = match a.str("creation") {
            Some(t) => Some(
                time::parse_fhir_datetime(t)
                    .ok_or_else(|| invalid(field("contentAttachment.creation"), "is not a FHIR dateTime"))?,
            ),
            None => None,
        };
        out.attachment = Some(proto::Attachment {
            title: a.str("title").unwrap_or_default().to_owned(),
            content_type: a.str("contentType").unwrap_or_default().to_owned(),
            data,
            url: a.str("url").unwrap_or_default().to_owned(),
            create_time,
        });
    } else {
        return Err(invalid(field("content[x]"), "a contentString or a contentAttachment is required"));
    }
    Ok(out)
}

/// A HumanName as one string: its `text`, else given names then family.
fn human_name(name: Node<'_, '_>) -> String {
    if let Some(text) = name.str("text") {
        return text.to_owned();
    }
    let mut parts: Vec<&str> = name.children("given").into_iter().filter_map(Node::value).collect();
    parts.extend(name.str("family"));
    parts.join(" ")
}

/// The activity and the message replied to or forwarded, from the Provenance
/// whose target is this message's MessageHeader.
fn provenance(bundle: &Bundle<'_, '_>) -> Result<(proto::CorrespondenceActivity, String), AdapterError> {
    // The MessageHeader is the first entry; a target is ours if it resolves to it.
    let own = |reference: &str| bundle.index_of(reference) == Some(0);
    let provenance = bundle
        .entries
        .iter()
        .filter(|e| e.kind == "Provenance")
        .find(|e| e.node.children("target").iter().any(|t| t.str("reference").is_some_and(own)))
        .ok_or_else(|| {
            invalid("Provenance", "no Provenance has the MessageHeader as its target, so the activity is unknown")
        })?
        .node;
    let activity = match provenance.child("activity").and_then(|a| a.child("coding")).and_then(|c| c.str("code")) {
        Some("new-message") => proto::CorrespondenceActivity::New,
        Some("reply-message") => proto::CorrespondenceActivity::Reply,
        Some("forward-message") => proto::CorrespondenceActivity::Forward,
        Some(other) => {
            return Err(invalid(
                "Provenance.activity",
                format!("unknown code {:?}; expected new-message, reply-message or forward-message", echo(other, 40)),
            ));
        }
        None => return Err(invalid("Provenance.activity", "is required")),
    };
    let revision = provenance.children("entity").into_iter().find(|e| e.str("role") == Some("revision"));
    let in_reply_to = revision
        .and_then(|r| r.child("what"))
        .and_then(|w| {
            w.str("reference")
                .map(|r| r.strip_prefix("urn:uuid:").unwrap_or_else(|| r.rsplit('/').next().unwrap_or(r)))
                .or_else(|| w.child("identifier").and_then(|i| i.str("value")))
        })
        .unwrap_or_default()
        .to_owned();
    Ok((activity, in_reply_to))
}

/// The episode-of-care status (OIOXML's codes where they map) of an
/// Encounter's FHIR status and class.
pub fn episode_status_from_fhir(status: &str, class: &str) -> String {
    match (status, class) {
        ("in-progress", "IMP") => "indlagt".into(),
        ("in-progress", "AMB") => "ambulant".into(),
        ("finished", _) => "inaktiv".into(),
        ("unknown", _) => String::new(),
        (other, _) => other.into(),
    }
}
