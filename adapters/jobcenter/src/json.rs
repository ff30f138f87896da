//! Reading a JSON document field by field, each refusal naming its field by
//! JSON pointer (RFC 6901): the body sniffed and parsed, typed getters on
//! objects, and the checks shared by reading and writing (ids, tags, CPR).

use bro_adapter_sdk::{AdapterError, invalid, malformed};
use serde_json::{Map, Value};

/// Longest free text (names, titles, reasons), in bytes, as bro accepts it.
pub const MAX_TEXT: usize = 4096;
/// Most entries in a list (goals, activities, tags, meetings), as bro accepts it.
pub const MAX_LIST: usize = 200;

/// Parses the body: empty → malformed; not JSON by its first byte → unsupported.
pub fn parse(body: &[u8]) -> Result<Value, AdapterError> {
    let unmarked = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match unmarked.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(malformed("1:1", "the message body is empty")),
        Some(b'{' | b'[') => {}
        Some(b'<') => {
            return Err(AdapterError::Unsupported(
                "XML; the jobcenter adapter reads the Momentum citizen document (JSON)".into(),
            ));
        }
        Some(_) => {
            return Err(AdapterError::Unsupported(
                "a message that is not JSON; the jobcenter adapter reads the Momentum citizen document (JSON)".into(),
            ));
        }
    }
    serde_json::from_slice(unmarked).map_err(|e| {
        // serde_json's text ends with " at line L column C"; the location is reported apart.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let text = full.strip_suffix(&suffix).unwrap_or(&full);
        // serde_json counts a position just after a line break as column 0; columns here start at 1.
        malformed(format!("{}:{}", e.line(), e.column().max(1)), format!("not JSON: {text}"))
    })
}

/// A JSON pointer: `parent` and one more reference token, escaped.
pub fn pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// What kind of JSON value `v` is, for an error.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object and its pointer.
#[derive(Clone, Copy)]
pub struct Obj<'a, 'p> {
    /// Its members.
    pub map: &'a Map<String, Value>,
    /// Its pointer (`""` for the root).
    pub at: &'p str,
}

impl<'a> Obj<'a, '_> {
    /// The member `key`, absent when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The pointer of member `key`.
    pub fn ptr(&self, key: &str) -> String {
        pointer(self.at, key)
    }

    /// An optional string of at most [`MAX_TEXT`] bytes.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, AdapterError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() > MAX_TEXT => {
                Err(invalid(self.ptr(key), format!("is {} bytes long; at most {MAX_TEXT} are allowed", s.len())))
            }
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not a string", kind(v)))),
        }
    }

    /// An optional string, empty when absent.
    pub fn text(&self, key: &str) -> Result<String, AdapterError> {
        Ok(self.str(key)?.unwrap_or_default().to_owned())
    }

    /// A required, non-empty string.
    pub fn required(&self, key: &str) -> Result<&'a str, AdapterError> {
        self.str(key)?.filter(|s| !s.is_empty()).ok_or_else(|| invalid(self.ptr(key), "is required"))
    }

    /// An optional number.
    pub fn number(&self, key: &str) -> Result<Option<f64>, AdapterError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| invalid(self.ptr(key), "is not a finite number")),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not a number", kind(v)))),
        }
    }

    /// An optional object, with its pointer written into `at`.
    pub fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, AdapterError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not an object", kind(v)))),
        }
    }

    /// An optional array of at most [`MAX_LIST`] entries, empty when absent.
    pub fn array(&self, key: &str) -> Result<&'a [Value], AdapterError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) if a.len() > MAX_LIST => {
                Err(invalid(self.ptr(key), format!("has {} entries; at most {MAX_LIST} are allowed", a.len())))
            }
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not an array", kind(v)))),
        }
    }

    /// An optional array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>, AdapterError> {
        let mut out = Vec::new();
        for (i, v) in self.array(key)?.iter().enumerate() {
            match v {
                Value::String(s) => out.push(s.as_str()),
                v => {
                    return Err(invalid(
                        pointer(&self.ptr(key), &i.to_string()),
                        format!("is {}, not a string", kind(v)),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// The object at `v`, or a refusal at `at`.
pub fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, AdapterError> {
    v.as_object().ok_or_else(|| invalid(at, format!("is {}, not an object", kind(v))))
}

/// Whether `text` is an id another system assigned: 1 to 200 printable
/// ASCII characters, no spaces (as bro accepts plan, goal and meeting ids).
pub fn is_external_id(text: &str) -> bool {
    (1..=200).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `text` is a tag: 1 to 63 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn is_tag(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A CPR number as ten digits: trimmed, one hyphen after the date allowed.
pub fn normalise_cpr(text: &str) -> Option<String> {
    let text = text.trim();
    let digits: String = match text.split_once('-') {
        Some((date, serial)) if date.len() == 6 && serial.len() == 4 => format!("{date}{serial}"),
        Some(_) => return None,
        None => text.to_owned(),
    };
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Whether `text` is `n` ASCII digits.
pub fn is_digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// A code from the input, quoted for an error — or a note instead when it
/// does not look like a code (a name typed into a code field must not reach
/// an error message); runs of six or more digits are masked.
pub fn quoted(text: &str) -> String {
    let code_like = !text.is_empty()
        && text.chars().count() <= 60
        && text.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '+'));
    if !code_like {
        return "(a value that is not a code)".to_owned();
    }
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('"')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() >= 6 { "…" } else { &digits });
        digits.clear();
        out.push(c);
    }
    format!("\"{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_their_tokens() {
        assert_eq!(pointer("/plan", "goals"), "/plan/goals");
        assert_eq!(pointer("", "a/b~c"), "/a~1b~0c");
    }

    #[test]
    fn sniffing_and_parse_errors() {
        assert!(matches!(parse(b""), Err(AdapterError::Malformed(m)) if m.location == "1:1"));
        assert!(matches!(parse(b"<x/>"), Err(AdapterError::Unsupported(_))));
        let e = parse(b"{\n  \"a\": [1,\n}");
        assert!(
            matches!(&e, Err(AdapterError::Malformed(m)) if m.location == "3:1" && !m.description.contains("line"))
        );
        assert!(parse(b"\xef\xbb\xbf {}").is_ok());
    }

    #[test]
    fn ids_tags_and_quoting() {
        assert!(is_external_id("minplan-2026-1") && !is_external_id("min plan") && !is_external_id(""));
        assert!(is_tag("full-time") && !is_tag("Full-time") && !is_tag("-x") && !is_tag("fuldtid ") && !is_tag(""));
        assert_eq!(normalise_cpr("050788-0000").as_deref(), Some("0507880000"));
        assert_eq!(quoted("løntilskud"), "\"løntilskud\"");
        assert_eq!(quoted("x0507880000"), "\"x…\"");
        assert_eq!(quoted("Mette Testesen"), "(a value that is not a code)");
    }
}
