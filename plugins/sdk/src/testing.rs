//! An adapter's native tests (cargo feature `testing`, for
//! `[dev-dependencies]` only): the golden fixtures run the way `bro adapter
//! test` runs them, canonical batches in the proto3 JSON it uses, and errors
//! as it prints them.
//!
//! ```ignore
//! #[test]
//! fn every_golden_fixture_passes() {
//!     let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
//!     assert_eq!(bro_adapter_sdk::testing::check_golden_fixtures::<MyAdapter>(fixtures), 3);
//! }
//! ```
//!
//! A fixture is `NAME.in.EXT` → `NAME.expected.json` (to-canonical, with the
//! transport metadata `message-id` = `NAME`) or `NAME.canonical.json` (and
//! the target in `NAME.target`) → `NAME.expected.EXT` (from-canonical).
//! Helpers panic with what went wrong, as a test's assertions do.

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use crate::{Adapter, AdapterError, Message, proto};

/// bro's descriptor set, compiled from `proto/bro/v1/` by the build script.
const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bro.v1.descriptors.bin"));

/// An error as `bro adapter test` prints it.
pub fn describe(e: &AdapterError) -> String {
    match e {
        AdapterError::Malformed(m) => format!("malformed input at {}: {}", m.location, m.description),
        AdapterError::Unsupported(t) => format!("unsupported message type: {t}"),
        AdapterError::Invalid(v) => {
            let list: Vec<String> = v.iter().map(|f| format!("{}: {}", f.field, f.description)).collect();
            format!("invalid content: {}", list.join("; "))
        }
        AdapterError::Internal(m) => format!("internal adapter error: {m}"),
    }
}

/// Transport metadata from pairs.
pub fn metadata(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The outcome of a call that must succeed (a translation, a rendering);
/// else a panic with the error as `bro adapter test` prints it.
pub fn accepted<T>(result: Result<T, AdapterError>) -> T {
    result.unwrap_or_else(|e| panic!("{}", describe(&e)))
}

/// The error of a call that must fail, as `bro adapter test` prints it; it
/// must not carry any of `people` (CPR numbers, names).
pub fn refused<T>(result: Result<T, AdapterError>, people: &[&str]) -> String {
    match result {
        Ok(_) => panic!("accepted, but should have been refused"),
        Err(e) => {
            let text = describe(&e);
            for p in people {
                assert!(!text.contains(p), "{text:?} carries {p}");
            }
            text
        }
    }
}

/// Translates every proper prefix of `body`, as a message cut short in
/// transport: none may panic (the component would trap), each shorter than
/// `whole` bytes (the message up to its closing bracket or tag) must be
/// refused, and no error may carry any of `people`.
pub fn check_truncations(
    body: &[u8],
    whole: usize,
    translate: impl Fn(&[u8]) -> Result<proto::AdapterBatch, AdapterError>,
    people: &[&str],
) {
    for len in 0..body.len() {
        match translate(body.get(..len).unwrap_or_default()) {
            // Only trailing white space may go.
            Ok(_) if len >= whole => {}
            Ok(_) => panic!("a message cut at byte {len} translated"),
            Err(e) => {
                let text = describe(&e);
                assert!(people.iter().all(|p| !text.contains(p)), "{text}");
            }
        }
    }
}

/// `bro.v1.AdapterBatch`, from the same descriptors as the SDK's types.
pub fn batch_descriptor() -> MessageDescriptor {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap_or_else(|e| panic!("bro's descriptor set: {e}"));
    pool.get_message_by_name("bro.v1.AdapterBatch").unwrap_or_else(|| panic!("bro.v1.AdapterBatch is described"))
}

/// A batch from its proto3 JSON, as `bro adapter test` reads a `NAME.canonical.json`.
pub fn batch_from_json(text: &str) -> Result<proto::AdapterBatch, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let message = DynamicMessage::deserialize(batch_descriptor(), &mut de)
        .map_err(|e| format!("not a bro.v1.AdapterBatch in JSON: {e}"))?;
    proto::AdapterBatch::decode(message.encode_to_vec().as_slice()).map_err(|e| e.to_string())
}

/// A batch as proto3 JSON the way `bro adapter test` shows it: members
/// sorted, pretty, with a final line break.
pub fn batch_to_json(batch: &proto::AdapterBatch) -> String {
    let message = DynamicMessage::decode(batch_descriptor(), batch.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("a bro.v1.AdapterBatch: {e}"));
    // Through a `Value`, as the CLI does: its members come out sorted.
    let value = serde_json::to_value(&message).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string_pretty(&value).unwrap_or_else(|e| panic!("{e}"));
    format!("{json}\n")
}

