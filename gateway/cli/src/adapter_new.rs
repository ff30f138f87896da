//! `bro adapter new NAME`: a new adapter project that builds on its own, in
//! any directory, with `cargo build --release --target wasm32-wasip2`. The
//! SDK, the WIT and bro's canonical proto are vendored into it, so a vendor
//! outside this repository needs nothing else.

use std::path::Path;

use anyhow::{Context, bail};

/// The SDK and the schemas it is generated from, as they are in this bro.
const VENDORED: &[(&str, &str)] = &[
    ("bro-adapter-sdk/Cargo.toml", include_str!("../../../plugins/sdk/Cargo.toml")),
    ("bro-adapter-sdk/build.rs", include_str!("../../../plugins/sdk/build.rs")),
    ("bro-adapter-sdk/src/lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("bro-adapter-sdk/src/cpr.rs", include_str!("../../../plugins/sdk/src/cpr.rs")),
    ("bro-adapter-sdk/src/echo.rs", include_str!("../../../plugins/sdk/src/echo.rs")),
    ("bro-adapter-sdk/src/holistic.rs", include_str!("../../../plugins/sdk/src/holistic.rs")),
    ("bro-adapter-sdk/src/ids.rs", include_str!("../../../plugins/sdk/src/ids.rs")),
    ("bro-adapter-sdk/src/json.rs", include_str!("../../../plugins/sdk/src/json.rs")),
    ("bro-adapter-sdk/src/subjects.rs", include_str!("../../../plugins/sdk/src/subjects.rs")),
    ("bro-adapter-sdk/src/testing.rs", include_str!("../../../plugins/sdk/src/testing.rs")),
    ("bro-adapter-sdk/src/time.rs", include_str!("../../../plugins/sdk/src/time.rs")),
    ("bro-adapter-sdk/src/xml.rs", include_str!("../../../plugins/sdk/src/xml.rs")),
    ("bro-adapter-sdk/vendor/wit/adapter.wit", include_str!("../../../plugins/wit/adapter.wit")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/adapter.proto", include_str!("../../../proto/bro/v1/adapter.proto")),
    (
        "bro-adapter-sdk/vendor/proto/bro/v1/adapter_service.proto",
        include_str!("../../../proto/bro/v1/adapter_service.proto"),
    ),
    ("bro-adapter-sdk/vendor/proto/bro/v1/audit.proto", include_str!("../../../proto/bro/v1/audit.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/case.proto", include_str!("../../../proto/bro/v1/case.proto")),
    (
        "bro-adapter-sdk/vendor/proto/bro/v1/case_service.proto",
        include_str!("../../../proto/bro/v1/case_service.proto"),
    ),
    ("bro-adapter-sdk/vendor/proto/bro/v1/common.proto", include_str!("../../../proto/bro/v1/common.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/events.proto", include_str!("../../../proto/bro/v1/events.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/obligations.proto", include_str!("../../../proto/bro/v1/obligations.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/pipeline.proto", include_str!("../../../proto/bro/v1/pipeline.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/plan.proto", include_str!("../../../proto/bro/v1/plan.proto")),
    ("bro-adapter-sdk/vendor/proto/bro/v1/sector.proto", include_str!("../../../proto/bro/v1/sector.proto")),
];

/// The proto files bro has and the SDK's sources; a test checks `VENDORED` carries them all.
#[cfg(test)]
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/bro/v1");
#[cfg(test)]
const SDK_SRC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk/src");

fn project_files(name: &str) -> Vec<(String, String)> {
    let crate_name = name.replace('-', "_");
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
bro-adapter-sdk = {{ path = "bro-adapter-sdk" }}

# A project of its own, not part of any enclosing workspace.
[workspace]

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
"#
    );
    let lib_rs = format!(
        r#"//! The `{name}` adapter for bro: translates the system's messages to bro's
//! canonical events (`proto::AdapterBatch`) and back.

use bro_adapter_sdk::{{Adapter, AdapterError, AdapterInfo, Level, Message, MessageType, SystemKind, proto}};

struct {type_name};

impl Adapter for {type_name} {{
    fn describe() -> AdapterInfo {{
        AdapterInfo {{
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            system_kind: SystemKind::Other,
            reads: vec![MessageType {{ name: "example".into(), content_types: vec!["application/json".into()] }}],
            writes: vec![MessageType {{ name: "example".into(), content_types: vec!["application/json".into()] }}],
        }}
    }}

    fn to_canonical(message: Message) -> Result<proto::AdapterBatch, AdapterError> {{
        bro_adapter_sdk::log(Level::Debug, &format!("{{}} bytes of {{}}", message.body.len(), message.content_type));
        if !message.content_type.starts_with("application/json") {{
            return Err(AdapterError::Unsupported(message.content_type));
        }}
        let text = std::str::from_utf8(&message.body)
            .map_err(|e| bro_adapter_sdk::malformed(format!("byte {{}}", e.valid_up_to()), "not UTF-8"))?;
        if text.trim().is_empty() {{
            return Err(bro_adapter_sdk::malformed("1:1", "empty message"));
        }}
        let id = message.metadata.iter().find(|(k, _)| k == "message-id").map(|(_, v)| v.clone()).unwrap_or_default();
        // Parse `text` here and push canonical events onto the batch.
        Ok(proto::AdapterBatch {{ source_message_id: id, ..Default::default() }})
    }}

    fn from_canonical(batch: proto::AdapterBatch, target: &str) -> Result<Message, AdapterError> {{
        let body = format!("{{{{\"target\": \"{{target}}\", \"events\": {{}}}}}}\n", batch.events.len());
        Ok(Message {{ content_type: "application/json".into(), body: body.into_bytes(), metadata: vec![] }})
    }}
}}

bro_adapter_sdk::export_adapter!({type_name});
"#,
        type_name = type_name(&crate_name)
    );
    let readme = format!(
        "# {name}\n\nA bro adapter. Build it:\n\n```sh\ncargo build --release --target wasm32-wasip2\n```\n\n\
         The component is `target/wasm32-wasip2/release/{crate_name}.wasm`. Try it and test it with bro:\n\n\
         ```sh\nbro adapter check target/wasm32-wasip2/release/{crate_name}.wasm\n\
         bro adapter run target/wasm32-wasip2/release/{crate_name}.wasm --op to-canonical --input fixtures/hello.in.json\n\
         bro adapter test target/wasm32-wasip2/release/{crate_name}.wasm fixtures\n\
         bro adapter sign target/wasm32-wasip2/release/{crate_name}.wasm --key vendor.key\n```\n\n\
         `bro-adapter-sdk/` is bro's SDK with its WIT and proto vendored: replace it with a newer one from \
         `bro adapter new` when bro's WIT version changes.\n"
    );
    vec![
        ("Cargo.toml".into(), cargo_toml),
        ("src/lib.rs".into(), lib_rs),
        ("README.md".into(), readme),
        (".gitignore".into(), "/target\n".into()),
        ("fixtures/hello.in.json".into(), "{\"hello\": \"bro\"}\n".into()),
        ("fixtures/hello.expected.json".into(), "{\"sourceMessageId\": \"hello\"}\n".into()),
    ]
}

fn type_name(crate_name: &str) -> String {
    let mut out = String::new();
    for part in crate_name.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) { format!("Adapter{out}") } else { out }
}

/// Creates the project `dir/name`.
pub fn create(name: &str, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_lowercase()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        bail!("adapter name {name:?}: use lowercase letters, digits and '-', starting with a letter");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let files = project_files(name).into_iter().chain(VENDORED.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())));
    for (path, contents) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proto_file_and_sdk_source_is_vendored() {
        for (dir, vendored_as) in
            [(PROTO_DIR, "bro-adapter-sdk/vendor/proto/bro/v1"), (SDK_SRC_DIR, "bro-adapter-sdk/src")]
        {
            for entry in std::fs::read_dir(dir).unwrap() {
                let file = entry.unwrap().file_name().to_string_lossy().into_owned();
                let path = format!("{vendored_as}/{file}");
                assert!(VENDORED.iter().any(|(p, _)| *p == path), "{file} is not vendored by `bro adapter new`");
            }
        }
    }

    #[test]
    fn names_are_checked_and_projects_written() {
        let dir = tempfile::tempdir().unwrap();
        assert!(create("Bad Name", dir.path()).is_err());
        let root = create("my-system", dir.path()).unwrap();
        assert!(root.join("bro-adapter-sdk/vendor/wit/adapter.wit").exists());
        assert!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap().contains("export_adapter!(MySystem)"));
        assert!(create("my-system", dir.path()).is_err(), "an existing directory is not overwritten");
    }
}
