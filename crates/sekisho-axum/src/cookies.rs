//! Every cookie sekisho reads or writes, with its attributes, in this one file: `sessionid`,
//! `csrftoken` and the optional refresh-token cookie (DESIGN §3.3, §3.4). Written by hand: three
//! cookies with fixed, audited attributes are less code than configuring a general cookie jar.

use crate::state::HttpSettings;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use sekisho_core::config::SecureCookies;
use std::time::Duration;

/// Django's `CSRF_COOKIE_AGE`: one year.
pub const CSRF_COOKIE_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where refresh tokens travel as a cookie: every token endpoint, and nothing else.
pub const REFRESH_COOKIE_PATH: &str = "/api/token/";

/// The value of cookie `name` in the request (the first one, as browsers send the most specific
/// path first).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
}

/// One `Set-Cookie` value.
#[derive(Clone, Debug)]
pub struct SetCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    /// `None`: a browser-session cookie. `Some(ZERO)`: delete.
    pub max_age: Option<Duration>,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: SameSite,
}

impl SetCookie<'_> {
    pub fn render(&self) -> String {
        let mut s = format!("{}={}; Path={}", self.name, self.value, self.path);
        if let Some(age) = self.max_age {
            s.push_str(&format!("; Max-Age={}", age.as_secs()));
            if age.is_zero() {
                s.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            }
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        s.push_str(match self.same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
        });
        s
    }

    pub fn append_to(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.render()) {
            headers.append(SET_COOKIE, v);
        }
    }
}

/// The `Set-Cookie` headers of one response, with the attributes each cookie always has.
pub struct Jar<'a> {
    http: &'a HttpSettings,
    secure: bool,
    headers: HeaderMap,
}

impl<'a> Jar<'a> {
    /// `https` says whether the request came over HTTPS (directly or via a trusted proxy):
    /// with `sessions.secure_cookies = auto`, that decides the `Secure` attribute.
    pub fn new(http: &'a HttpSettings, https: bool) -> Self {
        let secure = match http.secure_cookies {
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::Auto => https,
        };
        Jar {
            http,
            secure,
            headers: HeaderMap::new(),
        }
    }

    /// `sessionid`: HttpOnly, SameSite=Lax, Path=/.
    pub fn set_session(&mut self, value: &str, max_age: Duration) {
        self.add(SetCookie {
            name: &self.http.session_cookie,
            value,
            path: "/",
            max_age: Some(max_age),
            http_only: true,
            secure: self.secure,
            same_site: SameSite::Lax,
        });
    }

    pub fn clear_session(&mut self) {
        self.set_session("", Duration::ZERO);
    }

    /// `csrftoken`: readable by JavaScript (the SPA copies it into the header), SameSite=Lax.
    pub fn set_csrf(&mut self, token: &str) {
        self.add(SetCookie {
            name: &self.http.csrf_cookie,
            value: token,
            path: "/",
            max_age: Some(CSRF_COOKIE_AGE),
            http_only: false,
            secure: self.secure,
            same_site: SameSite::Lax,
        });
    }

    /// The refresh token (cookie mode only; a no-op otherwise): HttpOnly, SameSite=Strict,
    /// scoped to the token endpoints.
    pub fn set_refresh(&mut self, value: &str, max_age: Duration) {
        let Some(name) = &self.http.refresh_cookie else {
            return;
        };
        self.add(SetCookie {
            name,
            value,
            path: REFRESH_COOKIE_PATH,
            max_age: Some(max_age),
            http_only: true,
            secure: self.secure,
            same_site: SameSite::Strict,
        });
    }

    pub fn clear_refresh(&mut self) {
        self.set_refresh("", Duration::ZERO);
    }

    fn add(&mut self, c: SetCookie) {
        c.append_to(&mut self.headers);
    }

    pub fn into_headers(self) -> HeaderMap {
        self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; sessionid=abc; csrftoken=\"x\""),
        );
        assert_eq!(get(&h, "sessionid"), Some("abc"));
        assert_eq!(get(&h, "csrftoken"), Some("x"));
        assert_eq!(get(&h, "session"), None);
    }

    #[test]
    fn renders_attributes() {
        let c = SetCookie {
            name: "sessionid",
            value: "v",
            path: "/",
            max_age: Some(Duration::from_secs(60)),
            http_only: true,
            secure: true,
            same_site: SameSite::Lax,
        };
        assert_eq!(
            c.render(),
            "sessionid=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
