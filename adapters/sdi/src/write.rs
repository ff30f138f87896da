//! Writes canonical case events as a Haendelsesbesked: an envelope valid
//! against KOMBIT's Beskedkuvert, with the registered identifiers from the
//! system's settings, around an SF1470 v6 `RegistreringBesked` — the Sag's
//! case number, KLE class, owner and people (`Sagspart` with
//! `urn:oio:cpr-nr:` URNs) — whose `LokalUdvidelseListe` carries one
//! `bro:Sagshaendelse` per §§ 75–79 event (in date order). Ids are
//! name-based UUIDs of the batch. Kinds the journal does not record
//! (correspondence, sector plans, appointments, sector contacts) are skipped
//! and logged.
//!
//! People come from a `case_opened` in the batch, then `parties` (what the
//! gateway sends), then `subjects`; an event's custody holder is a party id
//! or `subjects/N` and is written as that person's CPR URN.

use bro_adapter_sdk::proto::{self, PersonIdentifierKind, case_event::Kind};
use bro_adapter_sdk::{AdapterError, Level, invalid, log};

use crate::codes::{self, Codes, Role, Type};
use crate::time::{self, Ymd};
use bro_adapter_sdk::xml::XmlWriter;

use crate::settings::{self, Settings, UnikId};
use crate::xml::quoted;
use crate::{
    BRO_NS, CPR_URN, CVR_URN, GD_NS, KLE_URN, KUVERT_NS, ROLE_URN, SAG_NS, SAGDOK_NS, ids, is_id, is_kle, normalise_cpr,
};

/// The KLE subject written when the case number does not start with one.
pub const DEFAULT_KLE: &str = "27.24.00";
/// SF1470's limit on `BrugervendtNoegle` and `Sagsnummer`.
pub const MAX_CASE_NUMBER: usize = 50;

/// A person the Sag names.
struct Person {
    cpr: String,
    role: Role,
    name: String,
    party_id: String,
}

/// The role a party id stands for: `mor`, `mor-2` → mother; `far` → father; else a parent.
fn role_of(party_id: &str) -> Role {
    match party_id.split_once('-').map_or(party_id, |(base, _)| base) {
        "mor" => Role::Mother,
        "far" => Role::Father,
        _ => Role::Parent,
    }
}

/// Ten CPR digits of an identifier: `Ok(None)` for another kind of identifier.
fn cpr_digits(identifier: Option<&proto::PersonIdentifier>, field: &str) -> Result<Option<String>, AdapterError> {
    match identifier {
        Some(p) if p.kind() == PersonIdentifierKind::Cpr => {
            normalise_cpr(&p.value).map(Some).ok_or_else(|| invalid(field, "the CPR number is not ten digits"))
        }
        _ => Ok(None),
    }
}

/// The CPR number a custody-holder reference (`subjects/N` or a party id) names.
fn resolve(
    batch: &proto::AdapterBatch,
    holders: &[Person],
    reference: &str,
    field: &str,
) -> Result<String, AdapterError> {
    if let Some(n) = reference.strip_prefix("subjects/") {
        let subject = n
            .parse::<usize>()
            .ok()
            .and_then(|n| batch.subjects.get(n))
            .ok_or_else(|| invalid(field, format!("{} names no subject of the batch", quoted(reference))))?;
        return cpr_digits(Some(subject), field)?.ok_or_else(|| {
            invalid(field, "names a person without a CPR number; the journal names people by CPR number")
        });
    }
    holders.iter().find(|p| !p.party_id.is_empty() && p.party_id == reference).map(|p| p.cpr.clone()).ok_or_else(|| {
        invalid(
            field,
            format!(
                "{} names no custody holder of the batch (a party id of parties or case_opened, or subjects/N)",
                quoted(reference)
            ),
        )
    })
}

