//! A [`reqwest_middleware`] adapter: a `ClientWithMiddleware` whose requests to the API carry
//! the token, with the same refresh and retry as [`Client::execute`].

use crate::Client;
use crate::client::After;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

/// Attaches the [`Client`]'s access token to every request for the API's origin (refreshing
/// first when it has nearly expired), and on a 401 `token_not_valid` refreshes once and sends
/// the request again once (if its body can be copied). Requests to any other origin pass
/// through untouched, without the token. The client's own errors (not logged in, the login
/// ended) come back as `reqwest_middleware::Error::Middleware` wrapping a
/// [`crate::Error`] (use `downcast_ref`).
///
/// ```no_run
/// # async fn run(client: sekisho_client::Client) -> reqwest_middleware::Result<()> {
/// let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(client.middleware())
///     .build();
/// let res = api.get("http://127.0.0.1:8000/api/auth/me/").send().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    client: Client,
}

impl Client {
    /// This client as a `reqwest-middleware` middleware.
    pub fn middleware(&self) -> AuthMiddleware {
        AuthMiddleware {
            client: self.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if !self.client.is_api_url(req.url()) {
            return next.run(req, extensions).await;
        }
        let p = self
            .client
            .prepare(req)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let res = next.clone().run(p.request, extensions).await?;
        match self
            .client
            .after(res, &p.token, p.retry)
            .await
            .map_err(reqwest_middleware::Error::middleware)?
        {
            After::Done(res) => Ok(res),
            After::Retry(again) => next.run(again, extensions).await,
        }
    }
}
