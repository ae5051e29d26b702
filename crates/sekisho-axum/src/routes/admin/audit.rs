//! `GET /api/admin/audit/`: the record of administrative actions, newest first.

use super::Caller;
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use sekisho_core::authz::AuditQuery;
use sekisho_core::authz::admin::AdminArea;
use serde_json::Value;

/// `?actor=&action=&target=&page=&page_size=`; entries as core serialises them (`at` in
/// milliseconds since the epoch).
pub async fn audit(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let admin = caller.admin(AdminArea::Audit)?;
    let q = caller.query();
    let mut errors = FieldErrors::default();
    let actor = q.text("actor", &mut errors);
    let action = q.text("action", &mut errors);
    let target = q.text("target", &mut errors);
    errors.check()?;
    let w = caller.window()?;
    let filter = AuditQuery {
        actor,
        action,
        target,
        offset: w.offset,
        limit: w.size,
    };
    let page = state.auth.admin_audit(admin, &filter).await?;
    let page = caller.page(&w, page, |e| serde_json::json!(e))?;
    Ok(Json(page))
}
