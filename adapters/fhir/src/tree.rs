//! A FHIR JSON value built in the order it is written: FHIR's element order
//! (`resourceType` and `id` first) makes a written resource readable, and a
//! fixed order makes the same batch give byte-identical output. Empty
//! strings, objects and lists are left out, as FHIR requires.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A value: a string, a boolean, an object or a list.
pub enum J {
    /// A string (code, uri, dateTime…).
    S(String),
    /// A boolean.
    B(bool),
    /// An object.
    O(Obj),
    /// A list.
    A(Vec<J>),
}

/// A JSON object whose members keep the order they were added in.
#[derive(Default)]
pub struct Obj(Vec<(&'static str, J)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Obj::default()
    }

    /// A resource: `resourceType` and `id`.
    pub fn resource(resource_type: &str, id: &str) -> Self {
        Obj::new().s("resourceType", resource_type).s("id", id)
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a string (left out when empty).
    pub fn s(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((key, J::S(value)));
        }
        self
    }

    /// Adds a boolean.
    pub fn b(mut self, key: &'static str, value: bool) -> Self {
        self.0.push((key, J::B(value)));
        self
    }

    /// Adds an object (left out when empty).
    pub fn o(mut self, key: &'static str, value: Obj) -> Self {
        if !value.is_empty() {
            self.0.push((key, J::O(value)));
        }
        self
    }

    /// Adds a list of objects (left out when empty; empty objects dropped).
    pub fn list(mut self, key: &'static str, values: Vec<Obj>) -> Self {
        let values: Vec<J> = values.into_iter().filter(|v| !v.is_empty()).map(J::O).collect();
        if !values.is_empty() {
            self.0.push((key, J::A(values)));
        }
        self
    }

    /// Adds a list of strings (left out when empty; empty strings dropped).
    pub fn strings(mut self, key: &'static str, values: Vec<String>) -> Self {
        let values: Vec<J> = values.into_iter().filter(|v| !v.is_empty()).map(J::S).collect();
        if !values.is_empty() {
            self.0.push((key, J::A(values)));
        }
        self
    }

    /// The object as pretty-printed JSON with a final line break.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = serde_json::to_vec_pretty(self)?;
        out.push(b'\n');
        Ok(out)
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            J::S(s) => serializer.serialize_str(s),
            J::B(b) => serializer.serialize_bool(*b),
            J::O(o) => o.serialize(serializer),
            J::A(list) => {
                let mut seq = serializer.serialize_seq(Some(list.len()))?;
                for v in list {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_order_and_empties_are_left_out() {
        let o = Obj::resource("Patient", "p1")
            .s("gender", "")
            .o("meta", Obj::new())
            .list("name", vec![Obj::new().s("text", "A"), Obj::new()])
            .b("active", true);
        let text = String::from_utf8(o.to_json().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            text,
            "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"p1\",\n  \"name\": [\n    {\n      \"text\": \"A\"\n    }\n  ],\n  \"active\": true\n}\n"
        );
    }
}
