//! Reading a JSON message field by field, each refusal naming its field by
//! JSON pointer (RFC 6901): the body sniffed, scanned against the caps
//! ([`Caps`]: size, depth, number of values) before any tree is built, and
//! parsed; typed getters on objects with bro's caps on text sizes and list
//! lengths.
//!
//! ```ignore
//! let root = json::parse(body, "the acme adapter reads the Acme journal (JSON)")?;
//! let doc = json::Obj::at(&root, String::new())?;
//! let title = doc.required("title")?; // or invalid("/title", "is required")
//! ```

use serde_json::{Map, Value};

use crate::{AdapterError, invalid, malformed};

/// Longest free text (names, titles, reasons), in bytes, as bro accepts it.
pub const MAX_TEXT: usize = 4096;
/// Most entries in a list, as bro accepts it.
pub const MAX_LIST: usize = 200;

/// Limits on a JSON message, checked by a scan before it is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Largest message, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Most values (objects, arrays, strings, numbers, literals, keys) in all.
    pub max_values: usize,
}

/// The caps bro's reference adapters read JSON under.
pub const CAPS: Caps = Caps { max_bytes: 16 << 20, max_depth: 64, max_values: 200_000 };

fn position(body: &[u8], at: usize) -> String {
    let before = body.get(..at).unwrap_or(body);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    format!("{line}:{column}")
}

