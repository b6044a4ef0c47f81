//! ibiki's routes inside an application's own `Router`: its fallback answers
//! the paths ibiki does not serve, and its own authentication guards `/api`,
//! for operators and clients alike.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use ibiki_core::ClientId;
use ibiki_http::{Access, AdminToken, ApiError, App, Authenticator, Caller};
use ibiki_memory::MemoryStore;
use tower::ServiceExt;

/// The caller an upstream session put in `x-user`: `admin`, or a client id.
#[derive(Debug)]
struct HeaderAuth;

#[async_trait]
impl Authenticator for HeaderAuth {
    async fn authenticate(&self, headers: &HeaderMap, _: Access<'_>) -> Result<Caller, ApiError> {
        match headers.get("x-user").and_then(|v| v.to_str().ok()) {
            Some("admin") => Ok(Caller::Admin),
            Some(user) => ClientId::new(user)
                .map(Caller::Client)
                .map_err(|_| ApiError::unauthorized("unauthorized", "no such user")),
            None => Err(ApiError::unauthorized("unauthorized", "not signed in")),
        }
    }
}

fn embedded(app: App) -> Router {
    Router::new()
        .route("/mine", get(|| async { "mine" }))
        .merge(app.routes())
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "my fallback") })
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get_request(path: &str, user: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    request.body(Body::empty()).expect("valid request")
}

#[tokio::test]
async fn the_application_keeps_its_routes_and_fallback() {
    let token = AdminToken::new("t".parse().expect("non-empty"));
    let router = embedded(App::new(Arc::new(MemoryStore::new()), token));
    assert_eq!(
        call(&router, get_request("/mine", None)).await,
        (StatusCode::OK, "mine".into())
    );
    let (status, body) = call(&router, get_request("/healthz", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        call(&router, get_request("/elsewhere", None)).await,
        (StatusCode::IM_A_TEAPOT, "my fallback".into())
    );
}

#[tokio::test]
async fn a_custom_authenticator_guards_the_api() {
    let router = embedded(App::new(Arc::new(MemoryStore::new()), HeaderAuth));
    let path = "/api/admin/clients/client-1/phone-numbers";
    let (status, body) = call(&router, get_request(path, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not signed in"), "{body}");
    let (status, body) = call(&router, get_request(path, Some("admin"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"phoneNumbers\":[]"), "{body}");
}

/// Its clients are held to their own routes by ibiki, whatever the
/// authenticator: it only says who the caller is.
#[tokio::test]
async fn a_custom_authenticators_clients_keep_to_their_own_routes() {
    let router = embedded(App::new(Arc::new(MemoryStore::new()), HeaderAuth));
    let own = "/api/clients/client-1/phone-numbers";
    let (status, body) = call(&router, get_request(own, Some("client-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for path in [
        "/api/clients/client-2/phone-numbers",
        "/api/admin/clients/client-1/phone-numbers",
    ] {
        let (status, body) = call(&router, get_request(path, Some("client-1"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.contains("\"forbidden\""), "{body}");
    }
    // Without a key store, the key routes are not there.
    let keys = "/api/admin/clients/client-1/keys";
    let (status, body) = call(&router, get_request(keys, Some("admin"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("keys_not_enabled"), "{body}");
}
