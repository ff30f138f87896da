//! XML in and out: the body as UTF-8 text, parsing with `roxmltree` (no DTD,
//! so no entity can expand), namespaced element lookups, text, echoing input
//! safely in errors, and escaping on the way out.

use bro_adapter_sdk::{AdapterError, malformed};
use roxmltree::Node;

/// 1-based line and column of byte offset `at`.
pub fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

/// The body as text: UTF-8, with or without a byte order mark. A declaration
/// naming another encoding is refused (a Haendelsesbesked is UTF-8).
pub fn decode(body: &[u8]) -> Result<&str, AdapterError> {
    let (offset, bytes) = match body.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (3, rest),
        None => (0, body),
    };
    if let Some(label) = declared_encoding(bytes)
        && !label.eq_ignore_ascii_case("utf-8")
        && !label.eq_ignore_ascii_case("utf8")
    {
        return Err(malformed("1:1", format!("encoding {:?}; a Haendelsesbesked is UTF-8", echo(&label, 40))));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(body, e.valid_up_to() + offset);
        malformed(format!("{line}:{column}"), "not UTF-8")
    })
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>`, if any.
fn declared_encoding(body: &[u8]) -> Option<String> {
    if !body.starts_with(b"<?xml") {
        return None;
    }
    let end = body.windows(2).take(256).position(|w| w == b"?>")?;
    let decl = String::from_utf8_lossy(body.get(..end)?).into_owned();
    let at = decl.find("encoding")?;
    let rest = decl.get(at + "encoding".len()..)?.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest.get(1..)?;
    value.get(..value.find(quote)?).map(str::to_owned)
}

/// Parses XML text. A DTD is refused: a Haendelsesbesked has none, and
/// without one no entity can expand (no billion laughs, no external entities).
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, AdapterError> {
    let options = roxmltree::ParsingOptions { allow_dtd: false, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| {
        if matches!(e, roxmltree::Error::DtdDetected) {
            // roxmltree gives no position for this one: point at the declaration.
            let at = text.find("<!DOCTYPE").unwrap_or_default();
            let (line, column) = line_column(text.as_bytes(), at);
            return malformed(
                format!("{line}:{column}"),
                "not well-formed XML: a DTD is not allowed in a Haendelsesbesked",
            );
        }
        let pos = e.pos();
        // roxmltree's text ends with " at L:C"; the location is reported apart.
        let full = e.to_string();
        let suffix = format!(" at {}:{}", pos.row, pos.col);
        let description = full.strip_suffix(&suffix).map(str::to_owned).unwrap_or(full);
        malformed(format!("{}:{}", pos.row, pos.col), format!("not well-formed XML: {description}"))
    })
}

/// The child elements of `node` named `name` in namespace `ns`.
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
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

/// Escapes text for element content. Line breaks and tabs stay as they are
/// (element content keeps them); characters XML 1.0 cannot carry become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn escaping_keeps_text_and_refuses_what_xml_cannot_carry() {
        assert_eq!(escape("a<b>&\"c\"\nd\r"), "a&lt;b&gt;&amp;\"c\"\nd&#13;");
        assert_eq!(escape("x\u{1}y"), "x\u{FFFD}y");
    }
}