/// What kind of journal event an event is, or `None` for kinds the journal does not record.
fn type_of(kind: &Kind) -> Option<Type> {
    Some(match kind {
        Kind::CaseOpened(_) => Type::CaseOpened,
        Kind::PlacementRecommended(_) => Type::PlacementRecommended,
        Kind::PlacementStarted(_) => Type::PlacementStarted,
        Kind::PlacementEnded(_) => Type::PlacementEnded,
        Kind::SupportPersonOffered(_) => Type::SupportPersonOffered,
        Kind::SupportPersonAccepted(_) => Type::SupportPersonAccepted,
        Kind::SupportPersonDeclined(_) => Type::SupportPersonDeclined,
        Kind::SupportPersonChosen(_) => Type::SupportPersonChosen,
        Kind::SupportPersonApproved(_) => Type::SupportPersonApproved,
        Kind::SupportPersonRefused(_) => Type::SupportPersonRefused,
        Kind::SupportDecided(_) => Type::SupportDecided,
        Kind::SupportStarted(_) => Type::SupportStarted,
        Kind::ConsentGiven(_) => Type::ConsentGiven,
        Kind::ConsentWithdrawn(_) => Type::ConsentWithdrawn,
        Kind::PlanPrepared(_) => Type::PlanPrepared,
        Kind::PlanOmitted(_) => Type::PlanOmitted,
        Kind::RevisionOffered(_) => Type::RevisionOffered,
        Kind::RevisionMade(_) => Type::RevisionMade,
        Kind::RevisionAssessed(_) => Type::RevisionAssessed,
        Kind::HomecomingPeriodStarted(_) => Type::HomecomingPeriodStarted,
        Kind::HomecomingPeriodEnded(_) => Type::HomecomingPeriodEnded,
        Kind::ContactSuspended(_) => Type::ContactSuspended,
        Kind::ContactResumed(_) => Type::ContactResumed,
        Kind::LegalBasisRecorded(_)
        | Kind::LegalBasisEnded(_)
        | Kind::SectorContactAdded(_)
        | Kind::SectorContactEnded(_)
        | Kind::CorrespondenceRecorded(_)
        | Kind::SectorPlanRecorded(_)
        | Kind::AppointmentScheduled(_)
        | Kind::AppointmentCancelled(_)
        | Kind::PlanCoordinatorNamed(_)
        | Kind::PlanGoalsUpdated(_)
        | Kind::HomecomingPeriodWaived(_)
        | Kind::CustodyHolderMoved(_)
        | Kind::CaseHandoverSent(_) => return None,
    })
}

/// One event to write.
struct Entry<'a> {
    index: usize,
    date: Ymd,
    ty: Type,
    kind: &'a Kind,
    record_time: Option<prost_types::Timestamp>,
}

/// The people of the Sag: the child (if the batch opens the case) and the custody holders.
fn people(
    batch: &proto::AdapterBatch,
    opened: Option<(usize, &proto::CaseOpened)>,
) -> Result<(Option<Person>, Vec<Person>), AdapterError> {
    // A case opening knows everybody; `parties` is the case as the gateway holds it; `subjects` may add more.
    let mut holders: Vec<Person> = Vec::new();
    let mut child = None;
    if let Some((i, o)) = opened {
        let at = format!("events[{i}].caseOpened");
        let identifier = o.child.as_ref().and_then(|c| c.identifier.as_ref());
        let cpr = cpr_digits(identifier, &format!("{at}.child.identifier"))?
            .ok_or_else(|| invalid(format!("{at}.child.identifier"), "the child's CPR number is required"))?;
        child = Some(Person { cpr, role: Role::Child, name: String::new(), party_id: String::new() });
        for (j, p) in o.custody_holders.iter().enumerate() {
            let field = format!("{at}.custodyHolders[{j}].identifier");
            let cpr = cpr_digits(p.identifier.as_ref(), &field)?
                .ok_or_else(|| invalid(&field, "the journal names custody holders by CPR number"))?;
            holders.push(Person {
                cpr,
                role: role_of(&p.party_id),
                name: p.display_name.clone(),
                party_id: p.party_id.clone(),
            });
        }
    }
    for (i, p) in batch.parties.iter().enumerate() {
        // A party without a CPR number cannot be a SagsPart; an event naming one is refused below.
        let Some(cpr) = cpr_digits(p.identifier.as_ref(), &format!("parties[{i}].identifier"))? else { continue };
        if !holders.iter().any(|h| h.cpr == cpr) {
            holders.push(Person {
                cpr,
                role: role_of(&p.party_id),
                name: p.display_name.clone(),
                party_id: p.party_id.clone(),
            });
        }
    }
    for (i, s) in batch.subjects.iter().enumerate() {
        let Some(cpr) = cpr_digits(Some(s), &format!("subjects[{i}]"))? else { continue };
        if !holders.iter().any(|h| h.cpr == cpr) {
            holders.push(Person { cpr, role: Role::Parent, name: String::new(), party_id: String::new() });
        }
    }
    if holders.is_empty() {
        return Err(invalid("parties", "no custody holder with a CPR number; the journal's Sag names at least one"));
    }
    if holders.len() > crate::read::MAX_HOLDERS {
        return Err(invalid(
            "parties",
            format!("{} custody holders; a Sag names at most {}", holders.len(), crate::read::MAX_HOLDERS),
        ));
    }
    Ok((child, holders))
}

