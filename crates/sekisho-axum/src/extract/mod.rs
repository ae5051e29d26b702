//! Everything sekisho reads off a request before a handler runs, each computed once per request
//! and kept in its extensions: the request details ([`request`]), who is calling
//! ([`identity`]), and the CSRF binding ([`csrf`]).

pub mod csrf;
pub mod identity;
pub mod request;

pub use identity::{AuthUser, Identity, MaybeUser};
pub use request::RequestMeta;
