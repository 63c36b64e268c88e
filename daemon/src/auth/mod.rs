//! Authentication and role-based access (etcd's auth store). Auth is disabled, as in a fresh
//! etcd; the Auth service answers UNIMPLEMENTED until this module lands.
