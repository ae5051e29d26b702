//! The dual-run's session exchange (see `sekisho_core::import::dualrun`): a `sessionid` cookie
//! that names no sekisho session but has the shape of a Django session key is offered to
//! [`sekisho_core::Auth::exchange_django_session`] by [`super::session::session_of`], so any
//! request that wants a session can exchange it; the new session's cookies then have to reach
//! the browser on that request's response, whatever the handler answers. [`layer`] is what
//! carries them: it marks the requests worth trying (a Django-shaped cookie) with a slot and
//! adds the cookies from it to the response. Without the layer nothing is exchanged (a key
//! spent on a response that cannot deliver its successor would log the user out).

use super::request;
use crate::cookies::{self, Jar};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use sekisho_core::import::signing::plausible_django_key;
use sekisho_core::session::{ActiveSession, Device, NewSession};
use std::sync::{Arc, Mutex};

/// Where the exchange leaves the new session for [`layer`].
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<Option<NewSession>>>);

/// Forward-auth answers go to the proxy, not the browser: their cookies would be lost.
const NOT_HERE: &str = "/api/auth/check";

/// The middleware (`axum::middleware::from_fn_with_state`). [`crate::app`] installs it when
/// `django.*` is configured; an embedding application adds it to its own router the same way.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let candidate = cookies::get(req.headers(), &state.http.session_cookie)
        .is_some_and(plausible_django_key)
        && !req.uri().path().starts_with(NOT_HERE);
    if !candidate {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let secure = request::meta(&mut parts, &state.http).secure;
    let slot = Slot::default();
    parts.extensions.insert(slot.clone());
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let exchanged = slot.0.lock().ok().and_then(|mut s| s.take());
    if let Some(new) = exchanged {
        let sets = |name: &str| {
            response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|v| v.as_bytes().starts_with(format!("{name}=").as_bytes()))
        };
        // A handler that set the session cookie itself (a login, a logout) has the last word.
        let (session_set, csrf_set) = (
            sets(&state.http.session_cookie),
            sets(&state.http.csrf_cookie),
        );
        let mut jar = Jar::new(&state.http, secure);
        if !session_set {
            jar.set_session(&new.cookie, new.cookie_max_age);
        }
        if !session_set && !csrf_set {
            jar.set_csrf(&new.csrf_token);
        }
        // Appended, not `extend`ed: that would replace the handler's own `Set-Cookie`s.
        for v in jar.into_headers().get_all(SET_COOKIE) {
            response.headers_mut().append(SET_COOKIE, v.clone());
        }
    }
    response
}

/// The exchange for a cookie that named no sekisho session: the new session, if the cookie
/// was a live Django session key and [`layer`] can deliver its successor.
pub(crate) async fn exchange(
    parts: &mut Parts,
    state: &AppState,
    cookie: &str,
) -> Result<Option<ActiveSession>, crate::error::ApiError> {
    let Some(slot) = parts.extensions.get::<Slot>().cloned() else {
        return Ok(None);
    };
    let meta = request::meta(parts, &state.http);
    let device = Device {
        user_agent: meta.user_agent.clone(),
        ip: meta.client_ip.clone(),
    };
    let Some(new) = state.auth.exchange_django_session(cookie, device).await? else {
        return Ok(None);
    };
    let active = ActiveSession {
        user: Arc::new(new.user.clone()),
        record: new.record.clone(),
        renewed: false,
    };
    if let Ok(mut s) = slot.0.lock() {
        *s = Some(new);
    }
    Ok(Some(active))
}