/// Indented XML, written with the SDK's `quick-xml` writer: one element
/// per line, two spaces per level.
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

    /// `<name>text</name>`, even when the text is empty.
    fn leaf_always(&mut self, name: &str, text: &str) {
        self.begin();
        self.xml.leaf(name, text);
    }

    /// An OIO UnikId: `<name><sd:KIND>value</sd:KIND></name>`.
    fn unik(&mut self, name: &str, kind: &str, value: &str) {
        self.begin();
        self.xml.start(name, &[]);
        self.xml.leaf(&format!("sd:{kind}"), value);
        self.xml.end(name);
    }

    /// A UnikId from the settings, as a UUID or a URN.
    fn setting(&mut self, name: &str, value: &UnikId) {
        match value {
            UnikId::Uuid(u) => self.uuid(name, u),
            UnikId::Urn(u) => self.urn(name, u),
        }
    }

    /// OIO's `Virkning` from midnight of `day`, Danish time, open-ended.
    fn virkning(&mut self, name: &str, day: Ymd) {
        self.open(name);
        self.instant("sd:FraTidspunkt", &time::copenhagen_midnight(day));
        self.unik("sd:TilTidspunkt", "GraenseIndikator", "true");
        self.close(name);
    }

    /// A relation of the registration: `Virkning` (when known), `Rolle`, `ReferenceID` and a name.
    fn relation(&mut self, name: &str, from: Option<Ymd>, role: &str, reference: &str, display: &str) {
        self.open(name);
        if let Some(day) = from {
            self.virkning("gd:Virkning", day);
        }
        self.urn("gd:Rolle", &format!("{ROLE_URN}{role}"));
        self.urn("gd:ReferenceID", reference);
        if !display.is_empty() {
            self.open("gd:LokalUdvidelseListe");
            self.leaf("bro:Navn", display);
            self.close("gd:LokalUdvidelseListe");
        }
        self.close(name);
    }

    fn urn(&mut self, name: &str, value: &str) {
        self.unik(name, "URNIdentifikator", value);
    }

    fn uuid(&mut self, name: &str, value: &str) {
        self.unik(name, "UUIDIdentifikator", value);
    }

    fn instant(&mut self, name: &str, t: &prost_types::Timestamp) {
        self.unik(name, "TidsstempelDatoTid", &time::format_datetime(t));
    }

    /// A coded value from a table; refused when the canonical value has no code.
    fn code<T: Copy + PartialEq>(
        &mut self,
        name: &str,
        table: Codes<T>,
        value: T,
        field: &str,
    ) -> Result<(), AdapterError> {
        let code = codes::code_of(table, value).ok_or_else(|| {
            invalid(field, format!("is not set, or has no code in the journal: {}", codes::known(table)))
        })?;
        self.leaf(name, code);
        Ok(())
    }
}

/// The message's id: the batch's own when it is a UUID or a URN, else one
/// derived from it, or from the case and the sequences, or from the batch's bytes.
fn message_id(batch: &proto::AdapterBatch) -> UnikId {
    if let Some(u) = ids::uuid_of(&batch.source_message_id) {
        return UnikId::Uuid(u);
    }
    if crate::read::is_urn(&batch.source_message_id) {
        return UnikId::Urn(batch.source_message_id.clone());
    }
    UnikId::Uuid(derived_id(batch))
}

/// A UUID naming the batch when it has no id of its own.
fn derived_id(batch: &proto::AdapterBatch) -> String {
    // The gateway sends one delivery per append: its case and sequences name it.
    if !batch.source_message_id.is_empty() {
        return ids::name_uuid(&format!("besked:{}", batch.source_message_id));
    }
    let first = batch.events.first().map_or(0, |e| e.sequence);
    let last = batch.events.last().map_or(0, |e| e.sequence);
    if !batch.case.is_empty() {
        return ids::name_uuid(&format!("{}#{first}-{last}", batch.case));
    }
    // Without the settings: a map's encoding has no fixed order.
    let bytes = bro_adapter_sdk::prost::Message::encode_to_vec(&proto::AdapterBatch {
        settings: Default::default(),
        ..batch.clone()
    });
    ids::name_uuid(&format!("batch:{}", sha1_smol::Sha1::from(bytes).digest()))
}

