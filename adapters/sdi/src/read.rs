//! Reads a Haendelsesbesked: the envelope (bare, or wrapped in the
//! Beskedfordeler's `ModtagBeskedInput`), as liberally as KOMBIT's schema
//! allows (a `BeskedId` UUID or URN, any number of `Beskeddata`, each
//! payload read or refused by name), then its SF1470 v6 Sag registration —
//! case number, owner, parties — and one canonical event per
//! `bro:Sagshaendelse` of its extension, in date order. Error fields are
//! paths from the envelope's root, with XPath's 1-based positions.

use bro_adapter_sdk::proto::{self, PersonIdentifierKind, case_event::Kind};
use bro_adapter_sdk::xml::Node;
use bro_adapter_sdk::{AdapterError, invalid, malformed};

use crate::codes::{self, Codes, Role, Type};
use crate::time::{self, Offset};
use crate::xml::{self, child, children, echo, text};
use crate::{
    BRO_NS, CPR_URN, CVR_URN, GD_NS, KLE_URN, KUVERT_NS, ROLE_URN, SAG_NS, SAGDOK_NS, STS_NS, ids, is_id, is_kle,
    normalise_cpr,
};

/// Longest free text (names, reasons, goals), in bytes, as bro accepts it.
pub const MAX_TEXT: usize = 4096;
/// Most `Sagshaendelse` entries in one message.
pub const MAX_EVENTS: usize = 1000;
/// Most goals in one plan, as bro accepts it.
pub const MAX_GOALS: usize = 100;
/// Most custody holders of one case, as bro accepts it.
pub const MAX_HOLDERS: usize = 4;

/// A party of the Sag.
struct Part {
    role: Role,
    cpr: String,
    name: String,
}

/// What the Sag says about its parties, for the events to refer to.
struct Sag {
    child: Option<Part>,
    holders: Vec<Part>,
    municipality: Option<proto::Organisation>,
    journal_reference: String,
    /// The path of the `RelationListe`, for errors about parties.
    relations: String,
}

/// Whether `text` is a URN as OIO's `URNIdentifikator` holds one: `urn:`,
/// at most 255 characters, no spaces or control characters.
pub fn is_urn(text: &str) -> bool {
    (5..=255).contains(&text.len())
        && text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Reads one message.
pub fn read(body: &[u8]) -> Result<proto::AdapterBatch, AdapterError> {
    // Sniff the bytes: the content type is not trusted.
    let unmarked = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match unmarked.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(malformed("1:1", "the message body is empty")),
        Some(b'<') => {}
        Some(_) => {
            return Err(AdapterError::Unsupported(
                "a message that is not XML; the sdi adapter reads KOMBIT Beskedfordeler Haendelsesbesked".into(),
            ));
        }
    }
    let text = xml::decode(body)?;
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    // Pushed deliveries wrap the envelope in ModtagBeskedInput; queued ones do not.
    let besked = match (root.tag_name().namespace(), root.tag_name().name()) {
        (Some(KUVERT_NS), "Haendelsesbesked") => root,
        (Some(STS_NS), "ModtagBeskedInput") => child(root, KUVERT_NS, "Haendelsesbesked")
            .ok_or_else(|| invalid("ModtagBeskedInput.Haendelsesbesked", "is missing"))?,
        (ns, name) => {
            return Err(AdapterError::Unsupported(format!(
                "XML {} in namespace {} is not a Haendelsesbesked; the sdi adapter reads KOMBIT Beskedfordeler \
                 Haendelsesbesked ({KUVERT_NS})",
                echo(name, 40),
                xml::quoted(ns.unwrap_or("none"))
            )));
        }
    };
    envelope(besked)
}

/// `BeskedId`: a UUID (lower case), or a URN as given (`urn:uuid:` is a UUID).
fn message_id(besked: Node<'_, '_>) -> Result<String, AdapterError> {
    let id = child(besked, KUVERT_NS, "BeskedId").ok_or_else(|| invalid("BeskedId", "is required"))?;
    if let Some(u) = child(id, SAGDOK_NS, "UUIDIdentifikator").and_then(text) {
        return ids::uuid_of(&u).ok_or_else(|| invalid("BeskedId.UUIDIdentifikator", "is not a UUID"));
    }
    if let Some(u) = child(id, SAGDOK_NS, "URNIdentifikator").and_then(text) {
        if let Some(uuid) = ids::uuid_of(&u) {
            return Ok(uuid);
        }
        return if is_urn(&u) {
            Ok(u)
        } else {
            Err(invalid("BeskedId.URNIdentifikator", "is not a URN: urn: and at most 255 characters, no spaces"))
        };
    }
    Err(invalid("BeskedId", "a UUIDIdentifikator or a URNIdentifikator is required"))
}

