//! Writes a canonical correspondence as a MedCom XDIS91 letter (OIOXML,
//! schema 2006/07/01), encoded in windows-1252 as MedCom's OIOXML is: a
//! character that code page lacks becomes a numeric character reference, a
//! line break becomes `<Break/>`.
//!
//! Identifiers: a message id of the form `EAN/Letter` (as read from XDIS91)
//! gives back its letter identifier; any other id gives the first 14 hex
//! digits of its SHA-1. The envelope identifier is derived the same way from
//! the message id and `#envelope`. Attachments cannot travel inline in XDIS91
//! (they are separate BIN objects) and are refused.

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::proto::{self, PersonIdentifierKind as Kind};
use bro_adapter_sdk::xml::XmlWriter;
use encoding_rs::WINDOWS_1252;

use crate::ids::{is_oio_identifier, oio_identifier};
use crate::oioxml::{OIO_NS_PREFIX, XDIS91_VERSION};
use crate::time::{copenhagen_date_and_minute, format_date};
use crate::{NAME_NOT_KNOWN, Outgoing, invalid_at};

/// OIOXML's episode-of-care status codes (`EpisodeOfCareStatusCode01Type`).
const EPISODE_CODES: &[&str] = &["inaktiv", "indlagt", "ambulant", "doed", "ambulant_roentgen"];

/// The first `max` characters (OIOXML's `String_1_35` and friends).
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Indented XML, written with the SDK's `quick-xml` writer: one element per
/// line, two spaces per level.
struct Writer {
    xml: XmlWriter,
    depth: usize,
}

impl Writer {
    /// A new line at the current depth.
    fn begin(&mut self) {
        self.xml.newline(self.depth);
    }

    fn open(&mut self, name: &str) {
        self.begin();
        self.xml.start(name, &[]);
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.begin();
        self.xml.end(name);
    }

    /// `<name>text</name>`, skipped when the text is empty.
    fn leaf(&mut self, name: &str, text: &str) {
        if !text.is_empty() {
            self.begin();
            self.xml.leaf(name, text);
        }
    }

    /// OIOXML formatted text: a line break is `<Break/>`.
    fn formatted(&mut self, name: &str, text: &str) {
        self.begin();
        self.xml.start(name, &[]);
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.xml.empty("Break", &[]);
            }
            self.xml.text(line);
        }
        self.xml.end(name);
    }

    fn date_time(&mut self, name: &str, t: &prost_types::Timestamp) {
        let (date, hour, minute) = copenhagen_date_and_minute(t);
        self.open(name);
        self.leaf("Date", &format_date(date));
        self.leaf("Time", &format!("{hour:02}:{minute:02}"));
        self.close(name);
    }

    /// A sender or receiver: the EAN number as its identifier (`lokationsnummer`).
    fn party(&mut self, name: &str, org: &proto::Organisation, unit: &str, phone: &str) {
        let (organisation, department) = match org.display_name.split_once(", ") {
            Some((o, d)) => (o, d),
            None => (org.display_name.as_str(), ""),
        };
        let organisation = if organisation.is_empty() { org.ean.as_str() } else { organisation };
        self.open(name);
        self.leaf("EANIdentifier", &org.ean);
        self.leaf("Identifier", &org.ean);
        self.leaf("IdentifierCode", "lokationsnummer");
        self.leaf("OrganisationName", &clip(organisation, 35));
        self.leaf("DepartmentName", &clip(department, 35));
        self.leaf("UnitName", &clip(unit, 35));
        self.leaf("TelephoneSubscriberIdentifier", &clip(phone, 25));
        self.close(name);
    }
}

/// The letter's identifier: the `Letter` of an `EAN/Letter` message id from
/// this sender, else one derived from the message id.
fn letter_identifier(message_id: &str, sender_ean: &str) -> String {
    match message_id.split_once('/') {
        Some((ean, letter)) if ean == sender_ean && is_oio_identifier(letter) => letter.to_owned(),
        _ => oio_identifier(message_id),
    }
}

