//! Permission guards for an embedding application's handlers, with the same semantics as the
//! forward-auth gate and `POST /api/authz/check/`: name the permission in a type, take the
//! guard as an extractor, and the handler only runs when the caller holds it.
//!
//! ```ignore
//! struct ChangeOrder;
//! impl ObjectPermission for ChangeOrder {
//!     const CODENAME: &'static str = "shop.change_order";
//!     const SEGMENT: &'static str = "id"; // the route's `{id}`
//! }
//! async fn update(RequireObjectPerm(user, ..): RequireObjectPerm<ChangeOrder>) { … }
//! ```

use super::identity::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use sekisho_core::AuthError;
use sekisho_core::authz::{ObjectRef, object_type_of};
use std::marker::PhantomData;

/// A model-wide permission named at compile time.
pub trait Permission: Send + Sync + 'static {
    /// `app.action_model`.
    const CODENAME: &'static str;
}

/// A per-object permission whose object id is a path segment of the route.
pub trait ObjectPermission: Send + Sync + 'static {
    const CODENAME: &'static str;
    /// The route's segment holding the object id (`id` for `/orders/{id}/`).
    const SEGMENT: &'static str;
    /// `app.model`; `None` takes it from the codename (`shop.change_order` → `shop.order`).
    const OBJECT_TYPE: Option<&'static str> = None;
}

/// The caller, who holds `P` (Django's `has_perm`); else 401 for anonymous, 403 otherwise.
pub struct RequirePerm<P>(pub AuthUser, pub PhantomData<P>);

impl<S, P> FromRequestParts<S> for RequirePerm<P>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    P: Permission,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require_perm(P::CODENAME)?;
        Ok(RequirePerm(user, PhantomData))
    }
}

/// The caller, who may act on the object the path names (guardian's check: an active
/// superuser, a model-wide grant, or a grant on this object to the user or a group), and that
/// object's id.
pub struct RequireObjectPerm<P>(pub AuthUser, pub String, pub PhantomData<P>);

impl<S, P> FromRequestParts<S> for RequireObjectPerm<P>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    P: ObjectPermission,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let id = params
            .iter()
            .find(|(name, _)| *name == P::SEGMENT)
            .map(|(_, v)| v.to_string())
            .ok_or(ApiError::NotFound)?;
        let object_type = P::OBJECT_TYPE
            .map(str::to_string)
            .or_else(|| object_type_of(P::CODENAME))
            .ok_or_else(|| AuthError::Internal(format!("no object type for {}", P::CODENAME)))?;
        let app = AppState::from_ref(state);
        user.require_object_perm(&app, P::CODENAME, &object_type, &id)
            .await?;
        Ok(RequireObjectPerm(user, id, PhantomData))
    }
}

impl AuthUser {
    /// The object check as a guard: 403 unless the user may act on the object.
    pub async fn require_object_perm(
        &self,
        state: &AppState,
        codename: &str,
        object_type: &str,
        object_id: &str,
    ) -> Result<(), ApiError> {
        let object = ObjectRef {
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
        };
        if state
            .auth
            .has_object_perm(&self.user, codename, &object)
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied.into())
        }
    }
}