/// What a payload is, for a refusal: its element and namespace.
fn described(node: Node<'_, '_>) -> String {
    if node.is_text() {
        return "text".into();
    }
    format!(
        "{} (namespace {})",
        echo(node.tag_name().name(), 40),
        xml::quoted(node.tag_name().namespace().unwrap_or("none"))
    )
}

/// Reads the envelope's id and version, then its one Sag registration. The
/// filtering and delivery data are the Beskedfordeler's and are not read.
fn envelope(besked: Node<'_, '_>) -> Result<proto::AdapterBatch, AdapterError> {
    let message_id = message_id(besked)?;
    let version = child(besked, KUVERT_NS, "BeskedVersion")
        .and_then(text)
        .ok_or_else(|| invalid("BeskedVersion", "is required"))?;
    if version != "1.0" && version != "1" {
        return Err(AdapterError::Unsupported(format!(
            "Haendelsesbesked BeskedVersion {}; the sdi adapter reads version 1.0",
            xml::quoted(&version)
        )));
    }
    // Every payload of every Beskeddata, with its path: each is read or refused, none dropped.
    let data: Vec<Node<'_, '_>> = children(besked, KUVERT_NS, "Beskeddata").collect();
    if data.is_empty() {
        return Err(invalid("Beskeddata", "is required: the Sag registration (SF1470 RegistreringBesked)"));
    }
    let mut payloads = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let path = if data.len() == 1 { "Beskeddata".to_owned() } else { format!("Beskeddata[{}]", i + 1) };
        let elements: Vec<Node<'_, '_>> = d.children().filter(|c| c.is_element()).collect();
        if elements.is_empty() {
            // Text alone is content too (KOMBIT's test messages carry some): refused, not dropped.
            if let Some(t) = d.children().find(|c| c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty())) {
                payloads.push((path, t));
            }
            continue;
        }
        payloads.extend(elements.into_iter().map(|e| (path.clone(), e)));
    }
    let is_sag = |n: &Node<'_, '_>| n.has_tag_name(SAG_NS, "RegistreringBesked");
    let sags: Vec<&(String, Node<'_, '_>)> = payloads.iter().filter(|(_, n)| is_sag(n)).collect();
    let other = payloads.iter().find(|(_, n)| !is_sag(n));
    let (path, payload) = match (sags.as_slice(), other) {
        ([], None) => {
            return Err(invalid("Beskeddata", "carries no Sag registration (SF1470 RegistreringBesked)"));
        }
        ([], Some((_, o))) => return Err(not_a_case(besked, *o)),
        ([one], None) => (one.0.clone(), one.1),
        ([_], Some((at, o))) => {
            return Err(AdapterError::Unsupported(format!(
                "{at} carries {} besides the Sag registration; the sdi adapter reads a Haendelsesbesked whose \
                 only payload is one Sag registration",
                described(*o)
            )));
        }
        (many, _) => {
            return Err(AdapterError::Unsupported(format!(
                "a Haendelsesbesked with {} Sag registrations; the sdi adapter reads one per message",
                many.len()
            )));
        }
    };
    let base = format!("{path}.RegistreringBesked");
    // Parties first: the events name custody holders by the Sag's Sagspart.
    let (sag, case, extension) = registration(payload, &base)?;
    let events = events(extension, &sag, &base)?;
    let subjects = sag
        .holders
        .iter()
        .map(|p| proto::PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value: p.cpr.clone() })
        .collect();
    Ok(proto::AdapterBatch {
        subjects,
        case,
        source_message_id: message_id,
        events,
        parties: Vec::new(),
        holistic_plan: None,
        settings: Default::default(),
        addressed_municipality: addressed_municipality(besked),
    })
}

