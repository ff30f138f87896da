//! Generates the SDK's two halves from the single sources of truth: the
//! canonical protobuf types from `proto/bro/v1/` (prost, via protox: no
//! protoc) and the guest bindings of `bro:adapter` from the WIT. The
//! compiled descriptor set is kept too, for the `testing` feature.
//!
//! In the bro repository the sources are `../../proto` and `../wit`; in a
//! project made by `bro adapter new` they are vendored in `vendor/`.

use std::path::{Path, PathBuf};

fn first_existing(candidates: &[PathBuf], what: &str) -> PathBuf {
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("cannot find the {what}; looked in {candidates:?}"))
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Not `wit/`: wit-bindgen would read that directory on its own as well.
    let proto_root = first_existing(&[manifest.join("vendor/proto"), manifest.join("../../proto")], "proto/ directory");
    let wit_dir = first_existing(&[manifest.join("vendor/wit"), manifest.join("../wit")], "WIT directory");

    let mut files = Vec::new();
    for entry in std::fs::read_dir(proto_root.join("bro/v1")).expect("proto/bro/v1 is readable") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path.strip_prefix(&proto_root).expect("under the root").to_path_buf());
        }
    }
    files.sort();
    let descriptors = protox::compile(&files, [&proto_root]).expect("proto/ compiles");
    // The descriptor set itself, for the `testing` feature's proto3 JSON.
    std::fs::write(out.join("bro.v1.descriptors.bin"), prost::Message::encode_to_vec(&descriptors))
        .expect("OUT_DIR is writable");
    // Maps as BTreeMap: a HashMap would seed itself from `wasi:random`, which the host does not grant.
    prost_build::Config::new()
        .btree_map(["."])
        .out_dir(&out)
        .compile_fds(descriptors)
        .expect("prost generates the canonical types");

    let wit_path = wit_dir.join("adapter.wit");
    println!("cargo:rerun-if-changed={}", wit_path.display());
    let wit = std::fs::read_to_string(&wit_path).expect("adapter.wit is readable");
    assert!(!wit.contains("\"###"), "adapter.wit must not contain the raw-string delimiter");
    let bindings = format!(
        "wit_bindgen::generate!({{\n    inline: r###\"{wit}\"###,\n    world: \"adapter\",\n    pub_export_macro: true,\n    export_macro_name: \"__export_adapter_world\",\n    default_bindings_module: \"bro_adapter_sdk::bindings\",\n}});\n"
    );
    std::fs::write(out.join("bindings.rs"), bindings).expect("OUT_DIR is writable");
    let _ = Path::new(&out);
}