/// Refuses a body over `caps`, naming the cap, without building anything:
/// one pass over the bytes counting values and nesting (strings skipped
/// with their escapes). Syntax is left to the parser.
pub fn within_caps(body: &[u8], caps: &Caps) -> Result<(), AdapterError> {
    if body.len() > caps.max_bytes {
        return Err(malformed(
            "1:1",
            format!(
                "the message is {} KiB; bro reads JSON up to {} KiB (cap: size)",
                body.len() >> 10,
                caps.max_bytes >> 10
            ),
        ));
    }
    let (mut depth, mut values, mut i) = (0usize, 0usize, 0usize);
    while i < body.len() {
        let start = i;
        match body[i] {
            b'"' => {
                values += 1;
                i += 1;
                // To the closing quote, a whole run of plain bytes at a time.
                while let Some(at) = memchr::memchr2(b'"', b'\\', body.get(i..).unwrap_or_default()) {
                    i += at;
                    if body[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
                i = if i < body.len() && body[i] == b'"' { i + 1 } else { body.len() };
            }
            b'{' | b'[' => {
                values += 1;
                depth += 1;
                if depth > caps.max_depth {
                    return Err(malformed(
                        position(body, start),
                        format!(
                            "objects and arrays nest deeper than {} levels; bro reads JSON up to that depth (cap: depth)",
                            caps.max_depth
                        ),
                    ));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                values += 1;
                while i < body.len() && !matches!(body[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'"') {
                    i += 1;
                }
            }
        }
        if values > caps.max_values {
            return Err(malformed(
                position(body, start),
                format!(
                    "the message has more than {} thousand values; bro reads JSON up to that many (cap: values)",
                    caps.max_values / 1000
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a JSON body, a UTF-8 byte-order mark allowed: empty → malformed;
/// not JSON by its first byte → unsupported, saying what the adapter
/// `reads` (e.g. `the fhir adapter reads FHIR R4 JSON`); over the caps →
/// malformed, naming the cap; a syntax error → malformed at `line:column`.
pub fn parse(body: &[u8], reads: &str) -> Result<Value, AdapterError> {
    let unmarked = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    match unmarked.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(malformed("1:1", "the message body is empty")),
        Some(b'{' | b'[') => {}
        Some(b'<') => return Err(AdapterError::Unsupported(format!("XML; {reads}"))),
        Some(_) => return Err(AdapterError::Unsupported(format!("a message that is not JSON; {reads}"))),
    }
    within_caps(unmarked, &CAPS)?;
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

/// A JSON object and its pointer. A member that is `null` counts as absent.
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

    /// An optional finite number.
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

    /// An optional array of strings (of any length), empty when absent.
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

#[cfg(test)]
mod tests {
    use super::*;

    const READS: &str = "the test adapter reads JSON";

    #[test]
    fn pointers_escape_their_tokens() {
        assert_eq!(pointer("/entry/0", "resource"), "/entry/0/resource");
        assert_eq!(pointer("", "a/b~c"), "/a~1b~0c");
    }

    #[test]
    fn sniffing_and_parse_errors() {
        assert!(matches!(parse(b"", READS), Err(AdapterError::Malformed(m)) if m.location == "1:1"));
        assert!(matches!(parse(b" \n", READS), Err(AdapterError::Malformed(m)) if m.location == "1:1"));
        assert!(matches!(parse(b"<x/>", READS), Err(AdapterError::Unsupported(t)) if t == format!("XML; {READS}")));
        assert!(matches!(parse(b"x", READS), Err(AdapterError::Unsupported(t)) if t.ends_with(READS)));
        let e = parse(b"{\n  \"a\": [1,\n}", READS);
        assert!(
            matches!(&e, Err(AdapterError::Malformed(m)) if m.location == "3:1" && !m.description.contains("line"))
        );
        assert!(parse(b"\xef\xbb\xbf {}", READS).is_ok());
    }

    #[test]
    fn caps_refuse_a_bomb_before_it_is_parsed() {
        let caps = Caps { max_bytes: 10_000, max_depth: 4, max_values: 50 };
        assert!(within_caps(br#"{"a": [1, "x\"]", {"b": null}], "c": true}"#, &caps).is_ok());
        for unterminated in [&b"[\"abc"[..], b"[\"a\\", b"[\"a\\\""] {
            assert!(within_caps(unterminated, &caps).is_ok(), "syntax is the parser's to refuse");
        }
        let deep = within_caps(b"[[[[[1]]]]]", &caps);
        assert!(
            matches!(&deep, Err(AdapterError::Malformed(m)) if m.location == "1:5" && m.description.contains("(cap: depth)"))
        );
        let many = format!("[{}]", vec!["1"; 60].join(","));
        assert!(
            matches!(within_caps(many.as_bytes(), &caps), Err(AdapterError::Malformed(m)) if m.description.contains("(cap: values)"))
        );
        let strings = format!("[{}]", vec!["\"a,b]\""; 40].join(","));
        assert!(within_caps(strings.as_bytes(), &caps).is_ok(), "punctuation inside strings is not structure");
        let big = vec![b' '; 10_001];
        assert!(
            matches!(within_caps(&big, &caps), Err(AdapterError::Malformed(m)) if m.description.contains("(cap: size)"))
        );
        // The default caps: a 3.8 MB array of numbers is refused by its count, quickly.
        let bomb = format!("[{}]", vec!["1"; 1_900_000].join(","));
        assert!(
            matches!(parse(bomb.as_bytes(), READS), Err(AdapterError::Malformed(m)) if m.description.contains("200 thousand"))
        );
    }

    #[test]
    fn getters_check_types_and_caps() {
        let v =
            parse(br#"{"s": "x", "e": "", "n": null, "k": 2.5, "o": {"a": 1}, "l": [{}, 3], "t": ["a", 1]}"#, READS);
        let v = v.unwrap_or_default();
        let o = Obj::at(&v, String::new()).unwrap_or_else(|_| panic!("an object"));
        assert_eq!(o.str("s").ok(), Some(Some("x")));
        assert_eq!(
            (o.str("e").ok(), o.str("n").ok(), o.text("missing").ok()),
            (Some(None), Some(None), Some(String::new()))
        );
        assert!(matches!(o.required("e"), Err(AdapterError::Invalid(v)) if v[0].field == "/e"));
        assert!(matches!(o.str("k"), Err(AdapterError::Invalid(v)) if v[0].description == "is a number, not a string"));
        assert_eq!(o.number("k").ok(), Some(Some(2.5)));
        assert_eq!(o.object("o").ok().flatten().map(|p| p.ptr("a")).as_deref(), Some("/o/a"));
        assert!(matches!(o.objects("l"), Err(AdapterError::Invalid(v)) if v[0].field == "/l/1"));
        assert!(matches!(o.array_of("l", 1), Err(AdapterError::Invalid(v)) if v[0].description.starts_with("has 2")));
        assert!(matches!(o.strings("t"), Err(AdapterError::Invalid(v)) if v[0].field == "/t/1"));
        let long = Value::String("x".repeat(MAX_TEXT + 1));
        let mut map = Map::new();
        map.insert("s".into(), long);
        let o = Obj { map: &map, at: "/r".into() };
        assert!(matches!(o.str("s"), Err(AdapterError::Invalid(v)) if v[0].field == "/r/s"));
    }
}
