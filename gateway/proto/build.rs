//! Compiles `proto/` with protox (pure Rust, no protoc) and generates the
//! prost messages of `bro.v1`, plus the descriptor set for reflection. No
//! RPC code: the tonic services are generated in `bro-api`.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(proto_root.join("bro/v1"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path.strip_prefix(&proto_root)?.to_path_buf());
        }
    }
    files.sort();
    println!("cargo:rerun-if-changed={}", proto_root.join("bro/v1").display());
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_set = out_dir.join("bro_descriptor.bin");
    std::fs::write(&descriptor_set, descriptors.encode_to_vec())?;
    // For bro-api's build, which generates the services from the same set.
    println!("cargo:descriptor_set={}", descriptor_set.display());
    prost_build::Config::new()
        // Maps in a stable order, as in the adapters' SDK.
        .btree_map(["."])
        // Personal and health data: these get hand-written, masking Debug impls.
        .skip_debug([
            "bro.v1.PersonIdentifier",
            "bro.v1.ContactPerson",
            "bro.v1.Party",
            "bro.v1.CorrespondenceEntry",
            "bro.v1.Attachment",
        ])
        .compile_fds(descriptors)?;
    Ok(())
}