/// The XDIS91 bytes of a correspondence message.
pub fn write(out: &Outgoing<'_>) -> Result<Vec<u8>, AdapterError> {
    let c = out.correspondence;
    for (who, org) in [("sender", out.sender), ("receiver", out.receiver)] {
        if org.ean.len() != 13 || !org.ean.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_at(
                &out.path,
                &format!("{who}.ean"),
                "an XDIS91 letter needs a 13-digit EAN/GLN number",
            ));
        }
    }
    let mut texts = Vec::new();
    for (i, e) in c.entries.iter().enumerate() {
        if e.attachment.is_some() {
            return Err(invalid_at(
                &out.path,
                &format!("entries[{i}].attachment"),
                "an XDIS91 letter cannot carry an attachment inline; write fhir+xml or fhir+json",
            ));
        }
        if !e.text.is_empty() {
            texts.push(e.text.as_str());
        }
    }
    if texts.is_empty() {
        return Err(invalid_at(&out.path, "entries", "an XDIS91 letter needs a text"));
    }
    // The letter is authorised when its newest text was written; its author signs as the unit.
    let newest = c.entries.iter().rev().find(|e| !e.text.is_empty());
    let authorised = newest.and_then(|e| e.write_time).unwrap_or(out.send_time);
    let author = newest.and_then(|e| e.author.as_ref());
    let (unit, phone) = author.map_or(("", ""), |a| (a.display_name.as_str(), a.phone.as_str()));
    let letter = letter_identifier(&c.message_id, &out.sender.ean);
    let envelope = oio_identifier(&format!("{}#envelope", c.message_id));

    let mut w = Writer { xml: XmlWriter::new(), depth: 0 };
    w.xml.declaration("windows-1252");
    w.begin();
    w.xml.start("Emessage", &[("xmlns", &format!("{OIO_NS_PREFIX}{XDIS91_VERSION}/"))]);
    w.depth = 1;
    w.open("Envelope");
    w.date_time("Sent", &out.send_time);
    w.leaf("Identifier", &envelope);
    w.leaf("AcknowledgementCode", "pluspositivkvitt");
    w.close("Envelope");
    w.open("ClinicalEmail");
    w.open("Letter");
    w.leaf("Identifier", &letter);
    w.leaf("VersionCode", "XD9134L");
    w.leaf("StatisticalCode", "XDIS91");
    w.date_time("Authorisation", &authorised);
    w.leaf("TypeCode", "XDIS91");
    // XDIS91 knows no replies: a reply or a forward is a new letter.
    w.leaf("StatusCode", "nytbrev");
    let episode = c.episode_of_care.clone().unwrap_or_default();
    w.leaf("EpisodeOfCareIdentifier", &clip(&episode.identifier, 35));
    w.close("Letter");
    w.party("Sender", out.sender, unit, phone);
    w.party("Receiver", out.receiver, "", "");
    w.open("Patient");
    match out.person.kind() {
        Kind::Cpr => w.leaf("CivilRegistrationNumber", &out.person.value),
        _ if out.person.value.chars().count() == 10 => w.leaf("AlternativeIdentifier", &out.person.value),
        _ => {
            return Err(invalid_at(&out.path, "person", "an XDIS91 replacement CPR number has ten characters"));
        }
    }
    // The canonical model carries no patient name; OIOXML requires a surname.
    w.leaf("PersonSurnameName", NAME_NOT_KNOWN);
    let status = if EPISODE_CODES.contains(&episode.status.as_str()) { episode.status.as_str() } else { "inaktiv" };
    w.leaf("EpisodeOfCareStatusCode", status);
    w.close("Patient");
    w.open("AdditionalInformation");
    let high = c.priority() == proto::CorrespondencePriority::High;
    w.leaf("Priority", if high { "høj_prioritet" } else { "rutine" });
    w.leaf("Subject", &clip(&c.subject, 70));
    w.close("AdditionalInformation");
    w.open("ClinicalInformation");
    // A carriage return is not a line of its own: CRLF is one break.
    w.formatted("Text01", &texts.join("\n\n").replace('\r', ""));
    w.close("ClinicalInformation");
    w.close("ClinicalEmail");
    w.close("Emessage");
    let text = w.xml.finish() + "\n";
    // encoding_rs writes characters windows-1252 lacks as decimal character references.
    let (bytes, _, _) = WINDOWS_1252.encode(&text);
    Ok(bytes.into_owned())
}
