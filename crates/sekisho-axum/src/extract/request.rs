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

/// [`RequestMeta`] as an extractor, for handlers that need the client's address.
pub struct ClientMeta(pub Arc<RequestMeta>);

impl<S> axum::extract::FromRequestParts<S> for ClientMeta
where
    S: Send + Sync,
    crate::state::AppState: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = <crate::state::AppState as axum::extract::FromRef<S>>::from_ref(state);
        Ok(ClientMeta(meta(parts, &state.http)))
    }
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
    let client_ip = match peer {
        Some(peer) if from_proxy => {
            forwarded_client(headers, peer, &http.trusted_proxies).to_string()
        }
        Some(peer) => peer.to_string(),
        None => String::new(),
    };
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

/// The client behind a trusted proxy: `X-Forwarded-For` walked from the right (each proxy
/// appends the address it saw), skipping trusted proxies; the first address that is not one is
/// the client. Everything left of it was written by the client and proves nothing. An entry
/// that is not an address ends the walk at the last trusted hop.
fn forwarded_client(headers: &HeaderMap, peer: IpAddr, trusted: &[String]) -> IpAddr {
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    client
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

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_address() {
        let trusted = vec!["127.0.0.1".to_string(), "10.0.0.0/8".to_string()];
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let client = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            forwarded_client(&h, peer, &trusted).to_string()
        };
        // The left-most entry is whatever the client wrote: never believed over a later hop.
        assert_eq!(client(&["10.9.1.1, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(&["1.2.3.4, 203.0.113.7, 10.0.0.2"]), "203.0.113.7");
        // Several header lines are one list, in order.
        assert_eq!(
            client(&["1.2.3.4", "203.0.113.7", "10.0.0.2"]),
            "203.0.113.7"
        );
        assert_eq!(client(&["203.0.113.7"]), "203.0.113.7");
        // Every hop trusted: the farthest one.
        assert_eq!(client(&["10.0.0.3, 10.0.0.2"]), "10.0.0.3");
        // Garbage ends the walk at the last trusted hop; no header: the peer.
        assert_eq!(client(&["203.0.113.7, junk, 10.0.0.2"]), "10.0.0.2");
        assert_eq!(client(&["junk"]), "127.0.0.1");
        assert_eq!(client(&[]), "127.0.0.1");
    }
}
