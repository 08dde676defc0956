//! The code `build.rs` generates from `proto/`: etcd v3.4's messages and services, and the
//! messages' serde impls (proto3's JSON mapping with the proto field names, for the gateway).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `mvccpb`: key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// Package `authpb`: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// Package `etcdserverpb`: the services and their requests and responses.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}