/// The municipality the envelope allows to receive the message
/// (`TilladtModtager` as a CVR URN), when it names exactly one: the gateway
/// files an unmatched message in that municipality's inbox.
fn addressed_municipality(besked: Node<'_, '_>) -> String {
    let mut cvrs: Vec<&str> = besked
        .descendants()
        .filter(|n| n.has_tag_name(KUVERT_NS, "TilladtModtager"))
        .flat_map(|n| n.descendants())
        .filter_map(|n| n.text()?.trim().strip_prefix(CVR_URN))
        .filter(|cvr| crate::settings::is_cvr(cvr))
        .collect();
    cvrs.sort_unstable();
    cvrs.dedup();
    match cvrs.as_slice() {
        [one] => (*one).to_owned(),
        _ => String::new(),
    }
}

/// The refusal of a payload that is not a Sag: what it is, and the object type the envelope gives.
fn not_a_case(besked: Node<'_, '_>, payload: Node<'_, '_>) -> AdapterError {
    if payload.is_element() && payload.tag_name().name() == "Base64" {
        return AdapterError::Unsupported(
            "a Beskeddata carried as Base64; the sdi adapter reads the Sag registration inline".into(),
        );
    }
    let objekttype = child(besked, KUVERT_NS, "Beskedkuvert")
        .and_then(|k| child(k, KUVERT_NS, "Filtreringsdata"))
        .and_then(|f| child(f, KUVERT_NS, "ObjektRegistrering"))
        .and_then(|o| child(o, KUVERT_NS, "ObjektType"))
        .and_then(text)
        .map(|t| format!(", ObjektType {}", xml::quoted(&t)))
        .unwrap_or_default();
    AdapterError::Unsupported(format!(
        "a Haendelsesbesked about {}{objekttype} is not a Sag registration; the sdi adapter reads SF1470 v6 \
         RegistreringBesked ({SAG_NS})",
        described(payload)
    ))
}

/// A free text of at most [`MAX_TEXT`] bytes: bro's element `name` below `node`.
fn free_text(node: Node<'_, '_>, name: &'static str, path: &str) -> Result<String, AdapterError> {
    let value = child(node, BRO_NS, name).and_then(text).unwrap_or_default();
    if value.len() > MAX_TEXT {
        return Err(invalid(
            format!("{path}.{name}"),
            format!("is {} bytes long; at most {MAX_TEXT} are allowed", value.len()),
        ));
    }
    Ok(value)
}

/// The URN of a `ReferenceID` (or other UnikId) below `node`.
fn urn(node: Option<Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| child(n, SAGDOK_NS, "URNIdentifikator")).and_then(text)
}

/// A person's CPR number from `urn:oio:cpr-nr:…`; never echoes the value.
fn cpr_of(urn: Option<String>, field: &str) -> Result<String, AdapterError> {
    let urn = urn.ok_or_else(|| invalid(field, "a URNIdentifikator urn:oio:cpr-nr:… is required"))?;
    urn.strip_prefix(CPR_URN)
        .and_then(normalise_cpr)
        .ok_or_else(|| invalid(field, "is not a CPR URN (urn:oio:cpr-nr: and ten digits)"))
}

/// The bro role of a relation (`gd:Rolle`, `urn:bro:sdi:rolle:…`), if it has one.
fn role(relation: Node<'_, '_>) -> Option<String> {
    urn(child(relation, GD_NS, "Rolle")).and_then(|r| r.strip_prefix(ROLE_URN).map(str::to_owned))
}

/// A relation's name: `gd:LokalUdvidelseListe/bro:Navn`.
fn name_of(relation: Node<'_, '_>, path: &str) -> Result<String, AdapterError> {
    match child(relation, GD_NS, "LokalUdvidelseListe") {
        Some(l) => free_text(l, "Navn", &format!("{path}.LokalUdvidelseListe")),
        None => Ok(String::new()),
    }
}

