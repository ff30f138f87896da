//! XML in and out, on `quick-xml` (feature `xml`).
//!
//! Reading: [`decode`] turns a body into text by its byte-order mark or XML
//! declaration (UTF-8, or a single-byte encoding such as windows-1252 or
//! ISO-8859-1, through `encoding_rs`); [`parse`] streams it through
//! `quick-xml` into a compact tree, applying the caps ([`Caps`]: total
//! size, depth, node count, attributes per element) as the events arrive,
//! before the tree can grow past them. A DTD is refused (so no entity can
//! expand), as is any entity but the five predefined ones and character
//! references. The tree ([`Document`], [`Node`]) answers what adapters ask
//! of XML: names and namespaces, attributes, children, descendants, text.
//!
//! Writing: [`XmlWriter`] writes elements with `quick-xml`'s writer,
//! indentation under the adapter's control; [`escape_text`] and
//! [`escape_attribute`] are the one pair of escapers, on `quick-xml`'s.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8};
use quick_xml::escape::{escape, partial_escape};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::reader::Reader;

use crate::{AdapterError, malformed};

/// Limits on an XML message, checked while it streams in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Largest message text, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most nodes (elements, text runs and attributes) in all.
    pub max_nodes: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
}

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// The caps bro's reference adapters read XML under.
pub const CAPS: Caps = Caps { max_bytes: 16 << 20, max_depth: 64, max_nodes: 200_000, max_attributes: 64 };

/// 1-based line and column of byte offset `at`.
pub fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

