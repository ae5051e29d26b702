//! Everything sekisho reads off a request before a handler runs, each computed once per request
//! and kept in its extensions: the request details ([`request`]), who is calling
//! ([`identity`]), the session the cookie names ([`session`]) and the CSRF binding ([`csrf`]); permission guards ([`guard`]).
//! Dependencies run one way: `identity` → `csrf` → `session` → `exchange` → `request`.

pub mod csrf;
pub mod exchange;
pub mod guard;
pub mod identity;
pub mod request;
pub mod session;

pub use guard::{ObjectPermission, Permission, RequireObjectPerm, RequirePerm};
pub use identity::{AuthUser, Identity, MaybeUser};
pub use request::RequestMeta;
