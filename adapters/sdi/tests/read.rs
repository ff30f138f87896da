//! Reading Haendelsesbeskeder: every field of the Sag change the adapter
//! maps, the party ids of a case opening, dates and their order, and the
//! refusals that name what was refused.

mod common;

use bro_adapter_sdk::proto::{self, PersonIdentifierKind as IdKind, case_event::Kind};
use common::{batch, error, event, message, parents, part, read, who};

fn date(e: &proto::CaseEvent) -> (i32, i32, i32) {
    e.occurred_on.map(|d| (d.year, d.month, d.day)).unwrap_or_default()
}

#[test]
fn a_case_opening_maps_the_child_the_custody_holders_and_the_municipality() {
    let b = batch("sag-oprettet.in.xml");
    assert_eq!(b.source_message_id, "8e3b2c10-5f4a-4d6e-9b7c-1a2b3c4d5e6f");
    assert_eq!(b.case, "");
    assert!(b.parties.is_empty());
    // The custody holders are the subjects, in document order; the child is not one.
    let subjects: Vec<(IdKind, &str)> = b.subjects.iter().map(|s| (s.kind(), s.value.as_str())).collect();
    assert_eq!(subjects, [(IdKind::Cpr, "0507880000"), (IdKind::Cpr, "1206851000")]);
    // In date order: 12 January, 13 January (23:30 UTC is past midnight in Denmark), 15 January.
    let dates: Vec<_> = b.events.iter().map(date).collect();
    assert_eq!(dates, [(2026, 1, 12), (2026, 1, 13), (2026, 1, 15)]);
    let Some(Kind::CaseOpened(o)) = b.events.first().and_then(|e| e.kind.clone()) else {
        panic!("the first event is not case_opened")
    };
    let child = o.child.unwrap_or_default();
    assert_eq!(child.identifier.map(|i| i.value).as_deref(), Some("1503150000"));
    assert_eq!(child.journal_reference, "27.24.00-G01-1-26");
    let holders: Vec<(&str, &str, &str)> = o
        .custody_holders
        .iter()
        .map(|p| (p.party_id.as_str(), p.identifier.as_ref().map_or("", |i| i.value.as_str()), p.display_name.as_str()))
        .collect();
    assert_eq!(holders, [("mor", "0507880000", "Mette Testesen"), ("far", "1206851000", "Jonas Prøvesen")]);
    let m = o.placing_municipality.unwrap_or_default();
    assert_eq!((m.cvr.as_str(), m.display_name.as_str()), ("29990000", "Testrup Kommune, Børn og Familie"));
    let Some(Kind::PlacementRecommended(r)) = b.events.get(1).and_then(|e| e.kind.clone()) else {
        panic!("the second event is not placement_recommended")
    };
    assert_eq!(r.basis(), proto::PlacementBasis::Bl47);
    assert_eq!(r.reason(), proto::RecommendationReason::Neglect);
    assert!(r.siblings_under_18_in_household);
    assert!(b.events.iter().all(|e| e.source.is_none() && e.sequence == 0 && e.record_time.is_none()));
}

