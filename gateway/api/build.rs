//! Generates the tonic clients and servers of `bro.v1` from the descriptor
//! set `bro-proto`'s build compiled from `proto/`; the messages they carry
//! are `bro-proto`'s (an extern path), so each is generated once.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_BRO_PROTO_DESCRIPTOR_SET")?;
    println!("cargo:rerun-if-changed={path}");
    let descriptors = prost_types::FileDescriptorSet::decode(std::fs::read(&path)?.as_slice())?;
    tonic_prost_build::configure().extern_path(".bro.v1", "::bro_proto::v1").compile_fds(descriptors)?;
    Ok(())
}
