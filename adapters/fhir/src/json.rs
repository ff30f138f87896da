//! Reading FHIR JSON field by field, each refusal naming its field by JSON
//! pointer (RFC 6901): the body sniffed and parsed (serde_json refuses
//! nesting deeper than 128), typed getters on objects with caps on text
//! sizes and list lengths, and the checks shared by reading and writing.

use bro_adapter_sdk::{AdapterError, invalid, malformed};
use serde_json::{Map, Value};

/// Longest free text (names, titles, reasons), in bytes, as bro accepts it.
pub const MAX_TEXT: usize = 4096;
/// Most entries in a list (participants, identifiers, contained resources…).
pub const MAX_LIST: usize = 200;

/// Parses the body: empty → malformed; not JSON by its first byte → unsupported.
pub fn parse(body: &[u8]) -> Result<Value, AdapterError> {
    let unmarked = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match unmarked.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(malformed("1:1", "the message body is empty")),
        Some(b'{' | b'[') => {}
        Some(b'<') => {
            return Err(AdapterError::Unsupported(
                "XML; the fhir adapter reads FHIR R4 JSON (a Bundle of Appointments, or one Appointment)".into(),
            ));
        }
        Some(_) => {
            return Err(AdapterError::Unsupported(
                "a message that is not JSON; the fhir adapter reads FHIR R4 JSON (a Bundle of Appointments, or one Appointment)"
                    .into(),
            ));
        }
    }
    serde_json::from_slice(unmarked).map_err(|e| {
        // serde_json's text ends with " at line L column C"; the location is reported apart.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let text = full.strip_suffix(&suffix).unwrap_or(&full);
        malformed(format!("{}:{}", e.line(), e.column().max(1)), format!("not JSON: {text}"))
    })
}

/// A JSON pointer: `parent` and one more reference token, escaped.
pub fn pointer(parent: &str, token: &str) -> String {
    format!("{parent}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// What kind of JSON value `v` is, for an error.
pub fn kind(v: &Value) -> &'static str {
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
#[derive(Clone)]
pub struct Obj<'a> {
    /// Its members.
    pub map: &'a Map<String, Value>,
    /// Its pointer (`""` for the root).
    pub at: String,
}

impl<'a> Obj<'a> {
    /// The object `v` at pointer `at`, or a refusal there.
    pub fn at(v: &'a Value, at: String) -> Result<Obj<'a>, AdapterError> {
        match v {
            Value::Object(map) => Ok(Obj { map, at }),
            v => Err(invalid(at, format!("is {}, not an object", kind(v)))),
        }
    }

    /// The member `key`, absent when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The pointer of member `key`.
    pub fn ptr(&self, key: &str) -> String {
        pointer(&self.at, key)
    }

    /// An optional string of at most [`MAX_TEXT`] bytes; empty is absent.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, AdapterError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() > MAX_TEXT => {
                Err(invalid(self.ptr(key), format!("is {} bytes long; at most {MAX_TEXT} are allowed", s.len())))
            }
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not a string", kind(v)))),
        }
    }

    /// An optional string, empty when absent.
    pub fn text(&self, key: &str) -> Result<String, AdapterError> {
        Ok(self.str(key)?.unwrap_or_default().to_owned())
    }

    /// A required, non-empty string.
    pub fn required(&self, key: &str) -> Result<&'a str, AdapterError> {
        self.str(key)?.ok_or_else(|| invalid(self.ptr(key), "is required"))
    }

    /// An optional object.
    pub fn object(&self, key: &str) -> Result<Option<Obj<'a>>, AdapterError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::at(v, self.ptr(key)).map(Some),
        }
    }

    /// An optional array of at most [`MAX_LIST`] entries, empty when absent.
    pub fn array(&self, key: &str) -> Result<&'a [Value], AdapterError> {
        self.array_of(key, MAX_LIST)
    }

    /// An optional array of at most `max` entries, empty when absent.
    pub fn array_of(&self, key: &str, max: usize) -> Result<&'a [Value], AdapterError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) if a.len() > max => {
                Err(invalid(self.ptr(key), format!("has {} entries; at most {max} are allowed", a.len())))
            }
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(v) => Err(invalid(self.ptr(key), format!("is {}, not an array", kind(v)))),
        }
    }

    /// An optional array of objects, each with its pointer.
    pub fn objects(&self, key: &str) -> Result<Vec<Obj<'a>>, AdapterError> {
        let at = self.ptr(key);
        self.array(key)?.iter().enumerate().map(|(i, v)| Obj::at(v, pointer(&at, &i.to_string()))).collect()
    }

    /// The first object of an optional array.
    pub fn first(&self, key: &str) -> Result<Option<Obj<'a>>, AdapterError> {
        Ok(self.objects(key)?.into_iter().next())
    }
}

