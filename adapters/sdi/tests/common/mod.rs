//! Helpers shared by the sdi adapter's tests: the fixtures, reading them,
//! errors as `bro adapter test` prints them, and building small messages.

#![allow(dead_code)]

use bro_adapter_sdk::{proto, testing};

/// The synthetic people of the fixtures (CPR numbers that fail modulus 11).
pub const PEOPLE: &[&str] = &[
    "1503150000",
    "0507880000",
    "1206851000",
    "120685-1000",
    "0309150000",
    "0309921000",
    "Emil",
    "Testesen",
    "Mette",
    "Jonas",
    "Prøvesen",
    "Sara",
    "Eksempel",
    "Naboesen",
    "Støttesen",
];

/// The adapter's fixtures directory.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// The bytes of `fixtures/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    testing::fixture(FIXTURES, name)
}

/// The text of `fixtures/NAME`.
pub fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every `NAME.in.xml` fixture.
pub fn inputs() -> Vec<String> {
    testing::fixture_names(FIXTURES, ".in.xml")
}

/// A message that must translate.
pub fn read(body: &[u8]) -> proto::AdapterBatch {
    testing::accepted(sdi::translate(body))
}

/// A fixture that must translate.
pub fn batch(name: &str) -> proto::AdapterBatch {
    read(&fixture(name))
}

/// The error of a message that must not translate.
pub fn error(body: &[u8]) -> String {
    testing::refused(sdi::translate(body), &[])
}

/// The system settings the tests write with: synthetic registered identifiers.
pub fn settings<M: FromIterator<(String, String)>>() -> M {
    [
        ("beskedtype", "5d2e8f1a-0000-4000-8000-000000000001"),
        ("beskedansvarlig_aktoer", "8d5ad9c7-0000-4000-8000-000000000001"),
        ("sikkerhedsklassificering", "3f6b2c1d-0000-4000-8000-000000000001"),
        ("myndighed_cvr", "29990000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A Haendelsesbesked around `payload` (one Beskeddata), valid against Beskedkuvert.xsd.
pub fn envelope(id: &str, payload: &str) -> String {
    format!(
        r#"<kuvert:Haendelsesbesked xmlns:kuvert="urn:oio:besked:kuvert:1.0" xmlns:sd="urn:oio:sagdok:3.0.0">
  <kuvert:BeskedId>{id}</kuvert:BeskedId>
  <kuvert:BeskedVersion>1.0</kuvert:BeskedVersion>
  <kuvert:Beskedkuvert>
    <kuvert:Filtreringsdata><kuvert:Beskedtype><sd:UUIDIdentifikator>5d2e8f1a-0000-4000-8000-000000000001</sd:UUIDIdentifikator></kuvert:Beskedtype></kuvert:Filtreringsdata>
    <kuvert:Leveranceinformation/>
  </kuvert:Beskedkuvert>
  {payload}
</kuvert:Haendelsesbesked>"#
    )
}

/// An SF1470 registration with the given relations (`Sagspart`…) and `bro:Sagshaendelse` markup.
pub fn registration(relations: &str, events: &str) -> String {
    format!(
        r#"<sag:RegistreringBesked xmlns:sag="urn:oio:sts:sagdok:sag:6" xmlns:gd="urn:oio:sts:generelledefinitioner:6" xmlns:bro="urn:bro:sdi:udvidelse:1.0">
    <sd:UUIDIdentifikator>6a1d3e5f-7b9c-4d2e-8f0a-1b3c5d7e9f2a</sd:UUIDIdentifikator>
    <sag:Registrering>
      <sag:AttributListe><gd:LokalUdvidelseListe>{events}</gd:LokalUdvidelseListe></sag:AttributListe>
      <sag:TilstandListe/>
      <sag:RelationListe>
        <sag:Sagsaktoer><gd:Rolle><sd:URNIdentifikator>urn:bro:sdi:rolle:ejer</sd:URNIdentifikator></gd:Rolle><gd:ReferenceID><sd:URNIdentifikator>urn:oio:cvr-nr:29990000</sd:URNIdentifikator></gd:ReferenceID></sag:Sagsaktoer>
        {relations}
      </sag:RelationListe>
    </sag:Registrering>
  </sag:RegistreringBesked>"#
    )
}

/// A Haendelsesbesked with the given `Sagspart` and `bro:Sagshaendelse` markup.
pub fn message(parts: &str, events: &str) -> String {
    let id = "<sd:UUIDIdentifikator>00000000-0000-4000-8000-000000000001</sd:UUIDIdentifikator>";
    envelope(id, &format!("<kuvert:Beskeddata>{}</kuvert:Beskeddata>", registration(parts, events)))
}

/// A `sag:Sagspart`.
pub fn part(role: &str, cpr: &str) -> String {
    format!(
        "<sag:Sagspart><gd:Rolle><sd:URNIdentifikator>urn:bro:sdi:rolle:{role}</sd:URNIdentifikator></gd:Rolle><gd:ReferenceID><sd:URNIdentifikator>urn:oio:cpr-nr:{cpr}</sd:URNIdentifikator></gd:ReferenceID></sag:Sagspart>"
    )
}

/// A `bro:Sagshaendelse` of `code` on `date` with more markup.
pub fn event(code: &str, date: &str, more: &str) -> String {
    format!(
        "<bro:Sagshaendelse><bro:Haendelsestype>{code}</bro:Haendelsestype><sd:Virkning><sd:FraTidspunkt><sd:TidsstempelDatoTid>{date}</sd:TidsstempelDatoTid></sd:FraTidspunkt></sd:Virkning>{more}</bro:Sagshaendelse>"
    )
}

/// A `bro:Part` naming `cpr`.
pub fn who(cpr: &str) -> String {
    format!("<bro:Part><sd:URNIdentifikator>urn:oio:cpr-nr:{cpr}</sd:URNIdentifikator></bro:Part>")
}

/// The mother and the father of the fixtures, as `Sagspart`s.
pub fn parents() -> String {
    format!("{}{}", part("mor", "0507880000"), part("far", "1206851000"))
}
