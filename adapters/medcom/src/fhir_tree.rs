//! A FHIR resource as a small tree, written once and rendered as FHIR XML or
//! FHIR JSON, so both forms of a written message carry the same content.
//!
//! The tree knows what the two forms need and a schema would otherwise tell:
//! which fields are lists (JSON arrays), which object is a resource (JSON
//! `resourceType`, an XML wrapper element), an extension's `url` (an XML
//! attribute) and narrative XHTML (an element in XML, a string in JSON).
//! Fields are rendered in the order they were added, which the writer keeps
//! to FHIR's element order, as XML requires.

use bro_adapter_sdk::xml::{XmlWriter, escape_attribute};

/// The FHIR namespace.
pub const FHIR_NS: &str = "http://hl7.org/fhir";

/// The XHTML namespace of a narrative.
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// A value: a primitive, an object, or a narrative.
pub enum V {
    /// A primitive (code, string, uri, dateTime, base64Binary…).
    S(String),
    /// A complex element or a resource.
    O(Obj),
    /// A narrative: one paragraph of text in an XHTML `div`.
    Narrative(String),
}

/// A complex element or, with `resource_type`, a resource.
#[derive(Default)]
pub struct Obj {
    resource_type: Option<&'static str>,
    url: Option<String>,
    fields: Vec<(&'static str, Vec<V>, bool)>,
}

impl Obj {
    /// An empty complex element.
    pub fn new() -> Self {
        Obj::default()
    }

    /// An empty resource of `resource_type`.
    pub fn resource(resource_type: &'static str) -> Self {
        Obj { resource_type: Some(resource_type), ..Obj::default() }
    }

    /// An extension with `url`.
    pub fn extension(url: &str) -> Self {
        Obj { url: Some(url.to_owned()), ..Obj::default() }
    }

    /// Adds a primitive field (skipped when empty).
    pub fn s(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.fields.push((name, vec![V::S(value)], false));
        }
        self
    }

    /// Adds a single object field (skipped when it is an empty element).
    pub fn o(mut self, name: &'static str, value: Obj) -> Self {
        if !value.fields.is_empty() || value.url.is_some() || value.resource_type.is_some() {
            self.fields.push((name, vec![V::O(value)], false));
        }
        self
    }

    /// Adds a list field of objects (skipped when empty).
    pub fn list(mut self, name: &'static str, values: Vec<Obj>) -> Self {
        if !values.is_empty() {
            self.fields.push((name, values.into_iter().map(V::O).collect(), true));
        }
        self
    }

    /// Adds a list field of primitives (skipped when empty).
    pub fn strings(mut self, name: &'static str, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.fields.push((name, values.into_iter().map(V::S).collect(), true));
        }
        self
    }

    /// Adds a narrative (one paragraph of text) as the field `div`.
    pub fn narrative(mut self, text: &str) -> Self {
        self.fields.push(("div", vec![V::Narrative(text.to_owned())], false));
        self
    }

    /// Renders the tree as FHIR JSON, indented by two spaces.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        json_obj(self, 0, &mut out);
        out.push('\n');
        out
    }

    /// Renders the tree (a resource) as FHIR XML in UTF-8, indented by two
    /// spaces, with the SDK's `quick-xml` writer.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.declaration("UTF-8");
        w.newline(0);
        let name = self.resource_type.unwrap_or("Bundle");
        w.start(name, &[("xmlns", FHIR_NS)]);
        xml_fields(self, 1, &mut w);
        w.newline(0);
        w.end(name);
        w.finish() + "\n"
    }
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn json_str(text: &str, out: &mut String) {
    // serde_json escapes exactly as JSON requires; a string cannot fail to serialise.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned()));
}

fn json_value(v: &V, depth: usize, out: &mut String) {
    match v {
        V::S(s) => json_str(s, out),
        V::Narrative(text) => {
            let mut w = XmlWriter::new();
            narrative_div(text, &mut w);
            json_str(&w.finish(), out);
        }
        V::O(o) => json_obj(o, depth, out),
    }
}