fn at(bytes: &[u8], offset: usize) -> String {
    let (line, column) = line_column(bytes, offset);
    format!("{line}:{column}")
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>`, if any.
pub fn declared_encoding(body: &[u8]) -> Option<String> {
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

/// Decodes an XML body to text: a byte-order mark wins, then the
/// declaration's `encoding`, then UTF-8. UTF-8 without a byte-order mark is
/// borrowed, not copied.
pub fn decode(body: &[u8]) -> Result<Cow<'_, str>, AdapterError> {
    if let Some((encoding, bom)) = Encoding::for_bom(body) {
        return decode_as(encoding, body.get(bom..).unwrap_or_default(), bom);
    }
    let encoding = match declared_encoding(body) {
        Some(label) => Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            malformed("1:1", format!("unknown encoding {:?} in the XML declaration", crate::echo::masked(&label, 40)))
        })?,
        None => UTF_8,
    };
    if !encoding.is_ascii_compatible() {
        // UTF-16 declared but no BOM: the declaration itself could not have been read.
        return Err(malformed("1:1", format!("{} without a byte order mark", encoding.name())));
    }
    decode_as(encoding, body, 0)
}

fn decode_as<'b>(encoding: &'static Encoding, bytes: &'b [u8], offset: usize) -> Result<Cow<'b, str>, AdapterError> {
    if encoding == UTF_8 {
        return std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            let (line, column) = line_column(bytes, e.valid_up_to());
            let column = if line == 1 { column + offset } else { column };
            malformed(format!("{line}:{column}"), "not UTF-8 (and the XML declaration names no other encoding)")
        });
    }
    // Single-byte encodings decode every byte; windows-1252 also serves ISO-8859-1.
    let text = encoding.decode_without_bom_handling(bytes).0.into_owned();
    // The copy is made anyway: XML's end-of-line handling (CR LF and CR to
    // LF) done once here spares a copy of every text run in `parse`.
    Ok(Cow::Owned(if text.contains('\r') { text.replace("\r\n", "\n").replace('\r', "\n") } else { text }))
}

/// A parsed document: its nodes in document order, each element knowing
/// where its subtree ends.
#[derive(Debug)]
pub struct Document<'t> {
    nodes: Vec<NodeData<'t>>,
    attributes: Vec<AttributeData<'t>>,
    namespaces: Vec<String>,
}

#[derive(Debug)]
struct NodeData<'t> {
    kind: Kind<'t>,
    /// One past the last node of this node's subtree.
    end: usize,
}

#[derive(Debug)]
enum Kind<'t> {
    Element { name: Cow<'t, str>, namespace: Option<usize>, attributes: (usize, usize) },
    Text(Cow<'t, str>),
}

#[derive(Debug)]
struct AttributeData<'t> {
    name: Cow<'t, str>,
    namespace: Option<usize>,
    value: Cow<'t, str>,
}

/// A node of a [`Document`]: an element or a run of text.
#[derive(Clone, Copy, Debug)]
pub struct Node<'d, 't> {
    doc: &'d Document<'t>,
    id: usize,
}

/// An element's name: local part and namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpandedName<'d> {
    name: &'d str,
    namespace: Option<&'d str>,
}

impl<'d> ExpandedName<'d> {
    /// The local name.
    pub fn name(&self) -> &'d str {
        self.name
    }

    /// The namespace URI, if the name is in one.
    pub fn namespace(&self) -> Option<&'d str> {
        self.namespace
    }
}

impl<'t> Document<'t> {
    /// The root element.
    pub fn root_element(&self) -> Node<'_, 't> {
        Node { doc: self, id: 0 }
    }
}

impl<'d, 't> Node<'d, 't> {
    fn data(&self) -> &'d NodeData<'t> {
        &self.doc.nodes[self.id]
    }

    /// Whether this is an element.
    pub fn is_element(&self) -> bool {
        matches!(self.data().kind, Kind::Element { .. })
    }

    /// Whether this is a run of text.
    pub fn is_text(&self) -> bool {
        matches!(self.data().kind, Kind::Text(_))
    }

    /// The element's name (empty for text).
    pub fn tag_name(&self) -> ExpandedName<'d> {
        match &self.data().kind {
            Kind::Element { name, namespace, .. } => {
                ExpandedName { name: name.as_ref(), namespace: namespace.map(|n| self.doc.namespaces[n].as_str()) }
            }
            Kind::Text(_) => ExpandedName { name: "", namespace: None },
        }
    }

    /// Whether this is an element named `name` in namespace `namespace`.
    pub fn has_tag_name(&self, namespace: &str, name: &str) -> bool {
        let tag = self.tag_name();
        self.is_element() && tag.name == name && tag.namespace == Some(namespace)
    }

    /// The value of the attribute `name` (in no namespace).
    pub fn attribute(&self, name: &str) -> Option<&'d str> {
        let Kind::Element { attributes: (from, to), .. } = self.data().kind else { return None };
        self.doc.attributes[from..to].iter().find(|a| a.namespace.is_none() && a.name == name).map(|a| a.value.as_ref())
    }

    /// The text of a text node; of an element, its first child's if that is text.
    pub fn text(&self) -> Option<&'d str> {
        match &self.data().kind {
            Kind::Text(text) => Some(text.as_ref()),
            Kind::Element { .. } => self.children().next().and_then(|c| match &c.data().kind {
                Kind::Text(text) => Some(text.as_ref()),
                Kind::Element { .. } => None,
            }),
        }
    }

    /// The children, in order.
    pub fn children(&self) -> impl Iterator<Item = Node<'d, 't>> + use<'d, 't> {
        let (doc, end) = (self.doc, self.data().end);
        let mut next = self.id + 1;
        std::iter::from_fn(move || {
            (next < end).then(|| {
                let child = Node { doc, id: next };
                next = doc.nodes[next].end;
                child
            })
        })
    }

    /// This node and all below it, in document order.
    pub fn descendants(&self) -> impl Iterator<Item = Node<'d, 't>> + use<'d, 't> {
        let doc = self.doc;
        (self.id..self.data().end).map(move |id| Node { doc, id })
    }
}

/// The part of `input` that `part` is a slice of, with `input`'s lifetime
/// (so text and values need not be copied out of the events).
fn within<'t>(input: &'t str, part: &str) -> Option<&'t str> {
    let start = (part.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    input.get(start..start.checked_add(part.len())?)
}

fn keep<'t>(input: &'t str, value: Cow<'_, str>) -> Cow<'t, str> {
    match value {
        Cow::Borrowed(part) => within(input, part).map_or_else(|| Cow::Owned(part.to_owned()), Cow::Borrowed),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Builds the tree, enforcing the caps as events stream in.
struct Builder<'t> {
    input: &'t str,
    caps: Caps,
    doc: Document<'t>,
    open: Vec<usize>,
    /// For each open element, how many namespace bindings were in scope before it.
    scopes: Vec<usize>,
    /// Namespace declarations in scope, innermost last: prefix (`None` for
    /// the default namespace) and namespace (`None`: the default undeclared).
    bindings: Vec<(Option<Cow<'t, str>>, Option<usize>)>,
    /// The attributes of the start tag being read (kept for its allocation).
    pending: Vec<(Cow<'t, str>, Cow<'t, str>)>,
    text: Option<Cow<'t, str>>,
    root_closed: bool,
}

impl<'t> Builder<'t> {
    /// A name as a slice of the input (it always is one: names hold no references).
    fn name(&self, name: &str) -> Cow<'t, str> {
        keep(self.input, Cow::Borrowed(name))
    }

    /// The namespace bound to `prefix` (`None`: the default) where it is
    /// declared; `xml` is bound by the specification.
    fn resolve(&mut self, prefix: Option<&str>) -> Option<Option<usize>> {
        if let Some((_, namespace)) = self.bindings.iter().rev().find(|(p, _)| p.as_deref() == prefix) {
            return Some(*namespace);
        }
        (prefix == Some("xml")).then(|| Some(self.namespace(XML_NAMESPACE)))
    }

    fn namespace(&mut self, uri: &str) -> usize {
        // Most recently added first: a document's elements mostly share the last namespace declared.
        match self.doc.namespaces.iter().rposition(|n| n == uri) {
            Some(id) => id,
            None => {
                self.doc.namespaces.push(uri.to_owned());
                self.doc.namespaces.len() - 1
            }
        }
    }

    fn count(&self, offset: usize) -> Result<(), AdapterError> {
        let nodes = self.doc.nodes.len() + self.doc.attributes.len();
        if nodes > self.caps.max_nodes {
            return Err(malformed(
                at(self.input.as_bytes(), offset),
                format!(
                    "the message has more than {} nodes (elements, text and attributes); bro reads XML up to that many (cap: nodes)",
                    self.caps.max_nodes
                ),
            ));
        }
        Ok(())
    }

    /// Adds text to the current run (text, CDATA and references merge into one node).
    fn push_text(&mut self, piece: Cow<'t, str>, offset: usize) -> Result<(), AdapterError> {
        if self.open.is_empty() {
            if piece.trim().is_empty() {
                return Ok(());
            }
            return Err(malformed(
                at(self.input.as_bytes(), offset),
                "not well-formed XML: text outside the root element",
            ));
        }
        self.text = Some(match self.text.take() {
            None => piece,
            Some(run) => Cow::Owned(run.into_owned() + &piece),
        });
        Ok(())
    }

    fn flush_text(&mut self, offset: usize) -> Result<(), AdapterError> {
        if let Some(text) = self.text.take() {
            let id = self.doc.nodes.len();
            self.doc.nodes.push(NodeData { kind: Kind::Text(text), end: id + 1 });
            self.count(offset)?;
        }
        Ok(())
    }
}

/// Parses decoded XML text into a tree under `caps`. `what` names the
/// message in refusals (`a DTD is not allowed in a MedCom message`).
pub fn parse<'t>(text: &'t str, caps: &Caps, what: &str) -> Result<Document<'t>, AdapterError> {
    if text.len() > caps.max_bytes {
        return Err(malformed(
            "1:1",
            format!(
                "the message is {} KiB; bro reads XML up to {} KiB (cap: size)",
                text.len() >> 10,
                caps.max_bytes >> 10
            ),
        ));
    }
    let mut reader = Reader::from_str(text);
    let mut b = Builder {
        input: text,
        caps: *caps,
        doc: Document { nodes: Vec::new(), attributes: Vec::new(), namespaces: Vec::new() },
        open: Vec::new(),
        scopes: Vec::new(),
        bindings: Vec::new(),
        pending: Vec::new(),
        text: None,
        root_closed: false,
    };
    loop {
        let offset = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| not_well_formed(text, reader.error_position() as usize, &e))?;
        match event {
            Event::Start(e) | Event::Empty(e) if b.root_closed => {
                let _ = e;
                return Err(malformed(at(text.as_bytes(), offset), "not well-formed XML: more than one root element"));
            }
            Event::Start(e) => start(&mut b, &e, offset, false)?,
            Event::Empty(e) => start(&mut b, &e, offset, true)?,
            Event::End(_) => {
                b.flush_text(offset)?;
                if let Some(id) = b.open.pop() {
                    b.doc.nodes[id].end = b.doc.nodes.len();
                }
                if let Some(scope) = b.scopes.pop() {
                    b.bindings.truncate(scope);
                }
                b.root_closed = b.open.is_empty();
            }
            Event::Text(t) => {
                let content = keep(text, t.xml10_content());
                b.push_text(content, offset)?;
            }
            Event::CData(c) => {
                let content = keep(text, c.xml10_content());
                b.push_text(content, offset)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.chars().next().unwrap_or_default(),
                        None => {
                            return Err(malformed(
                                at(text.as_bytes(), offset),
                                format!("not well-formed XML: unknown entity &{};", crate::echo::masked(&r, 40)),
                            ));
                        }
                    },
                    Err(e) => return Err(not_well_formed(text, offset, &e)),
                };
                b.push_text(Cow::Owned(resolved.to_string()), offset)?;
            }
            Event::DocType(_) => {
                return Err(malformed(
                    at(text.as_bytes(), offset),
                    format!("not well-formed XML: a DTD is not allowed in {what}"),
                ));
            }
            Event::Comment(_) | Event::PI(_) => b.flush_text(offset)?,
            Event::Decl(_) => {}
            Event::Eof => {
                if let Some(&open) = b.open.last() {
                    let name = match &b.doc.nodes[open].kind {
                        Kind::Element { name, .. } => name.to_string(),
                        Kind::Text(_) => String::new(),
                    };
                    return Err(malformed(
                        at(text.as_bytes(), text.len()),
                        format!("not well-formed XML: unexpected end of stream: <{name}> is not closed"),
                    ));
                }
                if b.doc.nodes.is_empty() {
                    return Err(malformed("1:1", "not well-formed XML: the document has no root element"));
                }
                return Ok(b.doc);
            }
        }
    }
}

/// An element's start: namespace declarations, name, attributes, caps.
/// Namespaces are resolved here (not by `quick-xml`'s `NsReader`), so a
/// start tag's attributes are scanned once, and a namespace URI is compared
/// once per declaration rather than once per element.
fn start<'t>(b: &mut Builder<'t>, e: &BytesStart<'_>, offset: usize, empty: bool) -> Result<(), AdapterError> {
    let input = b.input.as_bytes();
    b.flush_text(offset)?;
    if b.open.len() >= b.caps.max_depth {
        return Err(malformed(
            at(input, offset),
            format!(
                "elements nest deeper than {} levels; bro reads XML up to that depth (cap: depth)",
                b.caps.max_depth
            ),
        ));
    }
    let scope = b.bindings.len();
    let mut pending = std::mem::take(&mut b.pending);
    pending.clear();
    for attribute in e.attributes() {
        let attribute = attribute.map_err(|e| not_well_formed(b.input, offset, &quick_xml::Error::InvalidAttr(e)))?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| not_well_formed(b.input, offset, &e))?;
        let value = keep(b.input, value);
        let key = b.name(attribute.key.as_ref());
        if let Some(prefix) = declared_prefix(&key) {
            if !prefix.is_empty() && value.is_empty() {
                return Err(malformed(
                    at(input, offset),
                    format!(
                        "not well-formed XML: the namespace prefix '{}' is declared empty",
                        crate::echo::masked(prefix, 40)
                    ),
                ));
            }
            let namespace = (!value.is_empty()).then(|| b.namespace(&value));
            let prefix = (!prefix.is_empty()).then(|| keep(b.input, Cow::Borrowed(prefix)));
            b.bindings.push((prefix, namespace));
            continue;
        }
        if pending.len() >= b.caps.max_attributes {
            return Err(malformed(
                at(input, offset),
                format!(
                    "an element has more than {} attributes; bro reads XML up to that many (cap: attributes)",
                    b.caps.max_attributes
                ),
            ));
        }
        pending.push((key, value));
    }
    let qname = e.name();
    let (prefix, local) = split_name(qname.as_ref());
    let namespace = match b.resolve(prefix) {
        Some(namespace) => namespace,
        None if prefix.is_none() => None,
        None => {
            return Err(malformed(
                at(input, offset),
                format!(
                    "not well-formed XML: unknown namespace prefix '{}'",
                    crate::echo::masked(prefix.unwrap_or_default(), 40)
                ),
            ));
        }
    };
    let name = b.name(local);
    let first = b.doc.attributes.len();
    for (key, value) in pending.drain(..) {
        // An unprefixed attribute is in no namespace, whatever the default.
        let (prefix, local) = split_name(&key);
        let namespace = prefix.and_then(|p| b.resolve(Some(p))).flatten();
        let name = keep(b.input, Cow::Borrowed(local));
        b.doc.attributes.push(AttributeData { name, namespace, value });
    }
    b.pending = pending;
    let id = b.doc.nodes.len();
    let attributes = (first, b.doc.attributes.len());
    b.doc.nodes.push(NodeData { kind: Kind::Element { name, namespace, attributes }, end: id + 1 });
    b.count(offset)?;
    if empty {
        b.bindings.truncate(scope);
        b.root_closed = b.open.is_empty();
    } else {
        b.open.push(id);
        b.scopes.push(scope);
    }
    Ok(())
}

/// `p` of `xmlns:p`, `""` of `xmlns`; `None` for any other attribute.
fn declared_prefix(key: &str) -> Option<&str> {
    if key == "xmlns" { Some("") } else { key.strip_prefix("xmlns:") }
}

/// A qualified name's prefix, if any, and local part.
fn split_name(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, qname),
    }
}

/// A `quick-xml` error as a refusal at its position, in words close to the
/// XML specification's.
fn not_well_formed(text: &str, offset: usize, error: &quick_xml::Error) -> AdapterError {
    use quick_xml::errors::IllFormedError;
    let description = match error {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            format!("expected '{expected}' tag, not '{found}'")
        }
        other => other.to_string(),
    };
    malformed(at(text.as_bytes(), offset), format!("not well-formed XML: {description}"))
}

/// Escapes text for element content with `quick-xml` (`&`, `<`, `>`); a
/// carriage return becomes a character reference (XML would fold it into a
/// line feed); characters XML 1.0 cannot carry become U+FFFD.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    let carried = carriable(text);
    let escaped = partial_escape(carried.as_ref()).into_owned();
    if escaped.contains('\r') { Cow::Owned(escaped.replace('\r', "&#13;")) } else { Cow::Owned(escaped) }
}

/// Escapes text for an attribute value with `quick-xml` (`&`, `<`, `>`,
/// `'`, `"`); line feeds, carriage returns and tabs become character
/// references, so they survive attribute-value normalisation; characters
/// XML 1.0 cannot carry become U+FFFD.
pub fn escape_attribute(text: &str) -> Cow<'_, str> {
    let carried = carriable(text);
    let escaped = escape(carried.as_ref());
    if !escaped.contains(['\n', '\r', '\t']) {
        return Cow::Owned(escaped.into_owned());
    }
    Cow::Owned(escaped.replace('\n', "&#10;").replace('\r', "&#13;").replace('\t', "&#9;"))
}