/// The bytes of the fixture `name` in `dir`.
pub fn fixture(dir: impl AsRef<Path>, name: &str) -> Vec<u8> {
    std::fs::read(dir.as_ref().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The names of the files in `dir` that end with `suffix` (e.g. `.in.json`), sorted.
pub fn fixture_names(dir: impl AsRef<Path>, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.ends_with(suffix));
    names.sort();
    names
}

/// One golden fixture: its input, the output expected, and the direction.
#[derive(Clone, Debug)]
pub struct GoldenFixture {
    /// `NAME`.
    pub name: String,
    /// `NAME.in.EXT` or `NAME.canonical.json`.
    pub input: PathBuf,
    /// `NAME.expected.json` or `NAME.expected.EXT`.
    pub expected: PathBuf,
    /// To canonical (`true`) or from canonical.
    pub forward: bool,
}

/// The golden fixtures in `dir`, as `bro adapter test` finds them.
pub fn golden_fixtures(dir: impl AsRef<Path>) -> Vec<GoldenFixture> {
    let dir = dir.as_ref();
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    entries.sort();
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    for path in &entries {
        let file = file_name(path);
        if let Some((stem, _)) = file.split_once(".in.") {
            let expected = dir.join(format!("{stem}.expected.json"));
            out.push(GoldenFixture { name: stem.to_owned(), input: path.clone(), expected, forward: true });
        }
        if let Some(stem) = file.strip_suffix(".canonical.json") {
            // A name with an input too has its `.expected.json` taken; the rendering is the other one.
            let forward_too = entries.iter().any(|q| file_name(q).starts_with(&format!("{stem}.in.")));
            let expected = entries
                .iter()
                .find(|p| {
                    let f = file_name(p);
                    f.starts_with(&format!("{stem}.expected.")) && !(forward_too && f.ends_with(".json"))
                })
                .cloned()
                .unwrap_or_else(|| dir.join(format!("{stem}.expected.xml")));
            out.push(GoldenFixture { name: stem.to_owned(), input: path.clone(), expected, forward: false });
        }
    }
    out
}

/// A message's content type from its file's extension, as `bro adapter test` gives it.
fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "xml" => "application/xml",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// What adapter `A` makes of a fixture's input, as `bro adapter test` shows it.
pub fn golden_output<A: Adapter>(f: &GoldenFixture) -> Vec<u8> {
    let body = std::fs::read(&f.input).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    if f.forward {
        let message = Message {
            content_type: content_type_of(&f.input).into(),
            body,
            metadata: metadata(&[("message-id", &f.name)]),
        };
        return match A::to_canonical(message) {
            Ok(batch) => batch_to_json(&batch).into_bytes(),
            Err(e) => format!("{{\"error\": {}}}\n", serde_json::Value::String(describe(&e))).into_bytes(),
        };
    }
    let target = std::fs::read_to_string(f.input.with_file_name(format!("{}.target", f.name))).unwrap_or_default();
    let text = String::from_utf8(body).unwrap_or_default();
    let batch = batch_from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    match A::from_canonical(batch, target.trim()) {
        Ok(m) => m.body,
        Err(e) => format!("error: {}\n", describe(&e)).into_bytes(),
    }
}

/// Runs every golden fixture in `dir` through adapter `A` and panics naming
/// those whose output differs (JSON compared as values, anything else byte
/// for byte but for trailing white space); returns how many there are.
/// With the environment variable `BLESS` set, the expected files that
/// differ are rewritten instead.
pub fn check_golden_fixtures<A: Adapter>(dir: impl AsRef<Path>) -> usize {
    let bless = std::env::var_os("BLESS").is_some();
    let all = golden_fixtures(dir);
    let mut failed = Vec::new();
    for f in &all {
        let actual = golden_output::<A>(f);
        let expected = std::fs::read(&f.expected).unwrap_or_default();
        let same = if f.forward {
            let a: serde_json::Value = serde_json::from_slice(&actual).unwrap_or_default();
            let e: serde_json::Value = serde_json::from_slice(&expected).unwrap_or_default();
            a == e
        } else {
            actual.trim_ascii_end() == expected.trim_ascii_end()
        };
        if !same && bless {
            std::fs::write(&f.expected, &actual).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        } else if !same {
            failed.push(format!("{}:\n{}", f.name, String::from_utf8_lossy(&actual)));
        }
    }
    assert!(failed.is_empty(), "fixtures that differ:\n{}", failed.join("\n"));
    all.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_go_to_json_and_back() {
        let batch =
            proto::AdapterBatch { source_message_id: "m1".into(), case: "cases/c1".into(), ..Default::default() };
        let json = batch_to_json(&batch);
        assert_eq!(json, "{\n  \"case\": \"cases/c1\",\n  \"sourceMessageId\": \"m1\"\n}\n");
        assert_eq!(batch_from_json(&json), Ok(batch));
        assert!(batch_from_json("{\"nope\": 1}").is_err());
    }

    #[test]
    fn errors_are_described_and_people_kept_out() {
        let e = crate::invalid("/a", "is required");
        assert_eq!(describe(&e), "invalid content: /a: is required");
        assert_eq!(refused::<()>(Err(e), &["0101901234"]), "invalid content: /a: is required");
        assert_eq!(accepted::<u8>(Ok(1)), 1);
        assert_eq!(metadata(&[("message-id", "m")]), vec![("message-id".to_owned(), "m".to_owned())]);
    }
}