/// Reads the registration: the case number, the bro case, the owner, the
/// parties, and the extension that holds the events.
fn registration<'a, 'i>(node: Node<'a, 'i>, base: &str) -> Result<(Sag, String, Option<Node<'a, 'i>>), AdapterError> {
    if let Some(u) = child(node, SAGDOK_NS, "UUIDIdentifikator").and_then(text)
        && ids::uuid_of(&u).is_none()
    {
        return Err(invalid(format!("{base}.UUIDIdentifikator"), "is not a UUID"));
    }
    let at = format!("{base}.Registrering");
    let reg = child(node, SAG_NS, "Registrering").ok_or_else(|| invalid(&at, "is required"))?;
    let attributes = child(reg, SAG_NS, "AttributListe");
    // The case number: the last Egenskaber that gives one (BrugervendtNoegle, else Sagsnummer).
    let mut journal_reference = String::new();
    for (i, e) in attributes.into_iter().flat_map(|a| children(a, SAG_NS, "Egenskaber")).enumerate() {
        let number = child(e, SAG_NS, "BrugervendtNoegle")
            .and_then(text)
            .or_else(|| child(e, SAG_NS, "Sagsnummer").and_then(text));
        if let Some(n) = number {
            if n.len() > MAX_TEXT {
                return Err(invalid(
                    format!("{at}.AttributListe.Egenskaber[{}]", i + 1),
                    "the case number is too long",
                ));
            }
            journal_reference = n;
        }
    }
    let extension = attributes.and_then(|a| child(a, GD_NS, "LokalUdvidelseListe"));
    let ext_path = format!("{at}.AttributListe.LokalUdvidelseListe");
    let case = match extension.and_then(|x| child(x, BRO_NS, "BroSag")).and_then(text) {
        Some(c) if c.strip_prefix("cases/").is_some_and(is_id) => c,
        Some(_) => return Err(invalid(format!("{ext_path}.BroSag"), "is not a bro case name cases/{id}")),
        None => String::new(),
    };

    let relations_path = format!("{at}.RelationListe");
    let relations = child(reg, SAG_NS, "RelationListe");
    let related = |name: &'static str| relations.into_iter().flat_map(move |r| children(r, SAG_NS, name)).enumerate();
    // The primary class, when bro's role names it, is a KLE number.
    for (i, k) in related("Sagsklasse") {
        if role(k).as_deref() != Some("primaerklasse") {
            continue;
        }
        let reference = urn(child(k, GD_NS, "ReferenceID"));
        if !reference.as_deref().and_then(|r| r.strip_prefix(KLE_URN)).is_some_and(is_kle) {
            return Err(invalid(
                format!("{relations_path}.Sagsklasse[{}].ReferenceID", i + 1),
                "is not a KLE URN (urn:oio:kle: and dd.dd.dd)",
            ));
        }
    }
    let mut municipality = None;
    for (i, a) in related("Sagsaktoer") {
        let path = format!("{relations_path}.Sagsaktoer[{}]", i + 1);
        // Only the owner (the placing municipality) is read; other actors are the journal's own.
        if role(a).as_deref() != Some("ejer") {
            continue;
        }
        if municipality.is_some() {
            return Err(invalid(path, "a Sag has one owner (Rolle urn:bro:sdi:rolle:ejer)"));
        }
        let reference = urn(child(a, GD_NS, "ReferenceID"));
        let cvr = reference
            .as_deref()
            .and_then(|r| r.strip_prefix(CVR_URN))
            .filter(|c| crate::settings::is_cvr(c))
            .ok_or_else(|| {
                invalid(format!("{path}.ReferenceID"), "is not a CVR URN (urn:oio:cvr-nr: and eight digits)")
            })?;
        let name = name_of(a, &path)?;
        municipality = Some(proto::Organisation { display_name: name, cvr: cvr.to_owned(), ..Default::default() });
    }

    // The child apart; the custody holders in document order, which is the order of `subjects`.
    let (mut child_part, mut holders) = (None, Vec::<Part>::new());
    for (i, p) in related("Sagspart") {
        let path = format!("{relations_path}.Sagspart[{}]", i + 1);
        let code = role(p).ok_or_else(|| {
            invalid(format!("{path}.Rolle"), format!("is required: {ROLE_URN} and {}", codes::known(codes::ROLES)))
        })?;
        let role = codes::lookup(codes::ROLES, &code).ok_or_else(|| {
            invalid(
                format!("{path}.Rolle"),
                format!("unknown role {}; expected {ROLE_URN} and {}", xml::quoted(&code), codes::known(codes::ROLES)),
            )
        })?;
        let cpr = cpr_of(urn(child(p, GD_NS, "ReferenceID")), &format!("{path}.ReferenceID"))?;
        let name = name_of(p, &path)?;
        let named_before = holders.iter().chain(child_part.iter()).any(|q: &Part| q.cpr == cpr);
        if named_before {
            return Err(invalid(format!("{path}.ReferenceID"), "names a person another Sagspart names"));
        }
        let part = Part { role, cpr, name };
        match role {
            Role::Child if child_part.is_some() => {
                return Err(invalid(format!("{path}.Rolle"), "a Sag concerns one child (one Sagspart barn)"));
            }
            Role::Child => child_part = Some(part),
            _ => holders.push(part),
        }
    }
    if holders.is_empty() {
        return Err(invalid(
            format!("{relations_path}.Sagspart"),
            "at least one custody holder (Rolle mor, far or foraelder) is required",
        ));
    }
    if holders.len() > MAX_HOLDERS {
        return Err(invalid(
            format!("{relations_path}.Sagspart"),
            format!("has {} custody holders; at most {MAX_HOLDERS} are allowed", holders.len()),
        ));
    }
    let sag = Sag { child: child_part, holders, municipality, journal_reference, relations: relations_path };
    Ok((sag, case, extension))
}

