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

/// A Haendelsesbesked with the given `sag:SagsPart` and `sag:Sagshaendelse` markup.
pub fn message(parts: &str, events: &str) -> String {
    format!(
        r#"<kuvert:Haendelsesbesked xmlns:kuvert="urn:oio:besked:kuvert:1.0" xmlns:sagdok="urn:oio:sagdok:3.0.0" xmlns:sag="urn:bro:sdi:sag:1.0">
  <kuvert:BeskedId><sagdok:UUIDIdentifikator>00000000-0000-4000-8000-000000000001</sagdok:UUIDIdentifikator></kuvert:BeskedId>
  <kuvert:BeskedVersion>1.0</kuvert:BeskedVersion>
  <kuvert:Beskeddata><sag:Sag>
    <sag:Sagsaktoer><sag:Rolle>ejer</sag:Rolle><sag:ReferenceID><sagdok:URNIdentifikator>urn:oio:cvr-nr:29990000</sagdok:URNIdentifikator></sag:ReferenceID></sag:Sagsaktoer>
    {parts}
    {events}
  </sag:Sag></kuvert:Beskeddata>
</kuvert:Haendelsesbesked>"#
    )
}

/// A `sag:SagsPart`.
pub fn part(role: &str, cpr: &str) -> String {
    format!(
        "<sag:SagsPart><sag:Rolle>{role}</sag:Rolle><sag:ReferenceID><sagdok:URNIdentifikator>urn:oio:cpr-nr:{cpr}</sagdok:URNIdentifikator></sag:ReferenceID></sag:SagsPart>"
    )
}

/// A `sag:Sagshaendelse` of `code` on `date` with more markup.
pub fn event(code: &str, date: &str, more: &str) -> String {
    format!(
        "<sag:Sagshaendelse><sag:Haendelsestype>{code}</sag:Haendelsestype><sagdok:Virkning><sagdok:FraTidspunkt><sagdok:TidsstempelDatoTid>{date}</sagdok:TidsstempelDatoTid></sagdok:FraTidspunkt></sagdok:Virkning>{more}</sag:Sagshaendelse>"
    )
}

/// A `sag:Part` naming `cpr`.
pub fn who(cpr: &str) -> String {
    format!("<sag:Part><sagdok:URNIdentifikator>urn:oio:cpr-nr:{cpr}</sagdok:URNIdentifikator></sag:Part>")
}

/// The mother and the father of the fixtures, as `SagsPart`s.
pub fn parents() -> String {
    format!("{}{}", part("mor", "0507880000"), part("far", "1206851000"))
}
