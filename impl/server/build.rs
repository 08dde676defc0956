//! Generates the gRPC services and messages of `proto/` (etcd v3.4's wire interface) with
//! `protoc`, which must be installed (Debian: `protobuf-compiler`; `ci/check.sh` installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("PROTOC").is_none() && !protoc_on_path() {
        return Err(
            "protoc not found: install it (Debian: apt-get install protobuf-compiler) \
                    or set PROTOC to its path"
                .into(),
        );
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "proto/etcdserverpb/rpc.proto",
                "proto/mvccpb/kv.proto",
                "proto/authpb/auth.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}

/// Whether a `protoc` is on `PATH`.
fn protoc_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("protoc").is_file()))
}
