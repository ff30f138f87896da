//! Strict reading of JSON values: every field checked for presence, kind and
//! spelling, every error naming its path.

use bro_domain::{Date, truncate};
use serde_json::{Map, Value};

use super::ScenarioError;

/// Longest text quoted back in an error message.
const QUOTE_MAX: usize = 80;

/// A value shortened for quoting in an error message.
pub(super) fn quote(text: &str) -> String {
    if text.len() > QUOTE_MAX { format!("{}…", truncate(text, QUOTE_MAX)) } else { text.to_owned() }
}

/// The kind of a JSON value, for "expected a string, found a number".
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of a JSON object at `path`, checked against the allowed names.
pub(super) struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object whose fields are all in `allowed`; the
    /// first other field is an error naming it.
    pub fn new(value: &'a Value, path: &str, allowed: &[&str]) -> Result<Self, ScenarioError> {
        let Value::Object(map) = value else {
            let at = if path.is_empty() { "the scenario" } else { path };
            return Err(ScenarioError::invalid(at, format!("expected an object, found {}", kind_of(value))));
        };
        let fields = Fields { path: path.to_owned(), map };
        if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(ScenarioError::UnknownField {
                path: fields.path_of(&quote(unknown)),
                expected: allowed.join(", "),
            });
        }
        Ok(fields)
    }

    /// The path of field `name`.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    /// Field `name`, if present.
    pub fn optional(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// Field `name`, which must be present.
    pub fn required(&self, name: &str) -> Result<&'a Value, ScenarioError> {
        self.optional(name).ok_or_else(|| ScenarioError::MissingField { path: self.path_of(name) })
    }

    /// Field `name` as a required string.
    pub fn string(&self, name: &str) -> Result<&'a str, ScenarioError> {
        as_str(self.required(name)?, &self.path_of(name))
    }

    /// Field `name` as an optional string.
    pub fn optional_string(&self, name: &str) -> Result<Option<&'a str>, ScenarioError> {
        self.optional(name).map(|value| as_str(value, &self.path_of(name))).transpose()
    }

    /// Field `name` as a required boolean.
    pub fn boolean(&self, name: &str) -> Result<bool, ScenarioError> {
        let path = self.path_of(name);
        match self.required(name)? {
            Value::Bool(flag) => Ok(*flag),
            other => Err(ScenarioError::invalid(&path, format!("expected true or false, found {}", kind_of(other)))),
        }
    }

    /// Field `name` as a required date.
    pub fn date(&self, name: &str) -> Result<Date, ScenarioError> {
        parse_date(self.string(name)?, &self.path_of(name))
    }

    /// Field `name` as an optional date.
    pub fn optional_date(&self, name: &str) -> Result<Option<Date>, ScenarioError> {
        let path = self.path_of(name);
        self.optional_string(name)?.map(|text| parse_date(text, &path)).transpose()
    }

    /// Field `name` as one of `choices`, named `what` in errors (e.g.
    /// `unknown legal basis "bl99" (expected bl46, bl47, lbu14)`).
    pub fn choice<T: Copy>(&self, name: &str, what: &str, choices: &[(&str, T)]) -> Result<T, ScenarioError> {
        let text = self.string(name)?;
        choose(text, &self.path_of(name), what, choices)
    }
}

/// `text` as one of `choices`.
pub(super) fn choose<T: Copy>(text: &str, path: &str, what: &str, choices: &[(&str, T)]) -> Result<T, ScenarioError> {
    choices.iter().find(|(name, _)| *name == text).map(|(_, value)| *value).ok_or_else(|| {
        let expected: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        ScenarioError::invalid(path, format!("unknown {what} {:?} (expected {})", quote(text), expected.join(", ")))
    })
}

/// `value` as a string.
pub(super) fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, ScenarioError> {
    value.as_str().ok_or_else(|| ScenarioError::invalid(path, format!("expected a string, found {}", kind_of(value))))
}

/// `value` as an array.
pub(super) fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], ScenarioError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(ScenarioError::invalid(path, format!("expected an array, found {}", kind_of(other)))),
    }
}

/// A strict `YYYY-MM-DD` date (four-digit year, two-digit month and day).
pub(super) fn parse_date(text: &str, path: &str) -> Result<Date, ScenarioError> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(
            |(at, byte)| {
                if at == 4 || at == 7 { byte == b'-' } else { byte.is_ascii_digit() }
            },
        );
    let date = if shaped { Date::parse_from_str(text, "%Y-%m-%d").ok() } else { None };
    date.ok_or_else(|| ScenarioError::invalid(path, format!("{:?} is not a date (YYYY-MM-DD)", quote(text))))
}