/// Renders a batch as a Haendelsesbesked.
pub fn write(batch: &proto::AdapterBatch) -> Result<Vec<u8>, AdapterError> {
    // Pick the events the journal records, checking each one's date on the way.
    let mut entries = Vec::new();
    let mut skipped: Vec<&str> = Vec::new();
    for (index, e) in batch.events.iter().enumerate() {
        let Some(kind) = e.kind.as_ref() else {
            return Err(invalid(format!("events[{index}]"), "no event kind is set"));
        };
        let Some(ty) = type_of(kind) else {
            skipped.push(kind_name(kind));
            continue;
        };
        let date = time::canonical_date(&e.occurred_on.unwrap_or_default())
            .ok_or_else(|| invalid(format!("events[{index}].occurredOn"), "is not a date in the years 1900 to 9999"))?;
        let record_time = e.record_time.filter(time::in_range);
        entries.push(Entry { index, date, ty, kind, record_time });
    }
    if !skipped.is_empty() {
        skipped.sort_unstable();
        skipped.dedup();
        log(
            Level::Info,
            &format!(
                "skipped {} event(s) the journal does not record: {}",
                batch.events.len() - entries.len(),
                skipped.join(", ")
            ),
        );
    }
    if entries.is_empty() {
        return Err(invalid(
            "events",
            "no event the journal records; the sdi adapter writes §§ 75–79 case events, not correspondence, sector plans, appointments or sector contacts",
        ));
    }
    // In date order; events of one day keep the batch's order.
    entries.sort_by_key(|e| e.date);
    if !batch.case.is_empty() && !batch.case.strip_prefix("cases/").is_some_and(is_id) {
        return Err(invalid("case", "is not a bro case name cases/{id}"));
    }
    let opened = entries.iter().find_map(|e| match e.kind {
        Kind::CaseOpened(o) => Some((e.index, o)),
        _ => None,
    });
    let opened_on = opened.and_then(|(i, _)| entries.iter().find(|e| e.index == i)).map(|e| e.date);
    // The people first: every event names its custody holder by their CPR URN.
    let (child, holders) = people(batch, opened)?;
    let municipality = opened.and_then(|(_, o)| o.placing_municipality.as_ref());
    let owner_cvr = municipality.map(|m| m.cvr.as_str()).filter(|c| settings::is_cvr(c));
    if let Some((i, _)) = opened
        && owner_cvr.is_none()
    {
        return Err(invalid(
            format!("events[{i}].caseOpened.placingMunicipality.cvr"),
            "the placing municipality's CVR number (eight digits) is required",
        ));
    }
    let journal_reference =
        opened.and_then(|(_, o)| o.child.as_ref()).map(|c| c.journal_reference.as_str()).unwrap_or_default();
    if journal_reference.chars().count() > MAX_CASE_NUMBER
        && let Some((i, _)) = opened
    {
        return Err(invalid(
            format!("events[{i}].caseOpened.child.journalReference"),
            format!("is longer than {MAX_CASE_NUMBER} characters, SF1470's limit for a case number"),
        ));
    }
    // A case number like 27.24.00-G01-1-26 starts with its KLE subject.
    let kle = journal_reference.get(..8).filter(|k| is_kle(k)).unwrap_or(DEFAULT_KLE);

    // The registered identifiers: configured, never invented.
    let config = Settings::read(&batch.settings)?;
    let beskedtype = config
        .beskedtype
        .as_ref()
        .ok_or_else(|| settings::missing(settings::BESKEDTYPE, "the Beskedtype UUID of a Sag change"))?;
    let sender = config
        .beskedansvarlig_aktoer
        .as_deref()
        .ok_or_else(|| settings::missing(settings::BESKEDANSVARLIG_AKTOER, "the sending system's UUID"))?;
    let classification = config
        .sikkerhedsklassificering
        .as_ref()
        .ok_or_else(|| settings::missing(settings::SIKKERHEDSKLASSIFICERING, "the security classification's UUID"))?;
    let cvr = config.myndighed_cvr.as_deref().or(owner_cvr).ok_or_else(|| {
        settings::missing(
            settings::MYNDIGHED_CVR,
            "the municipality's CVR number (a batch that does not open the case does not carry it)",
        )
    })?;
    let handling = if opened.is_some() { &config.objekthandling_oprettet } else { &config.objekthandling_rettet };

    // Ids and times are derived from the batch: no clock, no randomness.
    let besked_id = message_id(batch);
    let besked_name = match &besked_id {
        UnikId::Uuid(u) | UnikId::Urn(u) => u.as_str(),
    };
    let sag_id = ids::name_uuid(&format!(
        "sag:{}",
        if !batch.case.is_empty() {
            batch.case.as_str()
        } else if !journal_reference.is_empty() {
            journal_reference
        } else {
            besked_name
        }
    ));
    let latest = entries.iter().map(|e| e.date).max().unwrap_or(Ymd { year: 1970, month: 1, day: 1 });
    let formed = entries
        .iter()
        .filter_map(|e| e.record_time)
        .max_by_key(|t| (t.seconds, t.nanos))
        .unwrap_or_else(|| time::copenhagen_midnight(latest));

    let mut w = Writer { xml: XmlWriter::new(), depth: 0 };
    w.xml.declaration("UTF-8");
    w.begin();
    w.xml.start("kuvert:Haendelsesbesked", &[("xmlns:kuvert", KUVERT_NS), ("xmlns:sd", SAGDOK_NS)]);
    w.depth = 1;
    w.setting("kuvert:BeskedId", &besked_id);
    w.leaf("kuvert:BeskedVersion", "1.0");
    // The envelope: what the Beskedfordeler filters and routes on.
    w.open("kuvert:Beskedkuvert");
    w.open("kuvert:Filtreringsdata");
    w.setting("kuvert:Beskedtype", beskedtype);
    w.uuid("kuvert:BeskedAnsvarligAktoer", sender);
    w.urn("kuvert:TilladtModtager", &format!("{CVR_URN}{cvr}"));
    // One related object per person, so subscribers can filter by CPR number.
    if let Some(person_type) = &config.objekttype_person {
        for p in child.iter().chain(holders.iter()) {
            w.open("kuvert:RelateretObjekt");
            w.urn("kuvert:ObjektId", &format!("{CPR_URN}{}", p.cpr));
            w.setting("kuvert:ObjektType", person_type);
            w.close("kuvert:RelateretObjekt");
        }
    }
    w.open("kuvert:ObjektRegistrering");
    w.uuid("kuvert:ObjektRegistreringId", &ids::name_uuid(&format!("registrering:{besked_name}")));
    w.instant("kuvert:Registreringstidspunkt", &formed);
    w.urn("kuvert:ObjektAnsvarligMyndighed", &format!("{CVR_URN}{cvr}"));
    w.uuid("kuvert:ObjektId", &sag_id);
    if let Some(t) = &config.objekttype_sag {
        w.setting("kuvert:ObjektType", t);
    }
    if let Some(h) = handling {
        w.setting("kuvert:ObjektHandling", h);
    }
    w.urn("kuvert:OpgaveEmne", &format!("{KLE_URN}{kle}"));
    w.close("kuvert:ObjektRegistrering");
    w.close("kuvert:Filtreringsdata");
    w.open("kuvert:Leveranceinformation");
    w.instant("kuvert:Dannelsestidspunkt", &formed);
    w.setting("kuvert:Sikkerhedsklassificering", classification);
    w.close("kuvert:Leveranceinformation");
    w.close("kuvert:Beskedkuvert");

    // The payload: SF1470 v6's registration of the Sag.
    w.open("kuvert:Beskeddata");
    w.begin();
    let namespaces = [("xmlns:sag", SAG_NS), ("xmlns:gd", GD_NS), ("xmlns:sd", SAGDOK_NS), ("xmlns:bro", BRO_NS)];
    w.xml.start("sag:RegistreringBesked", &namespaces);
    w.depth += 1;
    w.leaf("sd:UUIDIdentifikator", &sag_id);
    w.open("sag:Registrering");
    w.leaf("sd:Tidspunkt", &time::format_datetime(&formed));
    if opened.is_some() {
        w.leaf("sd:LivscyklusKode", "Opstaaet");
    }
    w.open("sag:AttributListe");
    if !journal_reference.is_empty() {
        w.open("sag:Egenskaber");
        if let Some(day) = opened_on {
            w.virkning("sag:Virkning", day);
        }
        w.leaf("sag:BrugervendtNoegle", journal_reference);
        w.leaf("sag:Sagsnummer", journal_reference);
        w.close("sag:Egenskaber");
    }
    // What SF1470 has no place for: bro's case and the barnets-lov events.
    w.open("gd:LokalUdvidelseListe");
    w.leaf("bro:BroSag", &batch.case);
    for e in &entries {
        w.open("bro:Sagshaendelse");
        w.leaf("bro:Haendelsestype", codes::code_of(codes::TYPES, e.ty).unwrap_or_default());
        // In effect from midnight of the legal date, with no end.
        w.virkning("sd:Virkning", e.date);
        fields(&mut w, e, batch, &holders)?;
        w.close("bro:Sagshaendelse");
    }
    w.close("gd:LokalUdvidelseListe");
    w.close("sag:AttributListe");
    w.open("sag:TilstandListe");
    if let Some(day) = opened_on {
        w.open("sag:Fremdrift");
        w.virkning("sag:Virkning", day);
        w.leaf("sag:FremdriftStatusKode", "Opstaaet");
        w.close("sag:Fremdrift");
    }
    w.close("sag:TilstandListe");
    w.open("sag:RelationListe");
    if let (Some(m), Some(cvr)) = (municipality, owner_cvr) {
        w.relation("sag:Sagsaktoer", opened_on, "ejer", &format!("{CVR_URN}{cvr}"), &m.display_name);
    }
    w.relation("sag:Sagsklasse", opened_on, "primaerklasse", &format!("{KLE_URN}{kle}"), "");
    for p in child.iter().chain(holders.iter()) {
        let role = codes::code_of(codes::ROLES, p.role).unwrap_or("foraelder");
        w.relation("sag:Sagspart", opened_on, role, &format!("{CPR_URN}{}", p.cpr), &p.name);
    }
    w.close("sag:RelationListe");
    w.close("sag:Registrering");
    w.close("sag:RegistreringBesked");
    w.close("kuvert:Beskeddata");
    w.close("kuvert:Haendelsesbesked");
    Ok((w.xml.finish() + "\n").into_bytes())
}

