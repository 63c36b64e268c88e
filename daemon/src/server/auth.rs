//! The request path of auth: the Auth service's RPCs (changes through raft, passwords hashed
//! here first), and the permission checks every other request goes through when auth is on.

use base64::Engine;

use super::{AuthApplied, EtcdServer};
use crate::api::authpb;
use crate::api::etcdserverpb::*;
use crate::api::retcdpb::{internal_request::Request as Rq, internal_response::Response as Rs};
use crate::auth::{AuthInfo, READ, WRITE};
use crate::error::EtcdError;

type Ai = Option<AuthInfo>;

impl EtcdServer {
    /// The identity of a request from its `token` metadata (none when auth is off).
    pub fn auth_info(&self, token: Option<&str>) -> Result<Ai, EtcdError> {
        self.auth.auth_info(token)
    }

    async fn auth_change(&self, ai: &Ai, rq: Rq, what: &str) -> Result<ResponseHeader, EtcdError> {
        let AuthApplied(h) = self
            .propose_as(ai, rq, what, |r| match r {
                Rs::Auth(h) => Ok(AuthApplied(Some(h))),
                other => Err(other),
            })
            .await?;
        Ok(h.unwrap_or_default())
    }

    async fn hash_password(&self, password: String) -> Result<String, EtcdError> {
        let cost = self.cfg.bcrypt_cost;
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|e| EtcdError::Internal(format!("hash password: {e}")))?
            .map_err(|e| EtcdError::Internal(format!("hash password: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(hash.as_bytes()))
    }

    pub async fn auth_enable(&self, ai: &Ai) -> Result<AuthEnableResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::AuthEnable(AuthEnableRequest {}), "auth enable")
            .await?;
        Ok(AuthEnableResponse {
            header: Some(header),
        })
    }

