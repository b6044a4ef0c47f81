//! Clients' API keys: created, listed and revoked by the operator, and what
//! a key opens: its own client's routes, nothing else.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{admin, assert_error, assign_ok, reply, request, router, send, webhook};

/// `POST /api/admin/clients/{userId}/keys` with the admin token: (id, key).
async fn create_key(router: &Router, user_id: &str) -> (u64, String) {
    let path = format!("/api/admin/clients/{user_id}/keys");
    let (status, body) = send(router, request(Method::POST, &path, admin(), None, "")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_u64().expect("numeric id");
    (id, body["key"].as_str().expect("key").to_owned())
}

async fn revoke_key(router: &Router, user_id: &str, id: u64) -> (StatusCode, Value) {
    let path = format!("/api/admin/clients/{user_id}/keys/{id}");
    let revoke = request(Method::DELETE, &path, admin(), None, Body::empty());
    let response = tower::ServiceExt::oneshot(router.clone(), revoke)
        .await
        .expect("infallible");
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return (status, Value::Null);
    }
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

/// A GET with `Authorization: Bearer <key>`.
async fn get_with(router: &Router, path: &str, key: &str) -> (StatusCode, Value) {
    let authorization = format!("Bearer {key}");
    let get = request(Method::GET, path, Some(&authorization), None, Body::empty());
    send(router, get).await
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_the_key_and_revoked() {
    let router = router();
    let path = "/api/admin/clients/acme/keys";
    let (status, created) = send(&router, request(Method::POST, path, admin(), None, "")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("key");
    assert!(key.starts_with("ibk_") && key.len() == 47, "{key}");
    assert_eq!(created["prefix"].as_str(), Some(&key[..12]));
    assert!(created["createdAt"].is_string(), "{created}");
    let fields: Vec<_> = created.as_object().expect("object").keys().collect();
    assert_eq!(fields, ["createdAt", "id", "key", "prefix"]);

    let (status, listed) = send(&router, request(Method::GET, path, admin(), None, "")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed,
        json!({"keys": [{
            "id": created["id"],
            "prefix": created["prefix"],
            "createdAt": created["createdAt"],
            "lastUsedAt": null,
        }]})
    );
    assert!(
        !listed.to_string().contains(&key[12..]),
        "never the key again"
    );

    let id = created["id"].as_u64().expect("id");
    let (status, _) = revoke_key(&router, "bob", id).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another client's key id is unknown"
    );
    assert_eq!(
        revoke_key(&router, "acme", id).await.0,
        StatusCode::NO_CONTENT
    );
    let again = revoke_key(&router, "acme", id).await;
    assert_error(&again, StatusCode::NOT_FOUND, "key_not_found");
    let (_, listed) = send(&router, request(Method::GET, path, admin(), None, "")).await;
    assert_eq!(listed, json!({"keys": []}));
}

#[tokio::test]
async fn a_client_key_opens_its_own_routes_and_nothing_else() {
    let router = router();
    assign_ok(&router, "acme", json!("+14155550100")).await;
    assign_ok(&router, "bob", json!("+14155550101")).await;
    webhook(&router, &reply("SM1", "+14155550100", "for acme")).await;
    webhook(&router, &reply("SM2", "+14155550101", "for bob")).await;
    let (_, key) = create_key(&router, "acme").await;

    let (status, inbox) = get_with(&router, "/api/clients/acme/messages", &key).await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["messages"][0]["body"], "for acme");
    let (status, numbers) = get_with(&router, "/api/clients/acme/phone-numbers", &key).await;
    assert_eq!(
        (status, numbers),
        (
            StatusCode::OK,
            json!({"userId": "acme", "phoneNumbers": ["+14155550100"]})
        )
    );
    for path in [
        "/api/clients/bob/messages",
        "/api/clients/bob/phone-numbers",
        "/api/admin/held",
        "/api/admin/clients",
        "/api/admin/clients/acme/phone-numbers",
        "/api/admin/clients/acme/keys",
        "/metrics",
    ] {
        let answer = get_with(&router, path, &key).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    // A key cannot create keys, for itself or anyone.
    let authorization = format!("Bearer {key}");
    let create = request(
        Method::POST,
        "/api/admin/clients/acme/keys",
        Some(&authorization),
        None,
        "",
    );
    assert_error(
        &send(&router, create).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, listed) = send(
        &router,
        request(
            Method::GET,
            "/api/admin/clients/acme/keys",
            admin(),
            None,
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
    assert!(
        listed["keys"][0]["lastUsedAt"].is_string(),
        "its use is noted: {listed}"
    );
}

#[tokio::test]
async fn another_client_is_refused_alike_whether_it_exists_or_not() {
    let router = router();
    assign_ok(&router, "bob", json!("+14155550101")).await;
    let (_, key) = create_key(&router, "acme").await;
    for suffix in ["messages", "phone-numbers", "events"] {
        let existing = get_with(&router, &format!("/api/clients/bob/{suffix}"), &key).await;
        let absent = get_with(&router, &format!("/api/clients/nobody/{suffix}"), &key).await;
        assert_error(&existing, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(existing, absent, "{suffix}: no enumeration");
        // An id that is not even valid is answered the same.
        let invalid = get_with(&router, &format!("/api/clients/a%0Ab/{suffix}"), &key).await;
        assert_eq!(existing, invalid, "{suffix}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_its_next_request() {
    let router = router();
    let (id, key) = create_key(&router, "acme").await;
    let (_, other) = create_key(&router, "acme").await;
    let path = "/api/clients/acme/messages";
    assert_eq!(get_with(&router, path, &key).await.0, StatusCode::OK);
    assert_eq!(
        revoke_key(&router, "acme", id).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &get_with(&router, path, &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(get_with(&router, path, &other).await.0, StatusCode::OK);
}

/// What a generated sequence does.
#[derive(Debug, Clone)]
enum Step {
    /// The operator creates a key for client `c`.
    Create(usize),
    /// The operator revokes the `k`-th key created (if any), through its
    /// client.
    Revoke(usize),
    /// A request about client `c` on route `r`, with a credential.
    Request(Credential, usize, usize),
}

#[derive(Debug, Clone)]
enum Credential {
    Admin,
    /// The `k`-th key created (if any, else a key never issued).
    Key(usize),
    /// Something that is neither.
    Junk(String),
}

const CLIENTS: [&str; 3] = ["acme", "bob", "carol"];

/// Routes about client `c`: the client's own, then the operator's.
fn route(r: usize, c: &str) -> (String, bool) {
    match r % 4 {
        0 => (format!("/api/clients/{c}/messages"), true),
        1 => (format!("/api/clients/{c}/phone-numbers"), true),
        2 => (format!("/api/admin/clients/{c}/phone-numbers"), false),
        _ => ("/api/admin/held".to_owned(), false),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let credential = prop_oneof![
        Just(Credential::Admin),
        (0..6usize).prop_map(Credential::Key),
        "[a-z_]{0,12}".prop_map(Credential::Junk),
    ];
    prop_oneof![
        (0..3usize).prop_map(Step::Create),
        (0..6usize).prop_map(Step::Revoke),
        (credential, 0..3usize, 0..4usize).prop_map(|(k, c, r)| Step::Request(k, c, r)),
    ]
}

/// The model: which status a request gets, from the keys created and revoked.
fn expected(keys: &[(usize, String, bool)], credential: &Credential, c: usize, own: bool) -> u16 {
    match credential {
        Credential::Admin => 200,
        Credential::Key(k) => match keys.get(*k) {
            Some((owner, _, true)) if own && *owner == c => 200,
            Some((_, _, true)) => 403,
            _ => 401,
        },
        Credential::Junk(_) => 401,
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let router = router();
    // (client, key, live) per key created, with its id.
    let mut keys: Vec<(usize, String, bool)> = Vec::new();
    let mut ids = Vec::new();
    for step in steps {
        match step {
            Step::Create(c) => {
                let (id, key) = create_key(&router, CLIENTS[c]).await;
                keys.push((c, key, true));
                ids.push(id);
            }
            Step::Revoke(k) => {
                if let Some((c, _, live)) = keys.get_mut(k) {
                    let status = revoke_key(&router, CLIENTS[*c], ids[k]).await.0;
                    let want = if *live {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    prop_assert_eq!(status, want);
                    *live = false;
                }
            }
            Step::Request(credential, c, r) => {
                let (path, own) = route(r, CLIENTS[c]);
                let token = match &credential {
                    Credential::Admin => "test-admin-token".to_owned(),
                    Credential::Key(k) => keys.get(*k).map_or_else(
                        || "ibk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                        |(_, key, _)| key.clone(),
                    ),
                    Credential::Junk(junk) => junk.clone(),
                };
                let (status, body) = get_with(&router, &path, &token).await;
                let want = expected(&keys, &credential, c, own);
                prop_assert_eq!(status.as_u16(), want, "{:?} {} {}", credential, path, body);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any sequence of key creations, revocations and requests, a
    /// request succeeds only with the admin token or a live key of the
    /// client it is about; a live key elsewhere is 403, anything else 401.
    #[test]
    fn only_the_admin_or_the_clients_live_key_opens_a_route(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(steps))?;
    }
}

/// A client's open stream ends before the first reply after its key was
/// revoked: the key is authenticated again as the stream flows.
#[tokio::test]
async fn a_revoked_keys_open_stream_ends_before_the_next_reply() {
    use futures_util::StreamExt;

    let router = router();
    assign_ok(&router, "acme", json!("+14155550100")).await;
    let (id, key) = create_key(&router, "acme").await;
    let authorization = format!("Bearer {key}");
    let open = request(
        Method::GET,
        "/api/clients/acme/events",
        Some(&authorization),
        None,
        Body::empty(),
    );
    let response = tower::ServiceExt::oneshot(router.clone(), open)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut frames = response.into_body().into_data_stream();
    // The next reply event, or None when the stream ends.
    let next_frame = async |frames: &mut axum::body::BodyDataStream| loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), frames.next())
            .await
            .expect("a frame or the end within 5 s")?;
        let frame = String::from_utf8_lossy(&frame.expect("frame")).into_owned();
        if frame.contains("event: reply") {
            return Some(frame);
        }
    };

    webhook(&router, &reply("SM1", "+14155550100", "before")).await;
    let frame = next_frame(&mut frames).await.expect("the first reply");
    assert!(frame.contains("before"), "{frame}");

    assert_eq!(
        revoke_key(&router, "acme", id).await.0,
        StatusCode::NO_CONTENT
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    webhook(&router, &reply("SM2", "+14155550100", "after")).await;
    assert_eq!(
        next_frame(&mut frames).await,
        None,
        "the stream ends unread"
    );
}
