//! The KV service: Range (`range`), Put, DeleteRange and Compact (`write`), Txn (`txn`).
//!
//! Invariants:
//! - With auth enabled, every call but Compact is checked against its caller's permissions
//!   (`auth::checks`) before it touches the store.
//! - Every call runs its engine work on the blocking pool ([`Context::blocking`]).
//! - Writes (Put, DeleteRange, Txn, Compact), which are raft requests in etcd, are refused
//!   with `etcdserver: request is too large` when their encoding exceeds the request limit;
//!   Range, a read, is not (as etcd).

mod range;
mod txn;
mod txn_check;
mod write;

pub(crate) use range::{ReadPoint, requested_revision};

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::context::Context;
use crate::error::EtcdResult;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};

/// The KV service over a [`Context`].
#[derive(Debug)]
pub(crate) struct KvService {
    context: Arc<Context>,
}

impl KvService {
    pub(crate) fn new(context: Arc<Context>) -> KvService {
        KvService { context }
    }

    /// Checks a write's size, then, on the blocking pool, its caller's permissions
    /// (`authorize`) and runs it.
    async fn write<Q, R>(
        &self,
        request: Request<Q>,
        authorize: fn(&Caller, &Context, &Q) -> EtcdResult<()>,
        serve: fn(&Context, &Q) -> EtcdResult<R>,
    ) -> Result<Response<R>, Status>
    where
        Q: Message + Send + 'static,
        R: Send + 'static,
    {
        let caller = self.context.auth.caller(&request)?;
        let request = request.into_inner();
        self.context
            .check_size(request.encoded_len())
            .map_err(Status::from)?;
        self.context
            .blocking(move |context| {
                authorize(&caller, context, &request)?;
                serve(context, &request)
            })
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let caller = self.context.auth.caller(&request)?;
        let request = request.into_inner();
        caller.check_range(&request)?;
        caller.check_read_revision()?;
        self.context
            .blocking(move |context| range::read(context, &request))
            .await
            .map(Response::new)
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.write(request, Caller::check_put, write::put).await
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.write(
            request,
            |caller, _, r| caller.check_delete(r),
            write::delete_range,
        )
        .await
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.write(request, |caller, _, r| caller.check_txn(r), txn::txn)
            .await
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        // etcd 3.4 lets any caller compact.
        self.write(request, |_, _, _| Ok(()), write::compact).await
    }
}