    pub async fn auth_disable(&self, ai: &Ai) -> Result<AuthDisableResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::AuthDisable(AuthDisableRequest {}), "auth disable")
            .await?;
        Ok(AuthDisableResponse {
            header: Some(header),
        })
    }

    pub async fn auth_status(&self, ai: &Ai) -> Result<AuthStatusResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        self.linearizable_barrier().await?;
        Ok(AuthStatusResponse {
            header: Some(self.header()),
            enabled: self.auth.enabled(),
            auth_revision: self.auth.revision(),
        })
    }

    /// Checks the password here, then proposes a fresh simple token so every member knows it.
    pub async fn authenticate(
        &self,
        r: AuthenticateRequest,
    ) -> Result<AuthenticateResponse, EtcdError> {
        self.linearizable_barrier().await?;
        let auth = self.auth.clone();
        let (name, password) = (r.name.clone(), r.password);
        tokio::task::spawn_blocking(move || auth.check_password(&name, &password))
            .await
            .map_err(|e| EtcdError::Internal(format!("check password: {e}")))??;
        let token = format!(
            "{}.{}",
            random_letters(16),
            self.raft_metrics().last_log_index.unwrap_or(0) + 1
        );
        let header = self
            .auth_change(
                &None,
                Rq::Authenticate(crate::api::retcdpb::InternalAuthenticateRequest {
                    name: r.name,
                    simple_token: token.clone(),
                }),
                "authenticate",
            )
            .await?;
        // The entry may have been applied by the leader only: wait until this member knows
        // the token too, so the client's next request here is accepted.
        self.linearizable_barrier().await?;
        Ok(AuthenticateResponse {
            header: Some(header),
            token,
        })
    }

    pub async fn user_add(
        &self,
        ai: &Ai,
        mut r: AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        if r.name.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        if !r.options.is_some_and(|o| o.no_password) && r.hashed_password.is_empty() {
            r.hashed_password = self.hash_password(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let header = self.auth_change(ai, Rq::UserAdd(r), "user add").await?;
        Ok(AuthUserAddResponse {
            header: Some(header),
        })
    }

    pub async fn user_delete(
        &self,
        ai: &Ai,
        r: AuthUserDeleteRequest,
    ) -> Result<AuthUserDeleteResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::UserDelete(r), "user delete")
            .await?;
        Ok(AuthUserDeleteResponse {
            header: Some(header),
        })
    }

    pub async fn user_change_password(
        &self,
        ai: &Ai,
        mut r: AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        if r.hashed_password.is_empty() {
            r.hashed_password = self.hash_password(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let header = self
            .auth_change(ai, Rq::UserChangePassword(r), "user change password")
            .await?;
        Ok(AuthUserChangePasswordResponse {
            header: Some(header),
        })
    }

    pub async fn user_grant_role(
        &self,
        ai: &Ai,
        r: AuthUserGrantRoleRequest,
    ) -> Result<AuthUserGrantRoleResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::UserGrantRole(r), "user grant role")
            .await?;
        Ok(AuthUserGrantRoleResponse {
            header: Some(header),
        })
    }

    pub async fn user_revoke_role(
        &self,
        ai: &Ai,
        r: AuthUserRevokeRoleRequest,
    ) -> Result<AuthUserRevokeRoleResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::UserRevokeRole(r), "user revoke role")
            .await?;
        Ok(AuthUserRevokeRoleResponse {
            header: Some(header),
        })
    }

    pub async fn user_get(
        &self,
        ai: &Ai,
        r: AuthUserGetRequest,
    ) -> Result<AuthUserGetResponse, EtcdError> {
        if let Err(e) = self.auth.check_admin(ai) {
            if ai.as_ref().is_none_or(|a| a.user != r.name) {
                return Err(e);
            }
        }
        self.linearizable_barrier().await?;
        let u = self.auth.user(&r.name).ok_or(EtcdError::UserNotFound)?;
        Ok(AuthUserGetResponse {
            header: Some(self.header()),
            roles: u.roles,
        })
    }

    pub async fn user_list(&self, ai: &Ai) -> Result<AuthUserListResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        self.linearizable_barrier().await?;
        Ok(AuthUserListResponse {
            header: Some(self.header()),
            users: self.auth.users(),
        })
    }

    pub async fn role_add(
        &self,
        ai: &Ai,
        r: AuthRoleAddRequest,
    ) -> Result<AuthRoleAddResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self.auth_change(ai, Rq::RoleAdd(r), "role add").await?;
        Ok(AuthRoleAddResponse {
            header: Some(header),
        })
    }

    pub async fn role_delete(
        &self,
        ai: &Ai,
        r: AuthRoleDeleteRequest,
    ) -> Result<AuthRoleDeleteResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::RoleDelete(r), "role delete")
            .await?;
        Ok(AuthRoleDeleteResponse {
            header: Some(header),
        })
    }

    pub async fn role_grant_permission(
        &self,
        ai: &Ai,
        r: AuthRoleGrantPermissionRequest,
    ) -> Result<AuthRoleGrantPermissionResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::RoleGrantPermission(r), "role grant permission")
            .await?;
        Ok(AuthRoleGrantPermissionResponse {
            header: Some(header),
        })
    }

    pub async fn role_revoke_permission(
        &self,
        ai: &Ai,
        r: AuthRoleRevokePermissionRequest,
    ) -> Result<AuthRoleRevokePermissionResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        let header = self
            .auth_change(ai, Rq::RoleRevokePermission(r), "role revoke permission")
            .await?;
        Ok(AuthRoleRevokePermissionResponse {
            header: Some(header),
        })
    }

    pub async fn role_get(
        &self,
        ai: &Ai,
        r: AuthRoleGetRequest,
    ) -> Result<AuthRoleGetResponse, EtcdError> {
        if let Err(e) = self.auth.check_admin(ai) {
            if !ai
                .as_ref()
                .is_some_and(|a| self.auth.user_has_role(&a.user, &r.role))
            {
                return Err(e);
            }
        }
        self.linearizable_barrier().await?;
        let role = self.auth.role(&r.role).ok_or(EtcdError::RoleNotFound)?;
        Ok(AuthRoleGetResponse {
            header: Some(self.header()),
            perm: role
                .perms
                .into_iter()
                .map(|p| authpb::Permission {
                    perm_type: p.perm_type,
                    key: p.key,
                    range_end: p.range_end,
                })
                .collect(),
        })
    }

    pub async fn role_list(&self, ai: &Ai) -> Result<AuthRoleListResponse, EtcdError> {
        self.auth.check_admin(ai)?;
        self.linearizable_barrier().await?;
        Ok(AuthRoleListResponse {
            header: Some(self.header()),
            roles: self.auth.roles(),
        })
    }

    // ---- permission checks for the other services (etcd's authApplierV3) ----

    pub fn check_admin(&self, ai: &Ai) -> Result<(), EtcdError> {
        self.auth.check_admin(ai)
    }

    pub fn check_read(&self, ai: &Ai, key: &[u8], end: &[u8]) -> Result<(), EtcdError> {
        self.auth.check_range(ai, key, end, READ)
    }

    pub fn check_put(&self, ai: &Ai, r: &PutRequest) -> Result<(), EtcdError> {
        if !self.auth.enabled() {
            return Ok(());
        }
        self.auth.check_range(ai, &r.key, &[], WRITE)?;
        if r.prev_kv {
            self.auth.check_range(ai, &r.key, &[], READ)?;
        }
        if r.lease != 0 {
            self.check_lease_keys(ai, r.lease)?;
        }
        Ok(())
    }

    pub fn check_delete(&self, ai: &Ai, r: &DeleteRangeRequest) -> Result<(), EtcdError> {
        if !self.auth.enabled() {
            return Ok(());
        }
        if r.prev_kv {
            self.auth.check_range(ai, &r.key, &r.range_end, READ)?;
        }
        self.auth.check_range(ai, &r.key, &r.range_end, WRITE)
    }

    pub fn check_txn(&self, ai: &Ai, t: &TxnRequest) -> Result<(), EtcdError> {
        if !self.auth.enabled() {
            return Ok(());
        }
        for c in &t.compare {
            self.auth.check_range(ai, &c.key, &c.range_end, READ)?;
        }
        for op in t.success.iter().chain(t.failure.iter()) {
            match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    self.auth.check_range(ai, &r.key, &r.range_end, READ)?
                }
                Some(request_op::Request::RequestPut(p)) => self.check_put(ai, p)?,
                Some(request_op::Request::RequestDeleteRange(d)) => self.check_delete(ai, d)?,
                Some(request_op::Request::RequestTxn(n)) => self.check_txn(ai, n)?,
                None => {}
            }
        }
        Ok(())
    }

    /// Revoking a lease (or attaching keys to it) needs write access to every key it holds,
    /// unless the user is an admin.
    pub fn check_lease_keys(&self, ai: &Ai, lease: i64) -> Result<(), EtcdError> {
        if !self.auth.enabled() || self.auth.check_admin(ai).is_ok() {
            return Ok(());
        }
        let keys = self
            .lessor
            .time_to_live(lease)
            .map(|(_, _, k)| k)
            .unwrap_or_default();
        for key in keys {
            self.auth.check_range(ai, &key, &[], WRITE)?;
        }
        Ok(())
    }
}

/// Letters for simple tokens (etcd: 16 random letters).
fn random_letters(n: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
    bytes
        .iter()
        .map(|b| LETTERS[*b as usize % LETTERS.len()] as char)
        .collect()
}