/// A required coded value.
fn coded<T: Copy>(node: Node<'_, '_>, name: &'static str, path: &str, table: Codes<T>) -> Result<T, AdapterError> {
    optional(node, name, path, table)?
        .ok_or_else(|| invalid(format!("{path}.{name}"), format!("is required: {}", codes::known(table))))
}

/// An optional coded value.
fn optional<T: Copy>(
    node: Node<'_, '_>,
    name: &'static str,
    path: &str,
    table: Codes<T>,
) -> Result<Option<T>, AdapterError> {
    let Some(value) = child(node, BRO_NS, name).and_then(text) else { return Ok(None) };
    codes::lookup(table, &value).map(Some).ok_or_else(|| {
        invalid(
            format!("{path}.{name}"),
            format!("unknown code {}; expected {}", xml::quoted(&value), codes::known(table)),
        )
    })
}

/// The day a `Sagshaendelse` takes effect: the Danish date of its `Virkning`'s `FraTidspunkt`.
fn effect_date(node: Node<'_, '_>, path: &str) -> Result<proto::Date, AdapterError> {
    let virkning =
        child(node, SAGDOK_NS, "Virkning").ok_or_else(|| invalid(format!("{path}.Virkning"), "is required"))?;
    let field = format!("{path}.Virkning.FraTidspunkt.TidsstempelDatoTid");
    let from = child(virkning, SAGDOK_NS, "FraTidspunkt")
        .and_then(|f| child(f, SAGDOK_NS, "TidsstempelDatoTid"))
        .and_then(text)
        .ok_or_else(|| invalid(&field, "is required: the day the event took effect"))?;
    let from = instant(&from)
        .ok_or_else(|| invalid(&field, "is not a date-time YYYY-MM-DDThh:mm:ss (with an offset, or Danish time)"))?;
    // An end is optional (a GraenseIndikator is open-ended); one that is a time must not precede the start.
    let until = child(virkning, SAGDOK_NS, "TilTidspunkt")
        .and_then(|t| child(t, SAGDOK_NS, "TidsstempelDatoTid"))
        .and_then(text);
    if let Some(until) = until {
        let to_field = format!("{path}.Virkning.TilTidspunkt.TidsstempelDatoTid");
        let until = instant(&until).ok_or_else(|| invalid(&to_field, "is not a date-time YYYY-MM-DDThh:mm:ss"))?;
        if until.seconds < from.seconds {
            return Err(invalid(to_field, "is before FraTidspunkt"));
        }
    }
    // The legal date is the Danish calendar day, whatever offset the journal wrote.
    let day = time::copenhagen_date(&from);
    if !time::is_canonical(day) {
        return Err(invalid(field, "is outside the years 1900 to 9999"));
    }
    Ok(proto::Date { year: day.year, month: day.month as i32, day: day.day as i32 })
}

/// A `TidsstempelDatoTid`: a date-time, or (tolerated) a bare date at midnight.
fn instant(text: &str) -> Option<prost_types::Timestamp> {
    time::parse_datetime(text, Offset::Optional).or_else(|| time::parse_date(text).map(time::copenhagen_midnight))
}