/// The camelCase name of an event kind, as in the batch's JSON.
fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::SectorContactAdded(_) => "sectorContactAdded",
        Kind::SectorContactEnded(_) => "sectorContactEnded",
        Kind::CorrespondenceRecorded(_) => "correspondenceRecorded",
        Kind::SectorPlanRecorded(_) => "sectorPlanRecorded",
        Kind::AppointmentScheduled(_) => "appointmentScheduled",
        Kind::AppointmentCancelled(_) => "appointmentCancelled",
        Kind::LegalBasisRecorded(_) => "legalBasisRecorded",
        Kind::LegalBasisEnded(_) => "legalBasisEnded",
        _ => "a case event",
    }
}

/// The type-specific elements of one `Sagshaendelse`.
fn fields(w: &mut Writer, e: &Entry<'_>, batch: &proto::AdapterBatch, holders: &[Person]) -> Result<(), AdapterError> {
    let i = e.index;
    let part = |w: &mut Writer, reference: &str, field: &str| -> Result<(), AdapterError> {
        let cpr = resolve(batch, holders, reference, &format!("events[{i}].{field}"))?;
        w.urn("bro:Part", &format!("{CPR_URN}{cpr}"));
        Ok(())
    };
    let at = |field: &str| format!("events[{i}].{field}");
    match e.kind {
        // The Sag's parties and owner carry the opening.
        Kind::CaseOpened(_) => {}
        // § 77 stk. 2 turns on the basis, the siblings and the reason: all three are written.
        Kind::PlacementRecommended(r) => {
            w.code("bro:Hjemmel", codes::BASES, r.basis(), &at("placementRecommended.basis"))?;
            w.leaf("bro:SoeskendeUnder18IHusstanden", if r.siblings_under_18_in_household { "true" } else { "false" });
            w.code("bro:Indstillingsgrund", codes::REASONS, r.reason(), &at("placementRecommended.reason"))?;
        }
        Kind::PlacementStarted(s) => {
            w.code("bro:Hjemmel", codes::BASES, s.basis(), &at("placementStarted.basis"))?;
            if s.site_kind() != proto::PlacementSiteKind::Unspecified {
                w.code("bro:Anbringelsessted", codes::SITES, s.site_kind(), &at("placementStarted.siteKind"))?;
            }
        }
        Kind::PlacementEnded(p) => {
            w.code("bro:Ophoersgrund", codes::END_REASONS, p.reason(), &at("placementEnded.reason"))?
        }
        Kind::SupportPersonOffered(p) => part(w, &p.custody_holder, "supportPersonOffered.custodyHolder")?,
        Kind::SupportPersonAccepted(p) => part(w, &p.custody_holder, "supportPersonAccepted.custodyHolder")?,
        Kind::SupportPersonDeclined(p) => part(w, &p.custody_holder, "supportPersonDeclined.custodyHolder")?,
        Kind::SupportPersonChosen(p) => {
            part(w, &p.custody_holder, "supportPersonChosen.custodyHolder")?;
            w.code("bro:Stoettepersontype", codes::PERSON_KINDS, p.kind(), &at("supportPersonChosen.kind"))?;
            if let Some(person) = &p.person {
                w.open("bro:Stoetteperson");
                w.leaf("bro:FuldtNavn", &person.display_name);
                w.leaf("bro:Rolle", &person.role);
                w.leaf("bro:Telefon", &person.phone);
                w.leaf("bro:Email", &person.email);
                w.close("bro:Stoetteperson");
            }
        }
        Kind::SupportPersonApproved(p) => part(w, &p.custody_holder, "supportPersonApproved.custodyHolder")?,
        Kind::SupportPersonRefused(p) => {
            part(w, &p.custody_holder, "supportPersonRefused.custodyHolder")?;
            w.leaf("bro:Begrundelse", &p.reason);
        }
        Kind::SupportDecided(d) => {
            part(w, &d.custody_holder, "supportDecided.custodyHolder")?;
            w.code("bro:Foranstaltning", codes::DECIDED_MEASURES, d.measure(), &at("supportDecided.measure"))?;
            w.code("bro:Afgoerelse", codes::OUTCOMES, d.outcome(), &at("supportDecided.outcome"))?;
        }
        Kind::SupportStarted(s) => {
            part(w, &s.custody_holder, "supportStarted.custodyHolder")?;
            w.code("bro:Foranstaltning", codes::STARTED_MEASURES, s.measure(), &at("supportStarted.measure"))?;
        }
        Kind::ConsentGiven(c) => {
            part(w, &c.custody_holder, "consentGiven.custodyHolder")?;
            w.leaf("bro:Samtykkeomfang", &c.scope);
        }
        Kind::ConsentWithdrawn(c) => {
            part(w, &c.custody_holder, "consentWithdrawn.custodyHolder")?;
            w.leaf("bro:Samtykkeomfang", &c.scope);
        }
        Kind::PlanPrepared(p) => {
            w.leaf("bro:PlanId", &p.plan_id);
            w.code("bro:Plantype", codes::PLAN_KINDS, p.kind(), &at("planPrepared.kind"))?;
            // The custody holders a § 78 plan covers, by CPR URN like every other party reference.
            for (j, c) in p.covers.iter().enumerate() {
                let cpr = resolve(batch, holders, c, &at(&format!("planPrepared.covers[{j}]")))?;
                w.urn("bro:Omfatter", &format!("{CPR_URN}{cpr}"));
            }
            for (j, g) in p.goals.iter().enumerate() {
                w.open("bro:Maal");
                w.leaf("bro:MaalId", &g.goal_id);
                w.leaf("bro:AendringHosForaeldre", &g.change_in_parents);
                if g.aim() != proto::GoalAim::Unspecified {
                    w.code("bro:Sigte", codes::AIMS, g.aim(), &at(&format!("planPrepared.goals[{j}].aim")))?;
                }
                for s in &g.sub_goals {
                    w.leaf_always("bro:Delmaal", s);
                }
                if g.owner_sector() != proto::Sector::Unspecified {
                    w.code(
                        "bro:EjerSektor",
                        codes::SECTORS,
                        g.owner_sector(),
                        &at(&format!("planPrepared.goals[{j}].ownerSector")),
                    )?;
                }
                w.leaf("bro:Ejer", &g.owner);
                w.close("bro:Maal");
            }
        }
        Kind::PlanOmitted(p) => w.leaf("bro:Begrundelse", &p.reasons),
        _ => {}
    }
    Ok(())
}