/// `<div xmlns="…xhtml"><p>text</p></div>`. The text is escaped as an
/// attribute value is (line breaks as character references), so a narrative
/// reads the same in FHIR XML and in the XHTML string of FHIR JSON.
fn narrative_div(text: &str, w: &mut XmlWriter) {
    w.start("div", &[("xmlns", XHTML_NS)]);
    w.start("p", &[]);
    w.escaped(&escape_attribute(text));
    w.end("p");
    w.end("div");
}

fn json_obj(o: &Obj, depth: usize, out: &mut String) {
    out.push('{');
    let mut first = true;
    let mut key = |name: &str, out: &mut String| {
        out.push_str(if first { "\n" } else { ",\n" });
        first = false;
        indent(depth + 1, out);
        json_str(name, out);
        out.push_str(": ");
    };
    if let Some(t) = o.resource_type {
        key("resourceType", out);
        json_str(t, out);
    }
    if let Some(url) = &o.url {
        key("url", out);
        json_str(url, out);
    }
    for (name, values, list) in &o.fields {
        key(name, out);
        if *list {
            out.push('[');
            for (j, v) in values.iter().enumerate() {
                out.push_str(if j == 0 { "\n" } else { ",\n" });
                indent(depth + 2, out);
                json_value(v, depth + 2, out);
            }
            out.push('\n');
            indent(depth + 1, out);
            out.push(']');
        } else if let Some(v) = values.first() {
            json_value(v, depth + 1, out);
        }
    }
    out.push('\n');
    indent(depth, out);
    out.push('}');
}

fn xml_fields(o: &Obj, depth: usize, w: &mut XmlWriter) {
    for (name, values, _) in &o.fields {
        for v in values {
            w.newline(depth);
            match v {
                V::S(s) => w.empty(name, &[("value", s)]),
                V::Narrative(text) => narrative_div(text, w),
                V::O(child) => match child.resource_type {
                    // A contained resource: <resource><Patient>…</Patient></resource>.
                    Some(t) => {
                        w.start(name, &[]);
                        w.newline(depth + 1);
                        w.start(t, &[]);
                        xml_fields(child, depth + 2, w);
                        w.newline(depth + 1);
                        w.end(t);
                        w.newline(depth);
                        w.end(name);
                    }
                    None => {
                        match &child.url {
                            Some(url) => w.start(name, &[("url", url)]),
                            None => w.start(name, &[]),
                        }
                        xml_fields(child, depth + 1, w);
                        w.newline(depth);
                        w.end(name);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Obj {
        Obj::resource("Bundle").s("id", "b1").s("type", "message").list(
            "entry",
            vec![
                Obj::new().s("fullUrl", "urn:uuid:1").o(
                    "resource",
                    Obj::resource("Patient")
                        .s("id", "p1")
                        .list("extension", vec![Obj::extension("http://x").s("valueString", "a\nb")])
                        .o("text", Obj::new().s("status", "generated").narrative("P"))
                        .strings("given", vec!["Æ".into()]),
                ),
            ],
        )
    }

    #[test]
    fn json_has_resource_types_first_and_arrays_for_lists() {
        let json = sample().to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(v["resourceType"], "Bundle");
        assert_eq!(v["entry"][0]["resource"]["resourceType"], "Patient");
        assert_eq!(v["entry"][0]["resource"]["extension"][0]["url"], "http://x");
        assert_eq!(v["entry"][0]["resource"]["extension"][0]["valueString"], "a\nb");
        assert_eq!(v["entry"][0]["resource"]["given"][0], "Æ");
        assert!(json.starts_with("{\n  \"resourceType\": \"Bundle\",\n  \"id\": \"b1\""));
    }

    #[test]
    fn xml_wraps_resources_and_puts_urls_in_attributes() {
        let xml = sample().to_xml();
        assert!(xml.contains("<Bundle xmlns=\"http://hl7.org/fhir\">"));
        assert!(xml.contains("<resource>\n      <Patient>"));
        assert!(xml.contains("<extension url=\"http://x\">\n          <valueString value=\"a&#10;b\"/>"));
        assert!(xml.contains("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>P</p></div>"));
        let doc = bro_adapter_sdk::xml::parse(&xml, &bro_adapter_sdk::xml::CAPS, "a test");
        assert!(doc.is_ok());
    }
}