/// One canonical event per `Sagshaendelse`, refusing at the first broken one.
fn events(node: Option<Node<'_, '_>>, sag: &Sag, base: &str) -> Result<Vec<proto::CaseEvent>, AdapterError> {
    let at = format!("{base}.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse");
    let entries: Vec<Node<'_, '_>> = node.into_iter().flat_map(|n| children(n, BRO_NS, "Sagshaendelse")).collect();
    if entries.is_empty() {
        return Err(invalid(at, "at least one bro:Sagshaendelse is required"));
    }
    if entries.len() > MAX_EVENTS {
        return Err(invalid(at, format!("has {} entries; at most {MAX_EVENTS} are allowed", entries.len())));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, h) in entries.into_iter().enumerate() {
        let path = format!("{at}[{}]", i + 1);
        let code = child(h, BRO_NS, "Haendelsestype").and_then(text).ok_or_else(|| {
            invalid(format!("{path}.Haendelsestype"), format!("is required: {}", codes::known(codes::TYPES)))
        })?;
        let ty = codes::lookup(codes::TYPES, &code).ok_or_else(|| {
            invalid(
                format!("{path}.Haendelsestype"),
                format!("unknown code {}; expected {}", xml::quoted(&code), codes::known(codes::TYPES)),
            )
        })?;
        let occurred_on = effect_date(h, &path)?;
        let kind = kind(h, ty, &path, sag)?;
        out.push(proto::CaseEvent { occurred_on: Some(occurred_on), kind: Some(kind), ..Default::default() });
    }
    // In date order; events of one day keep the order the journal gave them.
    out.sort_by_key(|e| e.occurred_on.map(|d| (d.year, d.month, d.day)));
    Ok(out)
}

/// `subjects/N` of the custody holder a `Part` (or `Omfatter`) URN names.
fn holder_of(node: Node<'_, '_>, field: &str, sag: &Sag) -> Result<String, AdapterError> {
    let cpr = cpr_of(urn(Some(node)), field)?;
    sag.holders.iter().position(|p| p.cpr == cpr).map(|n| format!("subjects/{n}")).ok_or_else(|| {
        invalid(field, "names a person who is not a custody holder (Sagspart mor, far or foraelder) of the Sag")
    })
}

/// The custody holder of an event (`Part`).
fn part(node: Node<'_, '_>, path: &str, sag: &Sag) -> Result<String, AdapterError> {
    let field = format!("{path}.Part");
    let p = child(node, BRO_NS, "Part").ok_or_else(|| invalid(&field, "the custody holder (a CPR URN) is required"))?;
    holder_of(p, &field, sag)
}

/// An xs:boolean, false when absent.
fn boolean(node: Node<'_, '_>, name: &'static str, path: &str) -> Result<bool, AdapterError> {
    match child(node, BRO_NS, name).and_then(text).as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(invalid(format!("{path}.{name}"), "is not a boolean (true or false)")),
    }
}

/// Party ids from roles: `mor`, `far`, `foraelder-1`…; a second mother is `mor-2`.
fn party_ids(holders: &[Part]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(holders.len());
    for (i, p) in holders.iter().enumerate() {
        let same = holders.iter().take(i).filter(|q| q.role == p.role).count() + 1;
        out.push(match (p.role, same) {
            (Role::Mother, 1) => "mor".into(),
            (Role::Father, 1) => "far".into(),
            (Role::Mother, n) => format!("mor-{n}"),
            (Role::Father, n) => format!("far-{n}"),
            (_, n) => format!("foraelder-{n}"),
        });
    }
    out
}

/// `sag-oprettet`: the opening data are the Sag's own (its child, custody
/// holders and owner), so the entry itself carries none.
fn case_opened(path: &str, sag: &Sag) -> Result<Kind, AdapterError> {
    let child_part = sag.child.as_ref().ok_or_else(|| {
        invalid(
            format!("{}.Sagspart", sag.relations),
            format!("{path} (sag-oprettet) needs the child: a Sagspart with Rolle barn"),
        )
    })?;
    let municipality = sag.municipality.clone().ok_or_else(|| {
        invalid(
            format!("{}.Sagsaktoer", sag.relations),
            format!("{path} (sag-oprettet) needs the placing municipality: a Sagsaktoer with Rolle ejer"),
        )
    })?;
    let cpr = |value: &str| proto::PersonIdentifier { kind: PersonIdentifierKind::Cpr as i32, value: value.to_owned() };
    let custody_holders = sag
        .holders
        .iter()
        .zip(party_ids(&sag.holders))
        .map(|(p, party_id)| proto::Party { party_id, identifier: Some(cpr(&p.cpr)), display_name: p.name.clone() })
        .collect();
    Ok(Kind::CaseOpened(proto::CaseOpened {
        child: Some(proto::Child {
            identifier: Some(cpr(&child_part.cpr)),
            journal_reference: sag.journal_reference.clone(),
        }),
        custody_holders,
        placing_municipality: Some(municipality),
    }))
}

