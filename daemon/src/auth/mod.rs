//! Authentication and role-based access (etcd's auth store).
//!
//! Users, roles, the enabled flag and the auth revision change only by applied raft entries,
//! and live in the `meta` column family (`auth/enabled`, `auth/revision`, `auth/user/<name>`,
//! `auth/role/<name>`), so every member holds the same store. Passwords are bcrypt hashes made
//! by the member that received the request, before proposing (etcd 3.5's `hashedPassword`).
//! Simple tokens are assigned through raft too, so any member accepts them; each member
//! expires them after `--auth-token-ttl` seconds without use.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::EtcdError;

pub const ROOT_USER: &str = "root";
pub const ROOT_ROLE: &str = "root";

/// etcd's permission types (authpb.Permission.Type).
pub const READ: i32 = 0;
pub const WRITE: i32 = 1;
pub const READWRITE: i32 = 2;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// bcrypt hash; empty for a user without password.
    pub password: Vec<u8>,
    /// Sorted.
    pub roles: Vec<String>,
    pub no_password: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Perm {
    pub perm_type: i32,
    pub key: Vec<u8>,
    /// Empty: the single key; `[0]`: every key from `key` on.
    pub range_end: Vec<u8>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Sorted by key.
    pub perms: Vec<Perm>,
}

#[derive(Default, Clone)]
struct State {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
}

/// Who sent a request: the token's user and the auth revision the token was checked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

pub struct AuthStore {
    state: RwLock<State>,
    /// Simple token -> (user, expiry).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    token_ttl: Duration,
}

pub fn user_key(name: &str) -> String {
    format!("auth/user/{name}")
}

pub fn role_key(name: &str) -> String {
    format!("auth/role/{name}")
}

/// What an applied auth change writes to the `meta` column family.
pub enum MetaWrite {
    Put(String, Vec<u8>),
    Delete(String),
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).unwrap_or_default()
}

impl AuthStore {
    pub fn new(token_ttl: Duration) -> AuthStore {
        AuthStore {
            state: RwLock::new(State::default()),
            tokens: Mutex::new(HashMap::new()),
            token_ttl,
        }
    }

    /// Loads (or reloads, after a snapshot install) the store from the backend.
    pub fn load(&self, backend: &crate::backend::Backend) -> Result<(), String> {
        let users: Vec<User> = backend
            .meta_with_prefix("auth/user/")
            .map_err(|e| e.to_string())?;
        let roles: Vec<Role> = backend
            .meta_with_prefix("auth/role/")
            .map_err(|e| e.to_string())?;
        let s = State {
            enabled: backend
                .get_meta::<bool>("auth/enabled")
                .map_err(|e| e.to_string())?
                .unwrap_or(false),
            revision: backend
                .get_meta::<u64>("auth/revision")
                .map_err(|e| e.to_string())?
                .unwrap_or(0),
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
        };
        if !s.enabled {
            self.tokens.lock().clear();
        }
        *self.state.write() = s;
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.state.read().enabled
    }

    pub fn revision(&self) -> u64 {
        self.state.read().revision
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.state.read().users.get(name).cloned()
    }

    pub fn role(&self, name: &str) -> Option<Role> {
        self.state.read().roles.get(name).cloned()
    }

    pub fn users(&self) -> Vec<String> {
        self.state.read().users.keys().cloned().collect()
    }

    pub fn roles(&self) -> Vec<String> {
        self.state.read().roles.keys().cloned().collect()
    }

    /// The user of a token, refreshing its lifetime; `None` for an unknown or expired token.
    pub fn token_user(&self, token: &str) -> Option<String> {
        let mut t = self.tokens.lock();
        let now = Instant::now();
        match t.get_mut(token) {
            Some((user, expiry)) if *expiry > now => {
                *expiry = now + self.token_ttl;
                Some(user.clone())
            }
            Some(_) => {
                t.remove(token);
                None
            }
            None => None,
        }
    }

