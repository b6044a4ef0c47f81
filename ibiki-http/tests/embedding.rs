//! ibiki's routes inside an application's own `Router`: its fallback answers
//! the paths ibiki does not serve, and its own authentication guards `/api`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use ibiki_http::{AdminAuth, AdminToken, ApiError, App};
use ibiki_memory::MemoryStore;
use tower::ServiceExt;

/// Lets through requests that carry `x-user: admin`.
#[derive(Debug)]
struct HeaderAuth;

impl AdminAuth for HeaderAuth {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match headers.get("x-user").map(|v| v.as_bytes()) {
            Some(b"admin") => Ok(()),
            _ => Err(ApiError::unauthorized("unauthorized", "not an admin")),
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
async fn a_custom_admin_auth_guards_the_api() {
    let router = embedded(App::new(Arc::new(MemoryStore::new()), HeaderAuth));
    let path = "/api/admin/clients/client-1/phone-numbers";
    let (status, body) = call(&router, get_request(path, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not an admin"), "{body}");
    let (status, body) = call(&router, get_request(path, Some("admin"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"phoneNumbers\":[]"), "{body}");
}
