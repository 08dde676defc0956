//! The code `build.rs` generates from `proto/`: etcd v3.4's messages and services.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `mvccpb`: key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// Package `authpb`: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// Package `etcdserverpb`: the services and their requests and responses.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