/// `plan-udarbejdet`: a § 77 plan, or a § 78 holistic plan with the custody
/// holders it covers (each parent must consent to the replacement).
fn plan(h: Node<'_, '_>, path: &str, sag: &Sag) -> Result<Kind, AdapterError> {
    let plan_id = child(h, BRO_NS, "PlanId").and_then(text).unwrap_or_default();
    if !plan_id.is_empty() && !is_id(&plan_id) {
        return Err(invalid(
            format!("{path}.PlanId"),
            "is not a plan id: 1 to 63 lowercase letters, digits, '-' or '_'",
        ));
    }
    let kind = coded(h, "Plantype", path, codes::PLAN_KINDS)?;
    let mut covers = Vec::new();
    for (i, o) in children(h, BRO_NS, "Omfatter").enumerate() {
        let holder = holder_of(o, &format!("{path}.Omfatter[{}]", i + 1), sag)?;
        if !covers.contains(&holder) {
            covers.push(holder);
        }
    }
    match kind {
        proto::PlanKind::Bl78 if covers.is_empty() => {
            return Err(invalid(format!("{path}.Omfatter"), "a § 78 plan names the custody holders it covers"));
        }
        proto::PlanKind::Bl77 if !covers.is_empty() => {
            return Err(invalid(format!("{path}.Omfatter"), "only a § 78 plan names the custody holders it covers"));
        }
        _ => {}
    }
    let goal_nodes: Vec<Node<'_, '_>> = children(h, BRO_NS, "Maal").collect();
    if goal_nodes.len() > MAX_GOALS {
        return Err(invalid(
            format!("{path}.Maal"),
            format!("has {} goals; at most {MAX_GOALS} are allowed", goal_nodes.len()),
        ));
    }
    let mut goals = Vec::with_capacity(goal_nodes.len());
    for (i, m) in goal_nodes.into_iter().enumerate() {
        let at = format!("{path}.Maal[{}]", i + 1);
        let goal_id = free_text(m, "MaalId", &at)?;
        if goal_id.len() > 200 || goal_id.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(invalid(
                format!("{at}.MaalId"),
                "is not an id: up to 200 printable ASCII characters, no spaces",
            ));
        }
        let mut sub_goals = Vec::new();
        for (j, d) in children(m, BRO_NS, "Delmaal").enumerate() {
            let t = text(d).unwrap_or_default();
            if t.len() > MAX_TEXT {
                return Err(invalid(format!("{at}.Delmaal[{}]", j + 1), format!("is longer than {MAX_TEXT} bytes")));
            }
            sub_goals.push(t);
        }
        goals.push(proto::Goal {
            goal_id,
            change_in_parents: free_text(m, "AendringHosForaeldre", &at)?,
            aim: optional(m, "Sigte", &at, codes::AIMS)?.unwrap_or(proto::GoalAim::Unspecified) as i32,
            sub_goals,
            owner_sector: optional(m, "EjerSektor", &at, codes::SECTORS)?.unwrap_or(proto::Sector::Unspecified) as i32,
            owner: free_text(m, "Ejer", &at)?,
            custody_holders: Vec::new(),
        });
    }
    Ok(Kind::PlanPrepared(proto::PlanPrepared { plan_id, kind: kind as i32, covers, goals }))
}

/// A consent scope: `bl32`, `bl78` or `share:{recipient}`.
fn scope(h: Node<'_, '_>, path: &str) -> Result<String, AdapterError> {
    let field = format!("{path}.Samtykkeomfang");
    let value = child(h, BRO_NS, "Samtykkeomfang").and_then(text).ok_or_else(|| invalid(&field, "is required"))?;
    let ok = value == "bl32" || value == "bl78" || value.strip_prefix("share:").is_some_and(is_id);
    if !ok {
        return Err(invalid(
            field,
            format!("{} is not a scope: bl32, bl78 or share:{{modtager}}", xml::quoted(&value)),
        ));
    }
    Ok(value)
}

/// The chosen § 75 support person, when the journal records who it is.
fn support_person(h: Node<'_, '_>, path: &str) -> Result<Option<proto::ContactPerson>, AdapterError> {
    let Some(p) = child(h, BRO_NS, "Stoetteperson") else { return Ok(None) };
    let at = format!("{path}.Stoetteperson");
    Ok(Some(proto::ContactPerson {
        display_name: free_text(p, "FuldtNavn", &at)?,
        role: free_text(p, "Rolle", &at)?,
        phone: free_text(p, "Telefon", &at)?,
        email: free_text(p, "Email", &at)?,
    }))
}