#[test]
fn every_event_type_is_read_by_some_fixture() {
    let mut kinds: Vec<String> = Vec::new();
    for name in common::inputs() {
        if let Ok(b) = sdi::translate(&common::fixture(&name)) {
            for e in &b.events {
                let k = format!("{:?}", e.kind.as_ref().map(std::mem::discriminant));
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
    }
    assert_eq!(kinds.len(), sdi::codes::TYPES.len());
}

#[test]
fn custody_holders_get_party_ids_from_their_roles() {
    let parts = [
        part("foraelder", "0309921000"),
        part("mor", "0507880000"),
        part("mor", "0507881000"),
        part("foraelder", "1204861000"),
        part("barn", "1503150000"),
    ]
    .concat();
    let b = read(message(&parts, &event("sag-oprettet", "2026-01-12", "")).as_bytes());
    let Some(Kind::CaseOpened(o)) = b.events.first().and_then(|e| e.kind.clone()) else { panic!("no case_opened") };
    let ids: Vec<&str> = o.custody_holders.iter().map(|p| p.party_id.as_str()).collect();
    assert_eq!(ids, ["foraelder-1", "mor", "mor-2", "foraelder-2"]);
    assert_eq!(b.subjects.len(), 4);
}

#[test]
fn the_delivery_wrapper_and_the_bro_case_are_read() {
    let b = batch("stoette-og-samtykke.in.xml");
    assert_eq!(b.events.len(), 10);
    let Some(Kind::ConsentWithdrawn(w)) = b.events.last().and_then(|e| e.kind.clone()) else { panic!("no withdrawal") };
    assert_eq!((w.custody_holder.as_str(), w.scope.as_str()), ("subjects/0", "share:jobcenter"));
    assert_eq!(batch("hjemgivelse.in.xml").case, "cases/emil-testesen");
}

#[test]
fn times_without_an_offset_are_danish_and_a_bare_date_is_midnight() {
    let b = batch("plan-undladt.in.xml");
    let dates: Vec<_> = b.events.iter().map(date).collect();
    assert_eq!(dates, [(2026, 4, 1), (2026, 4, 7), (2026, 4, 20)]);
    let summer = message(&parents(), &event("revision-tilbudt", "2026-06-30T23:30:00", ""));
    assert_eq!(read(summer.as_bytes()).events.first().map(date), Some((2026, 6, 30)));
    let utc = message(&parents(), &event("revision-tilbudt", "2026-06-30T22:30:00Z", ""));
    assert_eq!(read(utc.as_bytes()).events.first().map(date), Some((2026, 7, 1)));
}

#[test]
fn events_of_one_day_keep_the_journals_order() {
    let events = [
        event("revision-vurderet", "2026-05-02", ""),
        event("revision-foretaget", "2026-05-01T12:00:00+02:00", ""),
        event("revision-tilbudt", "2026-05-01T08:00:00+02:00", ""),
    ]
    .concat();
    let b = read(message(&parents(), &events).as_bytes());
    let kinds: Vec<&str> = b
        .events
        .iter()
        .map(|e| match e.kind {
            Some(Kind::RevisionOffered(_)) => "offered",
            Some(Kind::RevisionMade(_)) => "made",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["made", "offered", "other"]);
}

#[test]
fn a_holistic_plan_covers_custody_holders_by_subject() {
    let b = batch("planer.in.xml");
    let plans: Vec<proto::PlanPrepared> = b
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::PlanPrepared(p)) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(plans.len(), 2);
    let holistic = plans.get(1).cloned().unwrap_or_default();
    assert_eq!(holistic.kind(), proto::PlanKind::Bl78);
    assert_eq!(holistic.covers, ["subjects/0", "subjects/1"]);
    let first = plans.first().and_then(|p| p.goals.first().cloned()).unwrap_or_default();
    assert_eq!(first.aim(), proto::GoalAim::Contact);
    assert_eq!(first.sub_goals.len(), 2);
    assert_eq!(first.owner_sector(), proto::Sector::Unspecified);
}

#[test]
fn missing_and_unknown_values_are_invalid_and_named() {
    let e = |events: &str| error(message(&parents(), events).as_bytes());
    assert_eq!(
        e(&event("anbringelse-startet", "2026-01-15", "<bro:Hjemmel>bl99</bro:Hjemmel>")),
        "invalid content: Beskeddata.RegistreringBesked.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse[1].Hjemmel: unknown code \"bl99\"; expected bl46, bl47 or lbu14"
    );
    assert_eq!(
        e(&event("anbringelse-startet", "2026-01-15", "")),
        "invalid content: Beskeddata.RegistreringBesked.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse[1].Hjemmel: is required: bl46, bl47 or lbu14"
    );
    let bl75 = e(&event(
        "stoette-afgjort",
        "2026-01-15",
        &format!(
            "{}<bro:Foranstaltning>bl75</bro:Foranstaltning><bro:Afgoerelse>bevilget</bro:Afgoerelse>",
            who("0507880000")
        ),
    ));
    assert!(bl75.contains("Sagshaendelse[1].Foranstaltning: unknown code \"bl75\""), "{bl75}");
    let no_part = e(&event("stoetteperson-tilbudt", "2026-01-15", ""));
    assert!(no_part.ends_with("Sagshaendelse[1].Part: the custody holder (a CPR URN) is required"), "{no_part}");
    let scope = e(&event(
        "samtykke-givet",
        "2026-01-15",
        &format!("{}<bro:Samtykkeomfang>share:JobCenter</bro:Samtykkeomfang>", who("0507880000")),
    ));
    assert!(scope.contains("Samtykkeomfang: \"share:JobCenter\" is not a scope"), "{scope}");
    let no_date = e("<bro:Sagshaendelse><bro:Haendelsestype>revision-tilbudt</bro:Haendelsestype></bro:Sagshaendelse>");
    assert_eq!(
        no_date,
        "invalid content: Beskeddata.RegistreringBesked.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse[1].Virkning: is required"
    );
    let bad_date = e(&event("revision-tilbudt", "2026-02-30T10:00:00Z", ""));
    assert!(bad_date.contains("FraTidspunkt.TidsstempelDatoTid: is not a date-time"), "{bad_date}");
    let old = e(&event("revision-tilbudt", "1899-12-31T10:00:00Z", ""));
    assert!(old.ends_with("is outside the years 1900 to 9999"), "{old}");
    let plan77 = e(&event(
        "plan-udarbejdet",
        "2026-01-15",
        "<bro:Plantype>bl77</bro:Plantype><bro:Omfatter><sd:URNIdentifikator>urn:oio:cpr-nr:0507880000</sd:URNIdentifikator></bro:Omfatter>",
    ));
    assert!(plan77.ends_with("Omfatter: only a § 78 plan names the custody holders it covers"), "{plan77}");
    let plan78 = e(&event("plan-udarbejdet", "2026-01-15", "<bro:Plantype>bl78</bro:Plantype>"));
    assert!(plan78.ends_with("Omfatter: a § 78 plan names the custody holders it covers"), "{plan78}");
    let plan_id =
        e(&event("plan-udarbejdet", "2026-01-15", "<bro:PlanId>Plan 1</bro:PlanId><bro:Plantype>bl77</bro:Plantype>"));
    assert!(plan_id.contains("PlanId: is not a plan id"), "{plan_id}");
    assert!(e("").ends_with("Beskeddata.RegistreringBesked.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse: at least one bro:Sagshaendelse is required"));
}

#[test]
fn a_case_opening_needs_the_child_and_the_owner() {
    let no_child = error(message(&parents(), &event("sag-oprettet", "2026-01-12", "")).as_bytes());
    assert!(
        no_child.starts_with(
            "invalid content: Beskeddata.RegistreringBesked.Registrering.RelationListe.Sagspart: Beskeddata.RegistreringBesked.Registrering.AttributListe.LokalUdvidelseListe.Sagshaendelse[1] (sag-oprettet) needs the child"
        ),
        "{no_child}"
    );
    let with_child = format!("{}{}", parents(), part("barn", "1503150000"));
    let text = message(&with_child, &event("sag-oprettet", "2026-01-12", ""));
    let no_owner = text.replace("urn:bro:sdi:rolle:ejer", "urn:bro:sdi:rolle:ansvarlig");
    assert!(error(no_owner.as_bytes()).contains("needs the placing municipality: a Sagsaktoer with Rolle ejer"));
    let bad_cvr = text.replace("urn:oio:cvr-nr:29990000", "urn:oio:cvr-nr:2999");
    assert_eq!(
        error(bad_cvr.as_bytes()),
        "invalid content: Beskeddata.RegistreringBesked.Registrering.RelationListe.Sagsaktoer[1].ReferenceID: is not a CVR URN (urn:oio:cvr-nr: and eight digits)"
    );
}

#[test]
fn the_parties_are_checked() {
    let revision = event("revision-tilbudt", "2026-01-15", "");
    let none = error(message(&part("barn", "1503150000"), &revision).as_bytes());
    assert!(
        none.ends_with("Sagspart: at least one custody holder (Rolle mor, far or foraelder) is required"),
        "{none}"
    );
    let twice = error(message(&[parents(), part("foraelder", "0507880000")].concat(), &revision).as_bytes());
    assert!(twice.ends_with("Sagspart[3].ReferenceID: names a person another Sagspart names"), "{twice}");
    let two_children = [parents(), part("barn", "1503150000"), part("barn", "1503151000")].concat();
    assert!(error(message(&two_children, &revision).as_bytes()).contains("a Sag concerns one child"));
    let five =
        ["0101900000", "1503151000", "0309921000", "1204861000", "0507881000"].map(|c| part("foraelder", c)).concat();
    assert!(error(message(&five, &revision).as_bytes()).ends_with("has 5 custody holders; at most 4 are allowed"));
    let role = error(message(&part("moster", "0507880000"), &revision).as_bytes());
    assert!(
        role.contains(
            "Sagspart[1].Rolle: unknown role \"moster\"; expected urn:bro:sdi:rolle: and barn, mor, far or foraelder"
        ),
        "{role}"
    );
}

#[test]
fn envelope_refusals_name_what_they_refuse() {
    let text = message(&parents(), &event("revision-tilbudt", "2026-01-15", ""));
    let v2 = text.replace("<kuvert:BeskedVersion>1.0<", "<kuvert:BeskedVersion>2.0<");
    assert_eq!(
        error(v2.as_bytes()),
        "unsupported message type: Haendelsesbesked BeskedVersion \"2.0\"; the sdi adapter reads version 1.0"
    );
    let no_id = text.replace("00000000-0000-4000-8000-000000000001", "besked-1");
    assert_eq!(error(no_id.as_bytes()), "invalid content: BeskedId.UUIDIdentifikator: is not a UUID");
    let base64 = common::envelope(
        "<sd:UUIDIdentifikator>00000000-0000-4000-8000-000000000001</sd:UUIDIdentifikator>",
        "<kuvert:Beskeddata><b:Base64 xmlns:b=\"urn:besked:kuvert:1.0\">PFNhZy8+</b:Base64></kuvert:Beskeddata>",
    );
    assert!(error(base64.as_bytes()).contains("a Beskeddata carried as Base64"));
    let kle_class = "<sag:Sagsklasse><gd:Rolle><sd:URNIdentifikator>urn:bro:sdi:rolle:primaerklasse</sd:URNIdentifikator></gd:Rolle><gd:ReferenceID><sd:URNIdentifikator>urn:oio:kle:27.24</sd:URNIdentifikator></gd:ReferenceID></sag:Sagsklasse>";
    let kle = text.replace("</sag:RelationListe>", &format!("{kle_class}</sag:RelationListe>"));
    assert!(error(kle.as_bytes()).ends_with("Sagsklasse[1].ReferenceID: is not a KLE URN (urn:oio:kle: and dd.dd.dd)"));
    let case = text.replace("<gd:LokalUdvidelseListe>", "<gd:LokalUdvidelseListe><bro:BroSag>sager/1</bro:BroSag>");
    assert!(error(case.as_bytes()).ends_with("BroSag: is not a bro case name cases/{id}"));
}

/// The payload of `message`, for envelopes built around it.
fn payload() -> String {
    common::registration(&parents(), &event("revision-tilbudt", "2026-01-15", ""))
}

#[test]
fn a_besked_id_may_be_a_uuid_or_a_urn() {
    let data = format!("<kuvert:Beskeddata>{}</kuvert:Beskeddata>", payload());
    let urn = common::envelope("<sd:URNIdentifikator>urn:journal:besked:4711</sd:URNIdentifikator>", &data);
    assert_eq!(read(urn.as_bytes()).source_message_id, "urn:journal:besked:4711");
    let uuid_urn = common::envelope(
        "<sd:URNIdentifikator>urn:uuid:8E3B2C10-5F4A-4D6E-9B7C-1A2B3C4D5E6F</sd:URNIdentifikator>",
        &data,
    );
    assert_eq!(read(uuid_urn.as_bytes()).source_message_id, "8e3b2c10-5f4a-4d6e-9b7c-1a2b3c4d5e6f");
    let spaced = common::envelope("<sd:URNIdentifikator>besked 4711</sd:URNIdentifikator>", &data);
    assert_eq!(
        error(spaced.as_bytes()),
        "invalid content: BeskedId.URNIdentifikator: is not a URN: urn: and at most 255 characters, no spaces"
    );
    // A URN id survives writing: the written message keeps it.
    let mut batch = read(urn.as_bytes());
    batch.settings = common::settings();
    let written = testing_body(&batch);
    assert!(written.contains("<sd:URNIdentifikator>urn:journal:besked:4711</sd:URNIdentifikator>"), "{written}");
}

fn testing_body(batch: &proto::AdapterBatch) -> String {
    let m = bro_adapter_sdk::testing::accepted(sdi::render(batch, "haendelsesbesked"));
    String::from_utf8(m.body).unwrap_or_default()
}

#[test]
fn every_beskeddata_is_read_or_refused_by_name() {
    let id = "<sd:UUIDIdentifikator>00000000-0000-4000-8000-000000000001</sd:UUIDIdentifikator>";
    let sag = format!("<kuvert:Beskeddata>{}</kuvert:Beskeddata>", payload());
    let other = "<kuvert:Beskeddata><x:Bilag xmlns:x=\"urn:example:bilag\"/></kuvert:Beskeddata>";
    // The Sag in the second Beskeddata, an empty first one: read.
    let second = common::envelope(id, &format!("<kuvert:Beskeddata/>{sag}"));
    assert_eq!(read(second.as_bytes()).events.len(), 1);
    let besides = error(common::envelope(id, &format!("{sag}{other}")).as_bytes());
    assert_eq!(
        besides,
        "unsupported message type: Beskeddata[2] carries Bilag (namespace \"urn:example:bilag\") besides the Sag \
         registration; the sdi adapter reads a Haendelsesbesked whose only payload is one Sag registration"
    );
    let two = error(common::envelope(id, &format!("{sag}{sag}")).as_bytes());
    assert!(
        two.ends_with("a Haendelsesbesked with 2 Sag registrations; the sdi adapter reads one per message"),
        "{two}"
    );
    let text = error(common::envelope(id, "<kuvert:Beskeddata>Hej</kuvert:Beskeddata>").as_bytes());
    assert!(text.starts_with("unsupported message type: a Haendelsesbesked about text"), "{text}");
    let none = error(common::envelope(id, "").as_bytes());
    assert_eq!(none, "invalid content: Beskeddata: is required: the Sag registration (SF1470 RegistreringBesked)");
    let empty = error(common::envelope(id, "<kuvert:Beskeddata/>").as_bytes());
    assert_eq!(empty, "invalid content: Beskeddata: carries no Sag registration (SF1470 RegistreringBesked)");
}

#[test]
fn a_bare_date_is_tolerated_as_midnight() {
    let b = read(message(&parents(), &event("revision-tilbudt", "2026-01-15", "")).as_bytes());
    assert_eq!(b.events.first().map(date), Some((2026, 1, 15)));
}

/// KOMBIT's own example message (`externTestBesked.xml` of
/// `kombit/bfo_infrastructureSamples-java`), when it has been fetched: its
/// envelope is read and its test payload refused by name. Not in the
/// repository (no licence); set `SDI_KOMBIT_EXAMPLE` to its path.
#[test]
fn kombits_example_envelope_is_read_and_its_payload_refused_by_name() {
    let path = std::env::var("SDI_KOMBIT_EXAMPLE").unwrap_or_else(|_| {
        "/tmp/kombit-xsd/bfo/bf-client-example-app/src/main/resources/example_messages/externTestBesked.xml".into()
    });
    let Ok(body) = std::fs::read(&path) else {
        println!("skipped: KOMBIT's example message is not at {path} (see adapters/sdi/README.md, \"Validating\")");
        return;
    };
    let e = error(&body);
    assert!(
        e.starts_with(
            "unsupported message type: a Haendelsesbesked about Beskeddata (namespace \"urn:kombit:test\"), ObjektType"
        ),
        "{e}"
    );
    // The same envelope with a Sag registration instead of its test payload: accepted.
    let text = String::from_utf8(body).unwrap_or_default();
    let (Some(start), Some(end)) = (text.find("<ns2:Beskeddata>"), text.find("</ns2:Beskeddata>")) else {
        panic!("the example's Beskeddata is not where it was");
    };
    let swapped = format!(
        "{}<ns2:Beskeddata>{}{}",
        &text[..start],
        payload().replace("<sag:RegistreringBesked ", "<sag:RegistreringBesked xmlns:sd=\"urn:oio:sagdok:3.0.0\" "),
        &text[end..]
    );
    assert_eq!(read(swapped.as_bytes()).events.len(), 1);
}

#[test]
fn the_content_type_is_not_trusted() {
    use bro_adapter_sdk::{Adapter, Message};
    let message = Message {
        content_type: "application/json".into(),
        body: common::fixture("sag-oprettet.in.xml"),
        metadata: vec![("message-id".into(), "transport-id".into())],
    };
    let b = sdi::Sdi::to_canonical(message);
    assert_eq!(b.map(|b| b.source_message_id).ok().as_deref(), Some("8e3b2c10-5f4a-4d6e-9b7c-1a2b3c4d5e6f"));
}

#[test]
fn describe_names_what_is_read_and_written() {
    use bro_adapter_sdk::{Adapter, SystemKind};
    let info = sdi::Sdi::describe();
    assert_eq!(info.name, "sdi");
    assert!(matches!(info.system_kind, SystemKind::Journal));
    assert_eq!(info.reads.first().map(|t| t.name.as_str()), Some("Haendelsesbesked"));
    assert_eq!(info.writes.first().map(|t| t.name.as_str()), Some("Haendelsesbesked"));
}

#[test]
fn the_one_allowed_receiver_is_the_addressed_municipality() {
    assert_eq!(batch("planer.in.xml").addressed_municipality, "29990000");
    let one = common::text("planer.in.xml");
    let allowed = "<kuvert:TilladtModtager><sd:URNIdentifikator>urn:oio:cvr-nr:29990000</sd:URNIdentifikator></kuvert:TilladtModtager>";
    assert!(one.contains(allowed), "the fixture allows one receiver");
    let two = one.replace(
        allowed,
        &format!("{allowed}<kuvert:TilladtModtager><sd:URNIdentifikator>urn:oio:cvr-nr:29188505</sd:URNIdentifikator></kuvert:TilladtModtager>"),
    );
    assert_eq!(read(two.as_bytes()).addressed_municipality, "", "two receivers address no one municipality");
}
