//! An axum application that embeds sekisho: its own API routes get the same identity (session
//! cookie with CSRF, or bearer token) and the same permission rules as sekisho's endpoints.
//! It is also the back end of the Vue demo (`examples/vue-spa`): a small shop API (products,
//! orders, a report, dashboard figures) and, with `server.static_dir`, the built SPA itself with
//! history fallback and the first-load `csrftoken` cookie.
//!
//! Run: `cargo run -p embed-axum` (API on 127.0.0.1:3000), then, e.g.
//! `curl -s localhost:3000/api/token/ -H 'content-type: application/json' \
//!    -d '{"username":"demo","password":"demo-password"}'`
//! It reads sekisho's configuration keys from the environment (`SEKISHO_SERVER__BIND`,
//! `SEKISHO_SERVER__STATIC_DIR`, `SEKISHO_JWT__ACCESS_TOKEN_LIFETIME`, …).

use anyhow::Result;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sekisho_axum::body::{Input, Trim};
use sekisho_axum::error::FieldProblem;
use sekisho_axum::{ApiError, AppState, AuthUser};
use sekisho_core::account::NewUser;
use sekisho_core::clock::SystemClock;
use sekisho_core::session::CsrfKey;
use sekisho_core::token::{HmacKey, SignatureAlgorithm};
use sekisho_core::{Auth, Config};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The application's state: sekisho's (for the extractors) plus its own.
#[derive(Clone)]
struct Demo {
    auth: AppState,
    shop: Arc<Shop>,
}

impl FromRef<Demo> for AppState {
    fn from_ref(d: &Demo) -> AppState {
        d.auth.clone()
    }
}

struct Product {
    id: u32,
    name: &'static str,
    price_cents: u64,
}

const PRODUCTS: &[Product] = &[
    Product {
        id: 1,
        name: "Tenugui towel",
        price_cents: 1250,
    },
    Product {
        id: 2,
        name: "Sencha, 100 g",
        price_cents: 980,
    },
    Product {
        id: 3,
        name: "Furoshiki cloth",
        price_cents: 2400,
    },
    Product {
        id: 4,
        name: "Travel pass holder",
        price_cents: 1800,
    },
    Product {
        id: 5,
        name: "Woodblock print",
        price_cents: 6500,
    },
    Product {
        id: 6,
        name: "Straw sandals",
        price_cents: 3200,
    },
];

/// The dashboard's figures: one endpoint each, so the dashboard makes many calls at once.
const METRICS: &[(&str, &str)] = &[
    ("revenue", "JPY"),
    ("orders", "orders"),
    ("visitors", "visitors"),
    ("conversion", "%"),
    ("refunds", "refunds"),
    ("inventory", "items"),
    ("tickets", "open"),
    ("signups", "users"),
    ("latency", "ms"),
    ("uptime", "%"),
    ("returns", "parcels"),
    ("reviews", "reviews"),
];

