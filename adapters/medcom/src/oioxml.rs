//! Reads MedCom OIOXML: the XDIS91 correspondence letter (`Emessage` with a
//! `ClinicalEmail` body, schema 2006/07/01). Any other OIOXML message (a
//! referral, a discharge letter, another schema version) is refused by name.
//!
//! The message id is the letter's identifier qualified by the sender's
//! EAN/GLN number (`EAN/Letter`): a letter sent again in a new envelope keeps
//! it, and two senders' letter numbers cannot collide. The thread id is the
//! letter identifier alone (XDIS91 has no conversations: each letter is its own).

use bro_adapter_sdk::proto::{self, PersonIdentifierKind as Kind};
use bro_adapter_sdk::xml::{Document, Node};
use bro_adapter_sdk::{AdapterError, invalid};

use crate::time;
use crate::xml::echo;
use crate::{Read, normalise_cpr};

/// The namespace prefix of MedCom OIOXML schema versions since 2005 (what this adapter writes).
pub const OIO_NS_PREFIX: &str = "http://rep.oio.dk/sundcom.dk/medcom.dk/xml/schemas/";
/// The namespace prefixes of every generation of MedCom OIOXML: the current
/// one, and the older `rep.oio.dk/medcom.dk` one.
const OIO_NS_PREFIXES: &[&str] = &[OIO_NS_PREFIX, "http://rep.oio.dk/medcom.dk/xml/schemas/"];
/// The schema version this reader knows.
pub const XDIS91_VERSION: &str = "2006/07/01";

/// The schema version (`2006/07/01`) of a MedCom OIOXML namespace of any
/// generation; `None` for any other namespace.
pub fn schema_version(namespace: &str) -> Option<&str> {
    OIO_NS_PREFIXES.iter().find_map(|p| namespace.strip_prefix(p)).map(|v| v.trim_end_matches('/'))
}

/// The message's type code (`XDIS91`, `XBIN01`, `XREF07`…): the first
/// `TypeCode` element of the body, wherever that message type keeps it.
fn type_code(body: Node<'_, '_>) -> Option<String> {
    let code = body.descendants().find(|d| d.is_element() && d.tag_name().name() == "TypeCode")?;
    let text: String = code.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The first child element of `node` with local name `name`.
fn el<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of the element at `path` below `node`, if present and not empty.
fn text_at(node: Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut at = node;
    for name in path {
        at = el(at, name)?;
    }
    let text: String = at.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Reads an `Emessage` document.
pub fn read(doc: &Document<'_>) -> Result<Read, AdapterError> {
    let root = doc.root_element();
    let version = root.tag_name().namespace().and_then(schema_version).unwrap_or_default();
    // The body is the element after the Envelope: ClinicalEmail, HospitalReferral, BinaryObject…
    let body = root.children().filter(|c| c.is_element()).find(|c| c.tag_name().name() != "Envelope");
    let body_name = body.map(|b| b.tag_name().name()).unwrap_or("no body");
    let type_code = body.and_then(type_code).unwrap_or_default();
    let type_code =
        if !type_code.is_empty() && type_code.len() <= 16 && type_code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            echo(&type_code, 16)
        } else {
            "a message".to_owned()
        };
    if root.tag_name().name() != "Emessage" || body_name != "ClinicalEmail" || type_code != "XDIS91" {
        return Err(AdapterError::Unsupported(format!(
            "{type_code} (MedCom OIOXML {}) is not a correspondence message; the medcom adapter reads XDIS91 and CareCommunication",
            echo(if root.tag_name().name() == "Emessage" { body_name } else { root.tag_name().name() }, 40)
        )));
    }
    if version != XDIS91_VERSION {
        return Err(AdapterError::Unsupported(format!(
            "XDIS91 (MedCom OIOXML ClinicalEmail) in schema version {}; the medcom adapter reads schema {XDIS91_VERSION}",
            echo(version, 40)
        )));
    }
    let Some(body) = body else { return Err(invalid("ClinicalEmail", "is missing")) };
    clinical_email(root, body)
}

fn required(node: Node<'_, '_>, path: &[&str], field: &str, what: &str) -> Result<String, AdapterError> {
    text_at(node, path).ok_or_else(|| invalid(field, what))
}

/// A `Date` and `Time` pair below `node` as a UTC timestamp.
fn date_time(node: Node<'_, '_>, field: &str) -> Result<Option<prost_types::Timestamp>, AdapterError> {
    let (date, time) = (text_at(node, &["Date"]), text_at(node, &["Time"]));
    if date.is_none() && time.is_none() {
        return Ok(None);
    }
    let date = date.as_deref().and_then(time::parse_date);
    let clock = time.as_deref().and_then(time::parse_time);
    match (date, clock) {
        (Some(d), Some((h, m, s))) => Ok(Some(time::from_copenhagen(d, h, m, s))),
        _ => Err(invalid(field, "a Date YYYY-MM-DD and a Time hh:mm are required")),
    }
}

fn organisation(party: Node<'_, '_>, field: &str) -> Result<proto::Organisation, AdapterError> {
    let ean = required(party, &["EANIdentifier"], &format!("{field}.EANIdentifier"), "the EAN/GLN number is required")?;
    if ean.len() != 13 || !ean.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{field}.EANIdentifier"), "is not a 13-digit EAN/GLN number"));
    }
    let names: Vec<String> =
        ["OrganisationName", "DepartmentName"].iter().filter_map(|n| text_at(party, &[n])).collect();
    Ok(proto::Organisation { display_name: names.join(", "), ean, ..Default::default() })
}