/// `text` with the characters XML 1.0 cannot carry replaced by U+FFFD.
fn carriable(text: &str) -> Cow<'_, str> {
    let bad = |c: char| ((c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t')) || matches!(c, '\u{FFFE}' | '\u{FFFF}');
    if text.contains(bad) {
        Cow::Owned(text.chars().map(|c| if bad(c) { '\u{FFFD}' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes XML with `quick-xml`'s writer; line breaks and indentation are the
/// caller's (`newline`), so a format's layout is kept byte for byte.
pub struct XmlWriter {
    inner: quick_xml::Writer<Vec<u8>>,
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> XmlWriter {
        XmlWriter { inner: quick_xml::Writer::new(Vec::new()) }
    }

    fn event(&mut self, event: Event<'_>) {
        // Writing into a Vec cannot fail.
        let _ = self.inner.write_event(event);
    }

    /// `<?xml version="1.0" encoding="…"?>`.
    pub fn declaration(&mut self, encoding: &str) {
        self.event(Event::Decl(BytesDecl::new("1.0", Some(encoding), None)));
    }

    /// A line break and `depth` levels of two-space indentation.
    pub fn newline(&mut self, depth: usize) {
        let mut text = String::with_capacity(1 + 2 * depth);
        text.push('\n');
        for _ in 0..depth {
            text.push_str("  ");
        }
        self.event(Event::Text(BytesText::from_escaped(text)));
    }

    fn tag<'a>(name: &'a str, attributes: &[(&str, &str)]) -> BytesStart<'a> {
        let mut tag = BytesStart::new(name);
        for (key, value) in attributes {
            // The value is escaped here; quick-xml writes an `Attribute` as given.
            tag.push_attribute(Attribute { key: QName(key), value: escape_attribute(value).into_owned().into() });
        }
        tag
    }

    /// `<name a="…">`.
    pub fn start(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.event(Event::Start(Self::tag(name, attributes)));
    }

    /// `</name>`.
    pub fn end(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// `<name a="…"/>`.
    pub fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.event(Event::Empty(Self::tag(name, attributes)));
    }

    /// Element content, escaped by [`escape_text`].
    pub fn text(&mut self, text: &str) {
        self.event(Event::Text(BytesText::from_escaped(escape_text(text))));
    }

    /// Element content already escaped (or markup the caller vouches for).
    pub fn escaped(&mut self, text: &str) {
        self.event(Event::Text(BytesText::from_escaped(text)));
    }

    /// `<name>text</name>`.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.start(name, &[]);
        self.text(text);
        self.end(name);
    }

    /// The document as text.
    pub fn finish(self) -> String {
        // Only `&str`s were written.
        String::from_utf8(self.inner.into_inner()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "a test message";

    fn parsed(text: &str) -> Result<Document<'_>, AdapterError> {
        parse(text, &CAPS, WHAT)
    }

    fn refusal(result: Result<Document<'_>, AdapterError>) -> (String, String) {
        match result {
            Err(AdapterError::Malformed(m)) => (m.location, m.description),
            other => panic!("expected a malformed refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_tree_answers_names_namespaces_attributes_children_and_text() {
        let text = "<?xml version=\"1.0\"?>\n<r xmlns=\"urn:a\" xmlns:b=\"urn:b\" id=\"x\">\n  <b:c v=\"1 &amp;\n2\">t&lt;1<![CDATA[&]]>&#65;</b:c><d/>\r\n</r>";
        let doc = parsed(text).expect("parses");
        let root = doc.root_element();
        assert_eq!((root.tag_name().name(), root.tag_name().namespace()), ("r", Some("urn:a")));
        assert_eq!(root.attribute("id"), Some("x"));
        assert_eq!(root.attribute("xmlns"), None, "namespace declarations are not attributes");
        let elements: Vec<_> = root.children().filter(|c| c.is_element()).collect();
        assert_eq!(elements.len(), 2);
        assert!(elements[0].has_tag_name("urn:b", "c"));
        assert_eq!(elements[0].attribute("v"), Some("1 & 2"), "attribute values are normalised");
        assert_eq!(elements[0].text(), Some("t<1&A"), "text, CDATA and references are one run");
        assert_eq!(elements[1].tag_name().namespace(), Some("urn:a"));
        assert_eq!(root.children().filter(|c| c.is_text()).last().and_then(|t| t.text()), Some("\n"));
        assert_eq!(root.descendants().filter(|d| d.is_element()).count(), 3);
    }

    #[test]
    fn namespace_declarations_hold_for_their_element_and_below_only() {
        let text = concat!(
            "<r xmlns='urn:a' xmlns:p='urn:p'>",
            "<p:x p:k='1' k='2' xml:lang='da'/>",
            "<y xmlns='urn:b'><z/><w xmlns=''/></y>",
            "<p:v xmlns:p='urn:q'/>",
            "<u/>",
            "</r>"
        );
        let doc = parsed(text).expect("parses");
        let ns = |n: Node<'_, '_>| (n.tag_name().name().to_owned(), n.tag_name().namespace().map(str::to_owned));
        let got: Vec<_> = doc.root_element().descendants().filter(|n| n.is_element()).map(ns).collect();
        let want = [("r", Some("urn:a")), ("x", Some("urn:p")), ("y", Some("urn:b")), ("z", Some("urn:b"))]
            .into_iter()
            .chain([("w", None), ("v", Some("urn:q")), ("u", Some("urn:a"))]);
        assert_eq!(got, want.map(|(n, s)| (n.to_owned(), s.map(str::to_owned))).collect::<Vec<_>>());
        let x = doc.root_element().children().next().expect("x");
        // An unprefixed attribute is in no namespace; a prefixed one is not found by `attribute`.
        assert_eq!(x.attribute("k"), Some("2"));
        assert_eq!(x.attribute("lang"), None);
        assert!(refusal(parsed("<a xmlns:p=''/>")).1.contains("prefix 'p' is declared empty"));
        assert!(refusal(parsed("<a><p:b xmlns:p='urn:p'/><p:c/></a>")).1.contains("unknown namespace prefix 'p'"));
    }

    #[test]
    fn refusals_name_the_problem_and_where_it_is() {
        assert_eq!(
            refusal(parsed("<a>\n  <b>\n  </c>\n</a>")),
            ("3:3".into(), "not well-formed XML: expected 'b' tag, not 'c'".into())
        );
        let dtd = "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>";
        assert_eq!(
            refusal(parsed(dtd)),
            ("2:1".into(), "not well-formed XML: a DTD is not allowed in a test message".into())
        );
        assert!(refusal(parsed("<a>&x;</a>")).1.contains("unknown entity &x;"));
        assert!(refusal(parsed("<a/><b/>")).1.contains("more than one root"));
        assert!(refusal(parsed("<a><b></b>")).1.contains("<a> is not closed"));
        assert!(refusal(parsed("")).1.contains("no root element"));
        assert!(refusal(parsed("<p:a/>")).1.contains("unknown namespace prefix"));
    }

    #[test]
    fn caps_stop_a_message_as_it_streams() {
        let caps = Caps { max_bytes: 1000, max_depth: 3, max_nodes: 10, max_attributes: 2 };
        let deep = refusal(parse("<a><b><c><d/></c></b></a>", &caps, WHAT));
        assert_eq!(deep.0, "1:10");
        assert!(deep.1.contains("deeper than 3 levels") && deep.1.contains("(cap: depth)"), "{deep:?}");
        let wide = "<a>".to_owned() + &"<b/>".repeat(20) + "</a>";
        assert!(refusal(parse(&wide, &caps, WHAT)).1.contains("(cap: nodes)"));
        assert!(refusal(parse("<a x='1' y='2' z='3'/>", &caps, WHAT)).1.contains("(cap: attributes)"));
        let big = "<a>".to_owned() + &"x".repeat(2000) + "</a>";
        assert!(refusal(parse(&big, &caps, WHAT)).1.contains("(cap: size)"));
    }

    #[test]
    fn declared_encodings_are_honoured() {
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe6\xf8\xe5</a>";
        assert!(decode(latin).is_ok_and(|t| t.ends_with("<a>æøå</a>")));
        let cp = b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>";
        assert!(decode(cp).is_ok_and(|t| t.ends_with("<a>€</a>")));
        assert!(decode("<?xml version=\"1.0\"?><a>æ</a>".as_bytes()).is_ok_and(|t| matches!(t, Cow::Borrowed(_))));
        assert!(decode(b"\xef\xbb\xbf<a>x</a>").is_ok_and(|t| t == "<a>x</a>"));
        assert!(matches!(decode(b"<a>\xe6</a>"), Err(AdapterError::Malformed(m)) if m.location == "1:4"));
        assert!(matches!(decode(b"<?xml version='1.0' encoding='klingon'?><a/>"), Err(AdapterError::Malformed(_))));
        assert!(matches!(decode(b"<?xml version='1.0' encoding='UTF-16'?><a/>"), Err(AdapterError::Malformed(_))));
    }

    #[test]
    fn escaping_and_writing() {
        assert_eq!(escape_text("a<b>&\"c\"\nd\r\u{1}"), "a&lt;b&gt;&amp;\"c\"\nd&#13;\u{FFFD}");
        assert_eq!(escape_attribute("a\"b\n<c>&'\t"), "a&quot;b&#10;&lt;c&gt;&amp;&apos;&#9;");
        let mut w = XmlWriter::new();
        w.declaration("UTF-8");
        w.newline(0);
        w.start("r", &[("xmlns", "urn:a"), ("v", "1\"2")]);
        w.newline(1);
        w.leaf("c", "x & y");
        w.newline(1);
        w.empty("e", &[]);
        w.newline(0);
        w.end("r");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r xmlns=\"urn:a\" v=\"1&quot;2\">\n  <c>x &amp; y</c>\n  <e/>\n</r>"
        );
    }
}
