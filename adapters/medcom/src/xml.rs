//! XML in, on the SDK's `quick-xml` reader: a body decoded by its BOM or
//! XML declaration (windows-1252, ISO-8859-1, UTF-8) and parsed under the
//! SDK's caps, with no DTD (so no entity can expand).

use std::borrow::Cow;

use bro_adapter_sdk::AdapterError;
use bro_adapter_sdk::xml::{self as sdk_xml, CAPS, Document};

/// Decodes an XML body to text: a BOM wins, then the declaration's
/// `encoding`, then UTF-8.
pub fn decode(body: &[u8]) -> Result<Cow<'_, str>, AdapterError> {
    sdk_xml::decode(body)
}

/// Parses decoded XML text under the SDK's caps; a DTD is refused (MedCom
/// messages have none, and without one no entity can expand).
pub fn parse(text: &str) -> Result<Document<'_>, AdapterError> {
    sdk_xml::parse(text, &CAPS, "a MedCom message")
}

/// A value from the input, fit to echo in an error: at most `max` characters,
/// control characters dropped, runs of six or more digits (part of a CPR
/// number, perhaps) replaced by `…` — the SDK's.
pub use bro_adapter_sdk::echo::masked as echo;
