//! Reading the Momentum JSON document field by field with the SDK's
//! [`bro_adapter_sdk::json`] (each refusal naming its field by JSON
//! pointer), and the checks of its own that reading and writing share
//! (tags, digits, codes quoted for an error).

use bro_adapter_sdk::AdapterError;
pub use bro_adapter_sdk::json::{Obj, pointer};
use serde_json::Value;

/// What the adapter reads, for the refusal of another format.
const READS: &str = "the jobcenter adapter reads the Momentum citizen document (JSON)";

/// Parses the body: empty → malformed; not JSON by its first byte → unsupported.
pub fn parse(body: &[u8]) -> Result<Value, AdapterError> {
    bro_adapter_sdk::json::parse(body, READS)
}

/// Whether `text` is a tag: 1 to 63 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn is_tag(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `text` is `n` ASCII digits.
pub fn is_digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// A code from the document (an activity type, a status, a reference)
/// quoted for an error by the SDK's [`bro_adapter_sdk::echo::quoted_code`],
/// with the punctuation of Momentum's codes and ids.
pub fn quoted(text: &str) -> String {
    bro_adapter_sdk::echo::quoted_code(text, &['-', '_', '.', ':', '/', '+'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_refused_naming_the_document_read() {
        let refused = parse(b"<citizen/>");
        let expected = "XML; the jobcenter adapter reads the Momentum citizen document (JSON)";
        assert!(matches!(refused, Err(AdapterError::Unsupported(t)) if t == expected));
    }

    #[test]
    fn tags_and_quoting() {
        assert!(is_tag("full-time") && !is_tag("Full-time") && !is_tag("-x") && !is_tag("fuldtid ") && !is_tag(""));
        assert_eq!(quoted("løntilskud"), "\"løntilskud\"");
        assert_eq!(quoted("x0507880000"), "\"x…\"");
        assert_eq!(quoted("Mette Testesen"), "(a value that is not a code)");
        assert_eq!(quoted("plan#1"), "(a value that is not a code)");
    }
}