fn clinical_email(root: Node<'_, '_>, body: Node<'_, '_>) -> Result<Read, AdapterError> {
    let envelope = el(root, "Envelope").ok_or_else(|| invalid("Envelope", "is missing"))?;
    let send_time = el(envelope, "Sent")
        .map(|s| date_time(s, "Envelope.Sent"))
        .transpose()?
        .flatten()
        .ok_or_else(|| invalid("Envelope.Sent", "the date and time the letter was sent are required"))?;
    let letter = el(body, "Letter").ok_or_else(|| invalid("ClinicalEmail.Letter", "is missing"))?;
    let letter_id = required(letter, &["Identifier"], "ClinicalEmail.Letter.Identifier", "is required")?;
    let activity = match text_at(letter, &["StatusCode"]).as_deref() {
        Some("nytbrev") | None => proto::CorrespondenceActivity::New,
        Some(code @ ("rettetbrev" | "annulleretbrev")) => {
            return Err(AdapterError::Unsupported(format!(
                "XDIS91 with StatusCode {code} (a corrected or cancelled letter); bro records new letters only"
            )));
        }
        Some(other) => {
            return Err(invalid(
                "ClinicalEmail.Letter.StatusCode",
                format!("unknown code {:?}; expected nytbrev", echo(other, 30)),
            ));
        }
    };
    let write_time =
        el(letter, "Authorisation").map(|a| date_time(a, "ClinicalEmail.Letter.Authorisation")).transpose()?.flatten();

    let sender_node = el(body, "Sender").ok_or_else(|| invalid("ClinicalEmail.Sender", "the sender is required"))?;
    let sender = organisation(sender_node, "ClinicalEmail.Sender")?;
    let receiver_node =
        el(body, "Receiver").ok_or_else(|| invalid("ClinicalEmail.Receiver", "the receiver is required"))?;
    let receiver = organisation(receiver_node, "ClinicalEmail.Receiver")?;

    let patient = el(body, "Patient").ok_or_else(|| invalid("ClinicalEmail.Patient", "the patient is required"))?;
    let person = if let Some(cpr) = text_at(patient, &["CivilRegistrationNumber"]) {
        let value = normalise_cpr(&cpr).ok_or_else(|| {
            invalid("ClinicalEmail.Patient.CivilRegistrationNumber", "the patient identifier is not ten digits")
        })?;
        proto::PersonIdentifier { kind: Kind::Cpr as i32, value }
    } else if let Some(alternative) = text_at(patient, &["AlternativeIdentifier"]) {
        if alternative.len() > 64 || alternative.chars().any(char::is_whitespace) {
            return Err(invalid("ClinicalEmail.Patient.AlternativeIdentifier", "the patient identifier is malformed"));
        }
        proto::PersonIdentifier { kind: Kind::ReplacementCpr as i32, value: alternative }
    } else {
        return Err(invalid(
            "ClinicalEmail.Patient.CivilRegistrationNumber",
            "the patient identifier (CPR or replacement CPR) is required",
        ));
    };
    let episode_identifier = text_at(letter, &["EpisodeOfCareIdentifier"]).unwrap_or_default();
    let episode_status = text_at(patient, &["EpisodeOfCareStatusCode"]).unwrap_or_default();
    let episode_of_care = (!episode_identifier.is_empty() || !episode_status.is_empty())
        .then_some(proto::EpisodeOfCare { identifier: episode_identifier, status: episode_status });

    let priority = match text_at(body, &["AdditionalInformation", "Priority"]).as_deref() {
        Some("høj_prioritet") => proto::CorrespondencePriority::High,
        Some("rutine") | None => proto::CorrespondencePriority::Routine,
        Some(other) => {
            return Err(invalid(
                "ClinicalEmail.AdditionalInformation.Priority",
                format!("unknown code {:?}; expected rutine or høj_prioritet", echo(other, 30)),
            ));
        }
    };
    let subject = text_at(body, &["AdditionalInformation", "Subject"]).unwrap_or_default();

    let texts: Vec<String> = body
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "ClinicalInformation")
        .flat_map(|ci| ci.children().filter(|c| c.is_element() && c.tag_name().name().starts_with("Text")))
        .map(formatted_text)
        .filter(|t| !t.trim().is_empty())
        .collect();
    if texts.is_empty() {
        return Err(invalid("ClinicalEmail.ClinicalInformation.Text01", "the letter has no text"));
    }
    let unit = text_at(sender_node, &["UnitName"]).unwrap_or_default();
    let phone = text_at(sender_node, &["TelephoneSubscriberIdentifier"]).unwrap_or_default();
    let author = (!unit.is_empty() || !phone.is_empty()).then(|| proto::ContactPerson {
        display_name: unit,
        phone,
        ..Default::default()
    });
    let entry = proto::CorrespondenceEntry {
        entry_id: letter_id.clone(),
        write_time,
        author,
        author_organisation: Some(sender.clone()),
        text: texts.join("\n"),
        attachment: None,
    };
    let correspondence = proto::Correspondence {
        message_id: format!("{}/{letter_id}", sender.ean),
        thread_id: letter_id,
        activity: activity as i32,
        sender: Some(sender),
        receiver: Some(receiver),
        episode_of_care,
        priority: priority as i32,
        subject,
        entries: vec![entry],
        send_time: Some(send_time),
        ..Default::default()
    };
    Ok(Read { person, message_id: correspondence.message_id.clone(), correspondence })
}

