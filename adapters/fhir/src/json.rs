//! Reading FHIR JSON field by field with the SDK's
//! [`bro_adapter_sdk::json`] (each refusal naming its field by JSON pointer,
//! with caps on text sizes and list lengths), and the checks of FHIR's own
//! that reading and writing share (CPR numbers, digits, codes quoted for an
//! error).

pub use bro_adapter_sdk::json::{MAX_LIST, MAX_TEXT, Obj, kind, pointer};
use bro_adapter_sdk::{AdapterError, cpr};
use serde_json::Value;

/// What the adapter reads, for the refusal of another format.
const READS: &str = "the fhir adapter reads FHIR R4 JSON (a Bundle of Appointments, or one Appointment)";

/// Parses the body: empty → malformed; not JSON by its first byte → unsupported.
pub fn parse(body: &[u8]) -> Result<Value, AdapterError> {
    bro_adapter_sdk::json::parse(body, READS)
}

/// Whether `text` is `n` ASCII digits.
pub fn is_digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// A CPR number as ten digits (the SDK's [`cpr::normalise`]) with a day
/// 01–31 and a month 01–12 first, as bro accepts it.
pub fn normalise_cpr(text: &str) -> Option<String> {
    cpr::normalise(text).filter(|digits| cpr::is_dated(digits))
}

/// Whether `text` is a replacement CPR number as bro accepts it: ten ASCII letters or digits.
pub fn is_replacement_cpr(text: &str) -> bool {
    text.len() == 10 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A FHIR code, id or reference from the message, quoted for an error by
/// the SDK's [`bro_adapter_sdk::echo::quoted_code`]; `#` counts as a code's
/// character, since a contained resource is referenced as `#id`.
pub fn quoted(text: &str) -> String {
    bro_adapter_sdk::echo::quoted_code(text, &['-', '_', '.', ':', '/', '+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_v2_is_refused_naming_fhir_json() {
        let refused = parse(b"MSH|^~\\&|");
        assert!(
            matches!(refused, Err(AdapterError::Unsupported(t)) if t.ends_with(READS) && t.starts_with("a message"))
        );
    }

    #[test]
    fn cpr_numbers_and_codes() {
        assert_eq!(normalise_cpr("220792-1238").as_deref(), Some("2207921238"));
        assert_eq!(normalise_cpr("3213921238"), None);
        assert_eq!(normalise_cpr("22079212381"), None);
        assert!(is_replacement_cpr("0101A90X12") && !is_replacement_cpr("0101-90X12"));
        assert_eq!(quoted("noshow"), "\"noshow\"");
        assert_eq!(quoted("Patient/2207921238"), "\"Patient/…\"");
        assert_eq!(quoted("#pat"), "\"#pat\"");
        assert_eq!(quoted("Mette Testesen"), "(a value that is not a code)");
    }
}
