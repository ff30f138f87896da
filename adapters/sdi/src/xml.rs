//! XML in and out, on the SDK's `quick-xml` reader and writer: the body as
//! UTF-8 text, parsed under the SDK's caps with no DTD (so no entity can
//! expand), namespaced element lookups, text, and echoing input safely in
//! errors.

use bro_adapter_sdk::xml::{self as sdk_xml, CAPS, Document, Node};
use bro_adapter_sdk::{AdapterError, malformed};

/// The body as text: UTF-8, with or without a byte order mark. A declaration
/// naming another encoding is refused (a Haendelsesbesked is UTF-8).
pub fn decode(body: &[u8]) -> Result<&str, AdapterError> {
    let (offset, bytes) = match body.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (3, rest),
        None => (0, body),
    };
    if let Some(label) = sdk_xml::declared_encoding(bytes)
        && !label.eq_ignore_ascii_case("utf-8")
        && !label.eq_ignore_ascii_case("utf8")
    {
        return Err(malformed("1:1", format!("encoding {:?}; a Haendelsesbesked is UTF-8", echo(&label, 40))));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = sdk_xml::line_column(body, e.valid_up_to() + offset);
        malformed(format!("{line}:{column}"), "not UTF-8")
    })
}

/// Parses XML text under the SDK's caps. A DTD is refused: a
/// Haendelsesbesked has none, and without one no entity can expand (no
/// billion laughs, no external entities).
pub fn parse(text: &str) -> Result<Document<'_>, AdapterError> {
    sdk_xml::parse(text, &CAPS, "a Haendelsesbesked")
}

/// The child elements of `node` named `name` in namespace `ns`.
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name(ns, name))
}

/// The first child element of `node` named `name` in namespace `ns`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, ns: &'static str, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, ns, name).next()
}

/// The trimmed text of an element (all its text descendants), if not empty.
pub fn text(node: Node<'_, '_>) -> Option<String> {
    // descendants() walks without recursion, whatever the depth.
    let text: String = node.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A value from the input, fit to echo in an error: at most `max` characters,
/// control characters dropped, runs of six or more digits (part of a CPR
/// number, perhaps) replaced by `…` — the SDK's.
pub use bro_adapter_sdk::echo::masked as echo;

/// A code from the input, quoted for an error — or, when it does not look
/// like a code (spaces, markup, more than 60 characters), a note instead:
/// a name typed into a code field must not reach an error message.
pub fn quoted(text: &str) -> String {
    let code_like = !text.is_empty()
        && text.chars().count() <= 60
        && text.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
    if code_like { format!("{:?}", echo(text, 60)) } else { "(a value that is not a code)".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_or_without_a_bom_and_nothing_else() {
        assert_eq!(decode(b"\xef\xbb\xbf<a/>").ok(), Some("<a/>"));
        assert!(decode(b"<?xml version='1.0' encoding='UTF-8'?><a/>").is_ok_and(|t| t.ends_with("<a/>")));
        let latin = decode(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe6</a>");
        assert!(matches!(latin, Err(AdapterError::Malformed(m)) if m.description.contains("ISO-8859-1")));
        let bad = decode(b"<a>\n\xe6</a>");
        assert!(matches!(bad, Err(AdapterError::Malformed(m)) if m.location == "2:1"));
    }

    #[test]
    fn quoted_codes_never_carry_a_long_number() {
        assert_eq!(quoted("bl99"), "\"bl99\"");
        assert_eq!(quoted("share:x0101900000"), "\"share:x…\"");
        assert_eq!(quoted("Mette Testesen"), "(a value that is not a code)");
    }
}
