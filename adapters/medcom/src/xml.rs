//! XML text in and out: decoding a body by its BOM or XML declaration
//! (windows-1252, ISO-8859-1, UTF-8), parsing it with `roxmltree` (no DTD, so
//! no entity expansion), flattening text, and escaping on the way out.

use bro_adapter_sdk::{AdapterError, malformed};
use encoding_rs::{Encoding, UTF_8};

/// Decodes an XML body to text: a BOM wins, then the declaration's
/// `encoding`, then UTF-8.
pub fn decode(body: &[u8]) -> Result<String, AdapterError> {
    if let Some((encoding, bom)) = Encoding::for_bom(body) {
        let rest = body.get(bom..).unwrap_or_default();
        return decode_as(encoding, rest);
    }
    let encoding = match declared_encoding(body) {
        Some(label) => Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            malformed("1:1", format!("unknown encoding {:?} in the XML declaration", echo(&label, 40)))
        })?,
        None => UTF_8,
    };
    if !encoding.is_ascii_compatible() {
        // UTF-16 declared but no BOM: the declaration itself could not have been read.
        return Err(malformed("1:1", format!("{} without a byte order mark", encoding.name())));
    }
    decode_as(encoding, body)
}

fn decode_as(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, AdapterError> {
    if encoding == UTF_8 {
        return match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(e) => {
                let (line, column) = line_column(bytes, e.valid_up_to());
                Err(malformed(
                    format!("{line}:{column}"),
                    "not UTF-8 (and the XML declaration names no other encoding)",
                ))
            }
        };
    }
    // Single-byte encodings decode every byte; windows-1252 also serves ISO-8859-1.
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
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
    let close = value.find(quote)?;
    value.get(..close).map(str::to_owned)
}

/// 1-based line and column of byte offset `at`.
pub fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

/// Parses decoded XML text; a DTD is refused (MedCom messages have none, and
/// without one no entity can expand).
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, AdapterError> {
    let options = roxmltree::ParsingOptions { allow_dtd: false, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        let description = match e {
            roxmltree::Error::DtdDetected => "a DTD is not allowed in a MedCom message".to_owned(),
            other => {
                // roxmltree's text ends with " at L:C"; the location is reported apart.
                let full = other.to_string();
                let suffix = format!(" at {}:{}", pos.row, pos.col);
                full.strip_suffix(&suffix).map(str::to_owned).unwrap_or(full)
            }
        };
        malformed(format!("{}:{}", pos.row, pos.col), format!("not well-formed XML: {description}"))
    })
}

/// A value from the input, fit to echo in an error: at most `max` characters,
/// control characters dropped, runs of six or more digits (part of a CPR
/// number, perhaps) replaced by `…` — the SDK's.
pub use bro_adapter_sdk::echo::masked as echo;

/// Escapes text for XML element content and attribute values. Line breaks
/// and tabs become character references, so they survive attribute
/// normalisation; characters XML 1.0 cannot carry become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
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
    fn declared_encodings_are_honoured() {
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe6\xf8\xe5</a>";
        assert!(decode(latin).is_ok_and(|t| t.ends_with("<a>æøå</a>")));
        let cp = b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>";
        assert!(decode(cp).is_ok_and(|t| t.ends_with("<a>€</a>")));
        let utf8 = "<?xml version=\"1.0\"?><a>æ</a>".as_bytes();
        assert!(decode(utf8).is_ok_and(|t| t.ends_with("<a>æ</a>")));
        let bom = b"\xef\xbb\xbf<a>x</a>";
        assert!(decode(bom).is_ok_and(|t| t == "<a>x</a>"));
    }

    #[test]
    fn bad_bytes_and_unknown_encodings_are_malformed() {
        assert!(matches!(decode(b"<a>\xe6</a>"), Err(AdapterError::Malformed(m)) if m.location == "1:4"));
        assert!(matches!(decode(b"<?xml version='1.0' encoding='klingon'?><a/>"), Err(AdapterError::Malformed(_))));
        assert!(matches!(decode(b"<?xml version='1.0' encoding='UTF-16'?><a/>"), Err(AdapterError::Malformed(_))));
    }

    #[test]
    fn escaping_keeps_line_breaks_in_attributes() {
        assert_eq!(escape("a\"b\n<c>&'"), "a&quot;b&#10;&lt;c&gt;&amp;&apos;");
        assert_eq!(escape("x\u{1}y"), "x\u{FFFD}y");
    }
}
