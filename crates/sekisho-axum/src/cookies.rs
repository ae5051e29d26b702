//! Cookies, read and written by hand: sekisho sets two cookies with fixed, audited attributes,
//! which is less code than configuring a general cookie jar.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use std::time::Duration;

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