/// The canonical event of one entry of type `ty`.
fn kind(h: Node<'_, '_>, ty: Type, path: &str, sag: &Sag) -> Result<Kind, AdapterError> {
    let holder = || part(h, path, sag);
    Ok(match ty {
        Type::CaseOpened => case_opened(path, sag)?,
        Type::PlacementRecommended => Kind::PlacementRecommended(proto::PlacementRecommended {
            basis: coded(h, "Hjemmel", path, codes::BASES)? as i32,
            siblings_under_18_in_household: boolean(h, "SoeskendeUnder18IHusstanden", path)?,
            reason: coded(h, "Indstillingsgrund", path, codes::REASONS)? as i32,
        }),
        Type::PlacementStarted => Kind::PlacementStarted(proto::PlacementStarted {
            basis: coded(h, "Hjemmel", path, codes::BASES)? as i32,
            site_kind: optional(h, "Anbringelsessted", path, codes::SITES)?
                .unwrap_or(proto::PlacementSiteKind::Unspecified) as i32,
        }),
        Type::PlacementEnded => Kind::PlacementEnded(proto::PlacementEnded {
            reason: coded(h, "Ophoersgrund", path, codes::END_REASONS)? as i32,
        }),
        Type::SupportPersonOffered => {
            Kind::SupportPersonOffered(proto::SupportPersonOffered { custody_holder: holder()? })
        }
        Type::SupportPersonAccepted => {
            Kind::SupportPersonAccepted(proto::SupportPersonAccepted { custody_holder: holder()? })
        }
        Type::SupportPersonDeclined => {
            Kind::SupportPersonDeclined(proto::SupportPersonDeclined { custody_holder: holder()? })
        }
        Type::SupportPersonChosen => Kind::SupportPersonChosen(proto::SupportPersonChosen {
            custody_holder: holder()?,
            kind: coded(h, "Stoettepersontype", path, codes::PERSON_KINDS)? as i32,
            person: support_person(h, path)?,
        }),
        Type::SupportPersonApproved => {
            Kind::SupportPersonApproved(proto::SupportPersonApproved { custody_holder: holder()? })
        }
        Type::SupportPersonRefused => Kind::SupportPersonRefused(proto::SupportPersonRefused {
            custody_holder: holder()?,
            reason: free_text(h, "Begrundelse", path)?,
        }),
        Type::SupportDecided => Kind::SupportDecided(proto::SupportDecided {
            custody_holder: holder()?,
            measure: coded(h, "Foranstaltning", path, codes::DECIDED_MEASURES)? as i32,
            outcome: coded(h, "Afgoerelse", path, codes::OUTCOMES)? as i32,
        }),
        Type::SupportStarted => Kind::SupportStarted(proto::SupportStarted {
            custody_holder: holder()?,
            measure: coded(h, "Foranstaltning", path, codes::STARTED_MEASURES)? as i32,
        }),
        Type::ConsentGiven => {
            Kind::ConsentGiven(proto::ConsentGiven { custody_holder: holder()?, scope: scope(h, path)? })
        }
        Type::ConsentWithdrawn => {
            Kind::ConsentWithdrawn(proto::ConsentWithdrawn { custody_holder: holder()?, scope: scope(h, path)? })
        }
        Type::PlanPrepared => plan(h, path, sag)?,
        Type::PlanOmitted => Kind::PlanOmitted(proto::PlanOmitted { reasons: free_text(h, "Begrundelse", path)? }),
        Type::RevisionOffered => Kind::RevisionOffered(proto::RevisionOffered {}),
        Type::RevisionMade => Kind::RevisionMade(proto::RevisionMade {}),
        Type::RevisionAssessed => Kind::RevisionAssessed(proto::RevisionAssessed {}),
        Type::HomecomingPeriodStarted => Kind::HomecomingPeriodStarted(proto::HomecomingPeriodStarted {}),
        Type::HomecomingPeriodEnded => Kind::HomecomingPeriodEnded(proto::HomecomingPeriodEnded {}),
        Type::ContactSuspended => Kind::ContactSuspended(proto::ContactSuspended {}),
        Type::ContactResumed => Kind::ContactResumed(proto::ContactResumed {}),
    })
}