/// Orders kept in memory, per user: enough for a demo, gone on restart.
#[derive(Default)]
struct Shop {
    orders: Mutex<HashMap<String, Vec<Value>>>,
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn product_json(p: &Product) -> Value {
    json!({ "id": p.id, "name": p.name, "price": money(p.price_cents) })
}

/// Public: the catalogue.
async fn products() -> Json<Value> {
    Json(Value::Array(PRODUCTS.iter().map(product_json).collect()))
}

/// Any signed-in user, by session or bearer token: their own orders.
async fn orders(State(d): State<Demo>, user: AuthUser) -> Json<Value> {
    let mut all = d.shop.orders.lock().expect("orders lock");
    let mine = all.entry(user.username.clone()).or_insert_with(|| {
        vec![json!({ "id": 1, "product": product_json(&PRODUCTS[0]), "quantity": 2, "total": money(2 * PRODUCTS[0].price_cents) })]
    });
    Json(json!({ "owner": user.username, "orders": mine.clone() }))
}

/// Any signed-in user places an order. In session mode the identity extractor has already
/// checked the CSRF token (an unsafe method authenticated by cookie).
async fn place_order(
    State(d): State<Demo>,
    user: AuthUser,
    input: Input,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let [product, quantity] =
        input.strings([("product_id", Trim::Yes), ("quantity", Trim::Yes)])?;
    let product = product
        .parse::<u32>()
        .ok()
        .and_then(|id| PRODUCTS.iter().find(|p| p.id == id))
        .ok_or_else(|| {
            ApiError::field(
                "product_id",
                FieldProblem::Other("Invalid pk - object does not exist.".into()),
            )
        })?;
    let quantity = quantity
        .parse::<u64>()
        .ok()
        .filter(|q| (1..=99).contains(q))
        .ok_or_else(|| {
            ApiError::field(
                "quantity",
                FieldProblem::Other("Ensure this value is between 1 and 99.".into()),
            )
        })?;
    let mut all = d.shop.orders.lock().expect("orders lock");
    let mine = all.entry(user.username.clone()).or_default();
    let order = json!({
        "id": mine.len() + 1,
        "product": product_json(product),
        "quantity": quantity,
        "total": money(quantity * product.price_cents),
    });
    mine.push(order.clone());
    Ok((StatusCode::CREATED, Json(order)))
}

/// Only users holding the Django-style permission `shop.view_report` (or superusers).
async fn report(user: AuthUser) -> Result<Json<Value>, ApiError> {
    user.require_perm("shop.view_report")?;
    Ok(Json(json!({ "revenue": "1234.00" })))
}

/// One dashboard figure (made up, but stable per name).
async fn stat(_user: AuthUser, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let (metric, unit) = METRICS
        .iter()
        .find(|(m, _)| *m == name)
        .ok_or(ApiError::NotFound)?;
    let hash = metric
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let value = if *unit == "%" {
        hash % 100
    } else {
        hash % 1000
    };
    Ok(Json(
        json!({ "metric": metric, "value": value, "unit": unit }),
    ))
}

async fn stats_index(_user: AuthUser) -> Json<Value> {
    Json(Value::Array(
        METRICS.iter().map(|(m, _)| json!(m)).collect(),
    ))
}

async fn about() -> Json<Value> {
    Json(
        json!({ "app": "embed-axum", "api": ["/api/products/", "/api/orders/", "/api/reports/", "/api/stats/"] }),
    )
}

/// sekisho's facade, built exactly as the `sekisho` binary builds it, and this app's router.
pub async fn build(config: &Config, key: &[u8]) -> Result<(Router, Arc<Auth>)> {
    let clock = Arc::new(SystemClock);
    let stores = sekisho_store::open(config, clock.clone()).await?;
    let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm)?;
    let auth = Arc::new(
        Auth::builder(config)
            .stores(stores)
            .clock(clock)
            .signing_key(Arc::new(HmacKey::new(algorithm, key)?))
            .csrf_key(CsrfKey::derive(key))
            .build()?,
    );
    let state = AppState::new(auth.clone(), config);
    let demo = Demo {
        auth: state.clone(),
        shop: Arc::new(Shop::default()),
    };
    let mut app = Router::new();
    // Like sekisho's own paths, every route answers with and without its trailing slash.
    for (path, route) in [
        ("/api/products/", get(products)),
        ("/api/orders/", get(orders).post(place_order)),
        ("/api/reports/", get(report)),
        ("/api/stats/", get(stats_index)),
        ("/api/stats/{name}/", get(stat)),
    ] {
        app = app
            .route(path, route.clone())
            .route(path.trim_end_matches('/'), route);
    }
    let app = app
        .with_state(demo)
        .merge(sekisho_axum::router(state.clone()));
    let app = match &config.server.static_dir {
        // The built SPA, served the way `sekisho serve` serves it: history fallback to
        // index.html, and a csrftoken cookie on every HTML page.
        Some(dir) => app.fallback_service(
            Router::new()
                .fallback(sekisho_axum::spa::serve)
                .with_state((state, sekisho_axum::spa::Spa { dir: dir.clone() })),
        ),
        None => app
            .route("/", get(about))
            .fallback(sekisho_axum::api_fallback),
    };
    Ok((sekisho_axum::service_layers(app), auth))
}