    /// The request's identity when auth is enabled: from its token, if any.
    pub fn auth_info(&self, token: Option<&str>) -> Result<Option<AuthInfo>, EtcdError> {
        // A token is checked even with auth off, as etcd checks it: tokens go when auth is
        // disabled, so a client still sending one learns it is stale.
        let Some(token) = token else {
            return Ok(None);
        };
        let user = self.token_user(token).ok_or(EtcdError::InvalidAuthToken)?;
        if !self.enabled() {
            return Ok(None);
        }
        Ok(Some(AuthInfo {
            user,
            revision: self.revision(),
        }))
    }

    /// Checks a password (for Authenticate, before a token is proposed).
    pub fn check_password(&self, name: &str, password: &str) -> Result<(), EtcdError> {
        let user = {
            let s = self.state.read();
            if !s.enabled {
                return Err(EtcdError::AuthNotEnabled);
            }
            s.users.get(name).cloned().ok_or(EtcdError::AuthFailed)?
        };
        if user.no_password {
            return Err(EtcdError::NoPasswordUser);
        }
        let hash = String::from_utf8_lossy(&user.password).into_owned();
        match bcrypt::verify(password, &hash) {
            Ok(true) => Ok(()),
            _ => Err(EtcdError::AuthFailed),
        }
    }