/// A piece of formatted text before whitespace is settled.
#[derive(PartialEq)]
enum Piece {
    Text(String),
    Break,
    /// Layout whitespace of the XML file (a run with a line break in it).
    Soft,
}

/// The text of an OIOXML `FormattedTextType` element: `Break` (or `br`) is a
/// line break, `Space` a space, other markup (`Bold`, `FixedFont`, …) is
/// flattened to its text. Line breaks in the file itself are layout: dropped
/// next to a `Break` or at either end, else one space.
pub fn formatted_text(node: Node<'_, '_>) -> String {
    let mut pieces = Vec::new();
    // descendants() walks in document order without recursion, whatever the depth.
    for d in node.descendants().skip(1) {
        if d.is_element() {
            match d.tag_name().name() {
                "Break" | "br" => pieces.push(Piece::Break),
                "Space" => pieces.push(Piece::Text(" ".into())),
                _ => {}
            }
        } else if let Some(text) = d.text().filter(|_| d.is_text()) {
            split_layout(text, &mut pieces);
        }
    }
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Break => out.push('\n'),
            Piece::Soft => {
                let before = pieces.get(..i).and_then(|p| p.iter().rev().find(|p| **p != Piece::Soft));
                let after = pieces.get(i + 1..).and_then(|p| p.iter().find(|p| **p != Piece::Soft));
                let first_of_run = i == 0 || pieces.get(i - 1) != Some(&Piece::Soft);
                if matches!((before, after), (Some(Piece::Text(_)), Some(Piece::Text(_)))) && first_of_run {
                    out.push(' ');
                }
            }
        }
    }
    out
}

/// Splits text into words and layout whitespace (runs holding a line break).
fn split_layout(text: &str, pieces: &mut Vec<Piece>) {
    let mut word = String::new();
    let mut space = String::new();
    let flush_space = |space: &mut String, word: &mut String, pieces: &mut Vec<Piece>| {
        if space.contains(['\n', '\r']) {
            if !word.is_empty() {
                pieces.push(Piece::Text(std::mem::take(word)));
            }
            pieces.push(Piece::Soft);
        } else {
            word.push_str(space);
        }
        space.clear();
    };
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            space.push(c);
        } else {
            if !space.is_empty() {
                flush_space(&mut space, &mut word, pieces);
            }
            word.push(c);
        }
    }
    if !space.is_empty() {
        flush_space(&mut space, &mut word, pieces);
    }
    if !word.is_empty() {
        pieces.push(Piece::Text(word));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(xml: &str) -> String {
        let doc = bro_adapter_sdk::xml::parse(xml, &bro_adapter_sdk::xml::CAPS, "a test");
        doc.map(|d| formatted_text(d.root_element())).unwrap_or_default()
    }

    #[test]
    fn markup_is_flattened_and_breaks_become_newlines() {
        assert_eq!(flat("<T>a<Break/>b<Bold>c</Bold><Space/>d</T>"), "a\nbc d");
        assert_eq!(flat("<T>Hej <FixedFont><Break/>x</FixedFont>&quot;y&quot;</T>"), "Hej \nx\"y\"");
        assert_eq!(flat("<T><Underline>u<Break/></Underline><Italic>i</Italic></T>"), "u\ni");
    }

    #[test]
    fn every_generation_of_the_namespace_has_a_schema_version() {
        let old = "http://rep.oio.dk/medcom.dk/xml/schemas/2004/06/01/";
        assert_eq!(schema_version(old), Some("2004/06/01"));
        assert_eq!(schema_version(&format!("{OIO_NS_PREFIX}2006/07/01/")), Some("2006/07/01"));
        assert_eq!(schema_version("http://hl7.org/fhir"), None);
    }

    #[test]
    fn layout_whitespace_of_the_file_is_not_text() {
        assert_eq!(flat("<T>\n    first<br/>\n    second\n  </T>"), "first\nsecond");
        assert_eq!(flat("<T>one\n   two</T>"), "one two");
        assert_eq!(flat("<T>keep   spaces</T>"), "keep   spaces");
    }
}