/// The demo's two accounts: an ordinary user and a superuser (who passes every permission).
async fn seed_users(auth: &Auth) -> Result<()> {
    for (name, password, admin) in [
        ("demo", "demo-password", false),
        ("admin", "admin-password", true),
    ] {
        if auth.find_user(name).await?.is_none() {
            let new = NewUser {
                username: name.into(),
                is_staff: admin,
                is_superuser: admin,
                ..Default::default()
            };
            auth.create_user(&new, password).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::load(
        "[server]\nbind = \"127.0.0.1:3000\"\n[database]\nurl = \"sqlite://./embed-data/app.db\"\n",
        std::env::vars(),
    )?;
    if let Some(dir) = &config.server.static_dir
        && !dir.join("index.html").is_file()
    {
        anyhow::bail!(
            "server.static_dir: {} has no index.html (build the SPA first)",
            dir.display()
        );
    }
    // A real deployment loads its key from a file or secret store; see the README.
    let key = std::env::var("APP_SIGNING_KEY")
        .unwrap_or_else(|_| "example-only-signing-key-change-me-0123456789".into());
    let (app, auth) = build(&config, key.as_bytes()).await?;
    seed_users(&auth).await?;
    let listener = tokio::net::TcpListener::bind(&config.server.bind).await?;
    println!("example app listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn call(app: &Router, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        send(app, req.body(Body::empty()).unwrap()).await
    }

    async fn app_with_user(dir: &std::path::Path) -> (Router, Arc<Auth>, String) {
        let toml = format!(
            "[database]\nurl = \"sqlite://{}/app.db\"\n[passwords]\nargon2_memory_kib = 64\nargon2_iterations = 1\n",
            dir.display()
        );
        let config = Config::load(&toml, Vec::new()).unwrap();
        let (app, auth) = build(&config, b"test-signing-key-test-signing-key-0123")
            .await
            .unwrap();
        let user = auth
            .create_user(
                &NewUser {
                    username: "ann".into(),
                    ..Default::default()
                },
                "ann-password",
            )
            .await
            .unwrap();
        let access = auth.issue_pair(&user).await.unwrap().access;
        (app, auth, access)
    }

    #[tokio::test]
    async fn the_apps_own_routes_use_sekisho_identity_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let (app, _auth, access) = app_with_user(dir.path()).await;

        assert_eq!(
            call(&app, "/api/orders/", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = call(&app, "/api/orders/", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["owner"], "ann");
        let (status, body) = call(&app, "/api/reports/", Some(&access)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body["detail"],
            "You do not have permission to perform this action."
        );
        assert_eq!(
            call(&app, "/api/orders/", Some("garbage")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _) = call(&app, "/api/auth/me/", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn the_demo_api_products_orders_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let (app, _auth, access) = app_with_user(dir.path()).await;

        let (status, body) = call(&app, "/api/products", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.as_array().unwrap().len(), PRODUCTS.len());

        let order = |body: &str| {
            Request::post("/api/orders/")
                .header("authorization", format!("Bearer {access}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        let (status, body) = send(&app, order(r#"{"product_id": 3, "quantity": 2}"#)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["total"], "48.00");
        let (status, body) = send(&app, order(r#"{"product_id": 99, "quantity": 1}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["product_id"][0], "Invalid pk - object does not exist.");
        let (status, body) = send(&app, order(r#"{"product_id": 1}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["quantity"][0], "This field is required.");
        let (_, body) = call(&app, "/api/orders/", Some(&access)).await;
        assert_eq!(body["orders"].as_array().unwrap().len(), 1);

        let (status, names) = call(&app, "/api/stats/", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(names.as_array().unwrap().len() >= 10);
        let (status, body) = call(&app, "/api/stats/revenue/", Some(&access)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["metric"], "revenue");
        assert_eq!(
            call(&app, "/api/stats/nope/", Some(&access)).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, "/api/stats/revenue/", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
