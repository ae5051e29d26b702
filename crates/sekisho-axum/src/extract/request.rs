//! Facts about a request that the security checks need: is it HTTPS, what is the server's own
//! origin, who is the client. `X-Forwarded-*` headers are believed only from trusted proxies
//! (`server.trusted_proxies`), otherwise any client could claim to be anyone. Computed once per
//! request and kept in its extensions.

use crate::state::HttpSettings;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub secure: bool,
    /// `scheme://host[:port]` as a browser would write this server's origin.
    pub own_origin: String,
    pub client_ip: String,
    pub user_agent: String,
    /// The peer is a trusted proxy: its `X-Forwarded-*` / `X-Original-*` headers count.
    pub from_proxy: bool,
}

/// The request's [`RequestMeta`], computed on first use.
pub fn meta(parts: &mut Parts, http: &HttpSettings) -> Arc<RequestMeta> {
    if let Some(m) = parts.extensions.get::<Arc<RequestMeta>>() {
        return m.clone();
    }
    let m = Arc::new(compute(parts, http));
    parts.extensions.insert(m.clone());
    m
}

fn compute(parts: &Parts, http: &HttpSettings) -> RequestMeta {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let from_proxy = peer.is_some_and(|ip| is_trusted(ip, &http.trusted_proxies));
    let headers = &parts.headers;
    let forwarded_proto = from_proxy
        .then(|| first_value(headers, "x-forwarded-proto"))
        .flatten();
    let secure = match forwarded_proto {
        Some(p) => p.eq_ignore_ascii_case("https"),
        None => parts.uri.scheme_str() == Some("https"),
    };
    let host = from_proxy
        .then(|| first_value(headers, "x-forwarded-host"))
        .flatten()
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let client_ip = from_proxy
        .then(|| first_value(headers, "x-forwarded-for"))
        .flatten()
        .filter(|v| v.parse::<IpAddr>().is_ok())
        .or_else(|| peer.map(|p| p.to_string()))
        .unwrap_or_default();
    RequestMeta {
        secure,
        own_origin: format!("{}://{}", if secure { "https" } else { "http" }, host),
        client_ip,
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        from_proxy,
    }
}

/// The first (client-most) value of a comma-separated forwarding header.
pub(crate) fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let first = v.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_string())
}

/// `trusted` holds addresses (`10.0.0.1`) or networks (`10.0.0.0/8`, `::1/128`).
pub fn is_trusted(ip: IpAddr, trusted: &[String]) -> bool {
    trusted.iter().any(|t| match t.split_once('/') {
        None => t.parse::<IpAddr>().is_ok_and(|a| a == ip),
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (Ok(IpAddr::V4(n)), Ok(b)) if b <= 32 => match ip {
                IpAddr::V4(a) => b == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - b) == 0,
                _ => false,
            },
            (Ok(IpAddr::V6(n)), Ok(b)) if b <= 128 => match ip {
                IpAddr::V6(a) => b == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - b) == 0,
                _ => false,
            },
            _ => false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxy_matching() {
        let t = vec![
            "10.0.0.0/8".to_string(),
            "192.168.1.5".to_string(),
            "::1/128".to_string(),
        ];
        assert!(is_trusted("10.1.2.3".parse().unwrap(), &t));
        assert!(!is_trusted("11.0.0.1".parse().unwrap(), &t));
        assert!(is_trusted("192.168.1.5".parse().unwrap(), &t));
        assert!(!is_trusted("192.168.1.6".parse().unwrap(), &t));
        assert!(is_trusted("::1".parse().unwrap(), &t));
        assert!(!is_trusted("127.0.0.1".parse().unwrap(), &[]));
    }
}
