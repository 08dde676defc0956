//! What each KV, Lease and Watch request needs of its caller when auth is enabled (etcd v3.4's
//! `authApplierV3` and `checkTxnAuth`):
//! - Range: READ on `[key, range_end)`; a Watch create likewise.
//! - Put: WRITE on the key, READ on it too with `prev_kv`; with a lease, WRITE on every key
//!   already attached to the lease (etcd's `checkLeasePuts`: a user that could not revoke the
//!   lease may not attach to it).
//! - DeleteRange: WRITE on the range, READ on it too with `prev_kv`.
//! - Txn: READ on every compare's key (and range), then every op of both branches as above
//!   (ranges READ, puts WRITE, deletes WRITE and READ with `prev_kv`), nested txns included,
//!   whichever branch runs.
//! - LeaseRevoke: WRITE on every key attached to the lease.
//!
//! Defragment, Hash, HashKV and Snapshot need the root role, as auth management does. Compact,
//! LeaseGrant, keep-alives, LeaseTimeToLive, Status, Alarm and MemberList are not checked: etcd
//! 3.4 lets any caller make them (checked against etcd 3.4.23).
//!
//! Every key check (not the admin check, as in etcd's `IsAdminPermitted`) first refuses a
//! caller whose auth revision is older than the state's, with `etcdserver: revision of auth
//! store is old`: a JWT issued before a change to users or roles, or before a disable.
//!
//! Invariants: a check reads only the [`Caller`]'s state (and, for leases, the lease's keys);
//! it runs before the request touches the store, so a refused request writes nothing.

use crate::auth::perms::Access;
use crate::auth::store::Caller;
use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::keys::lease_id;
use crate::proto::etcdserverpb::request_op::Request;
use crate::proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

impl Caller {
    /// Whether the caller may `access` `[key, range_end)` (etcd's `isOpPermitted`).
    pub(crate) fn check(&self, access: Access, key: &[u8], range_end: &[u8]) -> EtcdResult<()> {
        if self.is_old() {
            return Err(EtcdError::AuthOldRevision);
        }
        self.state
            .check_keys(self.user.as_deref(), access, key, range_end)
    }

    /// etcd's check after a serialized read (`doSerialize`, Range): a caller whose user was
    /// established at another auth revision than the state's, older or newer (a JWT issued by
    /// another server), is refused with `revision of auth store is old`, auth enabled or not.
    pub(crate) fn check_read_revision(&self) -> EtcdResult<()> {
        if self.user.is_some() && self.revision != self.state.revision {
            return Err(EtcdError::AuthOldRevision);
        }
        Ok(())
    }

    /// Whether auth is enabled and the caller's user was established at an auth revision
    /// older than the state's.
    fn is_old(&self) -> bool {
        self.state.enabled && self.user.is_some() && self.revision < self.state.revision
    }

    /// Whether the caller may make admin calls: auth management, Defragment, Hash, HashKV,
    /// Snapshot (etcd's `IsAdminPermitted`).
    pub(crate) fn check_admin(&self) -> EtcdResult<()> {
        self.state.check_admin(self.user.as_deref())
    }

    /// Whether every check lets the caller through (auth disabled, or root).
    fn unrestricted(&self) -> bool {
        !self.state.enabled
            || (!self.is_old() && self.user.as_deref().is_some_and(|u| self.state.is_root(u)))
    }

    pub(crate) fn check_range(&self, request: &RangeRequest) -> EtcdResult<()> {
        self.check(Access::Read, &request.key, &request.range_end)
    }

    /// The checks of a Put but the lease's.
    fn check_put_keys(&self, request: &PutRequest) -> EtcdResult<()> {
        self.check(Access::Write, &request.key, &[])?;
        if request.prev_kv {
            self.check(Access::Read, &request.key, &[])?;
        }
        Ok(())
    }

    /// A Put's checks, the lease's included (reads the lease's keys: blocks).
    pub(crate) fn check_put(&self, context: &Context, request: &PutRequest) -> EtcdResult<()> {
        self.check_put_keys(request)?;
        self.check_lease_keys(context, request.lease)
    }

    pub(crate) fn check_delete(&self, request: &DeleteRangeRequest) -> EtcdResult<()> {
        self.check(Access::Write, &request.key, &request.range_end)?;
        if request.prev_kv {
            self.check(Access::Read, &request.key, &request.range_end)?;
        }
        Ok(())
    }

    pub(crate) fn check_txn(&self, request: &TxnRequest) -> EtcdResult<()> {
        for compare in &request.compare {
            self.check(Access::Read, &compare.key, &compare.range_end)?;
        }
        for op in request.success.iter().chain(&request.failure) {
            self.check_op(op)?;
        }
        Ok(())
    }

    fn check_op(&self, op: &RequestOp) -> EtcdResult<()> {
        match &op.request {
            Some(Request::RequestRange(range)) => self.check_range(range),
            Some(Request::RequestPut(put)) => self.check_put_keys(put),
            Some(Request::RequestDeleteRange(delete)) => self.check_delete(delete),
            Some(Request::RequestTxn(nested)) => self.check_txn(nested),
            None => Ok(()),
        }
    }

    /// WRITE on every key attached to `lease` (0 or an unknown lease: none). Blocks.
    pub(crate) fn check_lease_keys(&self, context: &Context, lease: i64) -> EtcdResult<()> {
        let Some(id) = lease_id(lease) else {
            return Ok(());
        };
        if self.unrestricted() {
            return Ok(());
        }
        let Some(status) = context.db().time_to_live(id)? else {
            return Ok(());
        };
        for key in &status.keys {
            self.check(Access::Write, key, &[])?;
        }
        Ok(())
    }
}