/// Whether `text` is an id another system assigned: 1 to 200 printable
/// ASCII characters, no spaces (as bro accepts appointment and message ids).
pub fn is_external_id(text: &str) -> bool {
    (1..=200).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `text` is `n` ASCII digits.
pub fn is_digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// A CPR number as ten digits: trimmed, one hyphen after the date allowed,
/// a day 01–31 and a month 01–12 first (as bro accepts it; modulus 11 is
/// not checked, since numbers issued since 2007 need not pass it).
pub fn normalise_cpr(text: &str) -> Option<String> {
    let text = text.trim();
    let digits: String = match text.split_once('-') {
        Some((date, serial)) if date.len() == 6 && serial.len() == 4 => format!("{date}{serial}"),
        Some(_) => return None,
        None => text.to_owned(),
    };
    let two = |i: usize| digits.get(i..i + 2).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let dated = (1..=31).contains(&two(0)) && (1..=12).contains(&two(2));
    (is_digits(&digits, 10) && dated).then_some(digits)
}

/// Whether `text` is a replacement CPR number as bro accepts it: ten ASCII letters or digits.
pub fn is_replacement_cpr(text: &str) -> bool {
    text.len() == 10 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A code from the input, quoted for an error — or a note instead when it
/// does not look like a code (a name typed into a code field must not reach
/// an error message); runs of six or more digits are masked.
pub fn quoted(text: &str) -> String {
    let code_like = !text.is_empty()
        && text.chars().count() <= 60
        && text.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '+' | '#'));
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
        assert_eq!(pointer("/entry/0", "resource"), "/entry/0/resource");
        assert_eq!(pointer("", "a/b~c"), "/a~1b~0c");
    }

    #[test]
    fn sniffing_and_parse_errors() {
        assert!(matches!(parse(b""), Err(AdapterError::Malformed(m)) if m.location == "1:1"));
        assert!(matches!(parse(b"<Bundle xmlns=\"http://hl7.org/fhir\"/>"), Err(AdapterError::Unsupported(_))));
        let e = parse(b"{\n  \"a\": [1,\n}");
        assert!(
            matches!(&e, Err(AdapterError::Malformed(m)) if m.location == "3:1" && !m.description.contains("line"))
        );
        assert!(parse(b"\xef\xbb\xbf {}").is_ok());
    }

    #[test]
    fn cpr_numbers_and_codes() {
        assert_eq!(normalise_cpr("220792-1238").as_deref(), Some("2207921238"));
        assert_eq!(normalise_cpr("3213921238"), None);
        assert_eq!(normalise_cpr("22079212381"), None);
        assert!(is_replacement_cpr("0101A90X12") && !is_replacement_cpr("0101-90X12"));
        assert_eq!(quoted("noshow"), "\"noshow\"");
        assert_eq!(quoted("Patient/2207921238"), "\"Patient/…\"");
        assert_eq!(quoted("Mette Testesen"), "(a value that is not a code)");
    }
}