    fn has_root_role(s: &State, user: &str) -> bool {
        s.users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == ROOT_ROLE))
    }

    /// etcd's `IsAdminPermitted`.
    pub fn check_admin(&self, ai: &Option<AuthInfo>) -> Result<(), EtcdError> {
        let s = self.state.read();
        if !s.enabled {
            return Ok(());
        }
        let Some(ai) = ai.as_ref().filter(|a| !a.user.is_empty()) else {
            return Err(EtcdError::UserEmpty);
        };
        if !s.users.contains_key(&ai.user) {
            return Err(EtcdError::UserNotFound);
        }
        if !Self::has_root_role(&s, &ai.user) {
            return Err(EtcdError::PermissionDenied);
        }
        Ok(())
    }

    pub fn user_has_role(&self, user: &str, role: &str) -> bool {
        self.state
            .read()
            .users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// etcd's `isOpPermitted`: may `ai` read (`READ`) or write (`WRITE`) all of `[key, end)`?
    pub fn check_range(
        &self,
        ai: &Option<AuthInfo>,
        key: &[u8],
        end: &[u8],
        want: i32,
    ) -> Result<(), EtcdError> {
        let s = self.state.read();
        if !s.enabled {
            return Ok(());
        }
        let Some(ai) = ai.as_ref().filter(|a| a.revision != 0) else {
            return Err(EtcdError::UserEmpty);
        };
        if ai.revision < s.revision {
            return Err(EtcdError::AuthOldRevision);
        }
        let Some(user) = s.users.get(&ai.user) else {
            return Err(EtcdError::PermissionDenied);
        };
        if user.roles.iter().any(|r| r == ROOT_ROLE) {
            return Ok(());
        }
        let mut intervals: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for role in user.roles.iter().filter_map(|r| s.roles.get(r)) {
            for p in &role.perms {
                if p.perm_type != want && p.perm_type != READWRITE {
                    continue;
                }
                intervals.push(interval(&p.key, &p.range_end));
            }
        }
        if covered(&intervals, key, end) {
            Ok(())
        } else {
            Err(EtcdError::PermissionDenied)
        }
    }

    /// Registers a token assigned through raft.
    pub fn assign_token(&self, token: &str, user: &str) {
        self.tokens.lock().insert(
            token.to_string(),
            (user.to_string(), Instant::now() + self.token_ttl),
        );
    }

    fn invalidate_user(&self, user: &str) {
        self.tokens.lock().retain(|_, (u, _)| u != user);
    }

    // ---- applied changes: each returns the meta writes to make in the same batch ----

    fn commit_revision(s: &mut State, w: &mut Vec<MetaWrite>) {
        s.revision += 1;
        w.push(MetaWrite::Put("auth/revision".into(), encode(&s.revision)));
    }

    pub fn enable(&self) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        if s.enabled {
            return Ok(Vec::new());
        }
        let root = s.users.get(ROOT_USER).ok_or(EtcdError::RootUserNotExist)?;
        if !root.roles.iter().any(|r| r == ROOT_ROLE) {
            return Err(EtcdError::RootRoleNotExist);
        }
        s.enabled = true;
        Ok(vec![MetaWrite::Put("auth/enabled".into(), encode(&true))])
    }

    pub fn disable(&self) -> Vec<MetaWrite> {
        let mut s = self.state.write();
        if !s.enabled {
            return Vec::new();
        }
        s.enabled = false;
        let mut w = vec![MetaWrite::Put("auth/enabled".into(), encode(&false))];
        Self::commit_revision(&mut s, &mut w);
        drop(s);
        self.tokens.lock().clear();
        w
    }

    pub fn user_add(
        &self,
        name: &str,
        hashed: Vec<u8>,
        no_password: bool,
    ) -> Result<Vec<MetaWrite>, EtcdError> {
        if name.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        let mut s = self.state.write();
        if s.users.contains_key(name) {
            return Err(EtcdError::UserAlreadyExist);
        }
        let u = User {
            name: name.to_string(),
            password: if no_password { Vec::new() } else { hashed },
            roles: Vec::new(),
            no_password,
        };
        let mut w = vec![MetaWrite::Put(user_key(name), encode(&u))];
        s.users.insert(name.to_string(), u);
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn user_delete(&self, name: &str) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        if s.enabled && name == ROOT_USER {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        if s.users.remove(name).is_none() {
            return Err(EtcdError::UserNotFound);
        }
        let mut w = vec![MetaWrite::Delete(user_key(name))];
        Self::commit_revision(&mut s, &mut w);
        drop(s);
        self.invalidate_user(name);
        Ok(w)
    }

    pub fn user_change_password(
        &self,
        name: &str,
        hashed: Vec<u8>,
    ) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        let u = s.users.get_mut(name).ok_or(EtcdError::UserNotFound)?;
        if !u.no_password {
            u.password = hashed;
        }
        let mut w = vec![MetaWrite::Put(user_key(name), encode(&*u))];
        Self::commit_revision(&mut s, &mut w);
        drop(s);
        self.invalidate_user(name);
        Ok(w)
    }

    pub fn user_grant_role(&self, name: &str, role: &str) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        if !s.users.contains_key(name) {
            return Err(EtcdError::UserNotFound);
        }
        if role != ROOT_ROLE && !s.roles.contains_key(role) {
            return Err(EtcdError::RoleNotFound);
        }
        let Some(u) = s.users.get_mut(name) else {
            return Err(EtcdError::UserNotFound);
        };
        if let Err(i) = u.roles.binary_search_by(|r| r.as_str().cmp(role)) {
            u.roles.insert(i, role.to_string());
        } else {
            return Ok(Vec::new());
        }
        let mut w = vec![MetaWrite::Put(user_key(name), encode(&*u))];
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn user_revoke_role(&self, name: &str, role: &str) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        if s.enabled && name == ROOT_USER && role == ROOT_ROLE {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        let u = s.users.get_mut(name).ok_or(EtcdError::UserNotFound)?;
        let before = u.roles.len();
        u.roles.retain(|r| r != role);
        if u.roles.len() == before {
            return Err(EtcdError::RoleNotGranted);
        }
        let mut w = vec![MetaWrite::Put(user_key(name), encode(&*u))];
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn role_add(&self, name: &str) -> Result<Vec<MetaWrite>, EtcdError> {
        if name.is_empty() {
            return Err(EtcdError::RoleEmpty);
        }
        let mut s = self.state.write();
        if s.roles.contains_key(name) {
            return Err(EtcdError::RoleAlreadyExist);
        }
        let r = Role {
            name: name.to_string(),
            perms: Vec::new(),
        };
        let mut w = vec![MetaWrite::Put(role_key(name), encode(&r))];
        s.roles.insert(name.to_string(), r);
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn role_delete(&self, name: &str) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        if s.enabled && name == ROOT_ROLE {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        if s.roles.remove(name).is_none() {
            return Err(EtcdError::RoleNotFound);
        }
        let mut w = vec![MetaWrite::Delete(role_key(name))];
        for u in s.users.values_mut() {
            let before = u.roles.len();
            u.roles.retain(|r| r != name);
            if u.roles.len() != before {
                w.push(MetaWrite::Put(user_key(&u.name), encode(&*u)));
            }
        }
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn role_grant(&self, name: &str, p: Perm) -> Result<Vec<MetaWrite>, EtcdError> {
        if !valid_range(&p.key, &p.range_end) {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        let mut s = self.state.write();
        let r = s.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
        let i = r.perms.partition_point(|x| x.key < p.key);
        match r.perms.get_mut(i) {
            Some(x) if x.key == p.key && x.range_end == p.range_end => x.perm_type = p.perm_type,
            _ => {
                r.perms.push(p);
                r.perms.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        let mut w = vec![MetaWrite::Put(role_key(name), encode(&*r))];
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }

    pub fn role_revoke(
        &self,
        name: &str,
        key: &[u8],
        end: &[u8],
    ) -> Result<Vec<MetaWrite>, EtcdError> {
        let mut s = self.state.write();
        let r = s.roles.get_mut(name).ok_or(EtcdError::RoleNotFound)?;
        let before = r.perms.len();
        r.perms.retain(|p| !(p.key == key && p.range_end == end));
        if r.perms.len() == before {
            return Err(EtcdError::PermissionNotGranted);
        }
        let mut w = vec![MetaWrite::Put(role_key(name), encode(&*r))];
        Self::commit_revision(&mut s, &mut w);
        Ok(w)
    }
}

/// etcd's `isValidPermissionRange`.
fn valid_range(key: &[u8], end: &[u8]) -> bool {
    if key.is_empty() {
        return false;
    }
    end.is_empty() || key < end || end == [0]
}

/// A permission as an interval: `[key, end)`; `None` as end means unbounded.
fn interval(key: &[u8], end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    if end.is_empty() {
        let mut e = key.to_vec();
        e.push(0);
        (key.to_vec(), Some(e))
    } else if end == [0] {
        (key.to_vec(), None)
    } else {
        (key.to_vec(), Some(end.to_vec()))
    }
}

/// Whether the union of `intervals` covers the request range (a single key when `end` is
/// empty; up to the end of the key space when it is `[0]`).
fn covered(intervals: &[(Vec<u8>, Option<Vec<u8>>)], key: &[u8], end: &[u8]) -> bool {
    let (want_start, want_end) = interval(key, end);
    let mut sorted = intervals.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for (s, e) in sorted {
        if let Some(last) = merged.last_mut() {
            let touches = match &last.1 {
                None => true,
                Some(le) => s <= *le,
            };
            if touches {
                last.1 = match (&last.1, &e) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b).clone()),
                };
                continue;
            }
        }
        merged.push((s, e));
    }
    merged.iter().any(|(s, e)| {
        *s <= want_start
            && match (e, &want_end) {
                (None, _) => true,
                (Some(e), Some(w)) => e >= w,
                (Some(_), None) => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(k: &str, e: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        interval(k.as_bytes(), e.as_bytes())
    }

    #[test]
    fn ranges_are_covered_by_the_union_of_permissions() {
        let p = vec![iv("a", "c"), iv("c", "e"), iv("x", "")];
        assert!(covered(&p, b"a", b""));
        assert!(covered(&p, b"b", b"e"));
        assert!(!covered(&p, b"b", b"f"));
        assert!(covered(&p, b"x", b""));
        assert!(!covered(&p, b"x", b"y"));
        assert!(!covered(&p, b"0", b""));
        let open = vec![interval(b"m", &[0])];
        assert!(covered(&open, b"z", &[0]));
        assert!(!covered(&open, b"a", b""));
    }
}
