//! Generates the gRPC services and messages of `proto/` (etcd v3.4's wire interface) with
//! `protoc`, and their serde impls (proto3's JSON mapping, for the gateway); `protoc` must be
//! installed (Debian: `protobuf-compiler`; `ci/check.sh` installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("PROTOC").is_none() && !protoc_on_path() {
        return Err(
            "protoc not found: install it (Debian: apt-get install protobuf-compiler) \
                    or set PROTOC to its path"
                .into(),
        );
    }
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("etcd_descriptors.bin");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(&descriptors)
        .compile_protos(
            &[
                "proto/etcdserverpb/rpc.proto",
                "proto/mvccpb/kv.proto",
                "proto/authpb/auth.proto",
            ],
            &["proto"],
        )?;
    // The JSON gateway's serde impls, as etcd's grpc-gateway marshals (`OrigName: true`: the
    // proto field names) and unmarshals (unknown fields ignored).
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".etcdserverpb", ".mvccpb", ".authpb"])?;
    Ok(())
}

/// Whether a `protoc` is on `PATH`.
fn protoc_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("protoc").is_file()))
}
