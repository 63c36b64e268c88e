//! etcd's client-visible errors: one enum, each variant carrying etcd's gRPC code and exact message.
//!
//! Errors decided while applying a raft entry travel back to the proposer inside the apply
//! result, so the enum is serializable.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: unhealthy cluster")]
    UnhealthyCluster,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// etcd's message; the detail goes to the log.
    #[error("etcdserver: given member URLs are invalid")]
    BadPeerUrls(String),
    /// The member cannot reach what it needs (e.g. the leader); the message says what.
    #[error("etcdserver: {0}")]
    Unavailable(String),
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// etcd passes this one through untranslated (code Unknown).
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// A storage or internal failure; the message says what failed.
    #[error("etcdserver: {0}")]
    Internal(String),
    /// An error etcd reports with its bare message and code Unknown (lock and election).
    #[error("{0}")]
    Plain(String),
    /// An RPC or option this member does not implement yet.
    #[error("{0}")]
    Unimplemented(String),
    // New variants go last: members pass these to each other (bincode, by variant index).
    /// The leader was lost while it had the request (it may or may not have been applied).
    #[error("etcdserver: request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    /// A leadership transfer did not complete (the detail is logged).
    #[error("etcdserver: request timed out, leader transfer took too long")]
    TimeoutLeaderTransfer,
}

impl EtcdError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> Code {
        use EtcdError::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey
            | RequestTooLarge | InvalidSortOption => Code::InvalidArgument,
            Compacted | FutureRev | LeaseTtlTooLarge => Code::OutOfRange,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExists | MemberExists | PeerUrlExists | TooManyLearners | MemberNotLearner
            | LearnerNotReady | BadLeaderTransferee => Code::FailedPrecondition,
            BadPeerUrls(_) => Code::InvalidArgument,
            NoSpace => Code::ResourceExhausted,
            Corrupt => Code::DataLoss,
            NoLeader
            | Timeout
            | TimeoutDueToLeaderFail
            | Stopped
            | NotLeader
            | Unavailable(_)
            | UnhealthyCluster
            | NotSupportedForLearner => Code::Unavailable,
            RootUserNotExist | RootRoleNotExist | UserAlreadyExist | UserNotFound
            | RoleAlreadyExist | RoleNotFound | RoleNotGranted | PermissionNotGranted
            | AuthNotEnabled => Code::FailedPrecondition,
            UserEmpty | RoleEmpty | AuthFailed | PermissionNotGiven | InvalidAuthMgmt
            | AuthOldRevision => Code::InvalidArgument,
            PermissionDenied => Code::PermissionDenied,
            InvalidAuthToken => Code::Unauthenticated,
            // etcd 3.4 has no gRPC error for a failed transfer and answers Unknown; clients
            // of either version recognise it by its message.
            Internal(_) | Plain(_) | NoPasswordUser | TimeoutLeaderTransfer => Code::Unknown,
            Unimplemented(_) => Code::Unimplemented,
        }
    }
}

impl From<EtcdError> for Status {
    fn from(e: EtcdError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}
