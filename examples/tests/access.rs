//! The access matrix, through the real `ibiki-server` binary, on the memory
//! store and (with `DATABASE_URL`) on PostgreSQL: every `/api` route of the
//! server's own `/openapi.json` (and `/metrics`), called with the admin
//! token, the client's own key, another client's key, a revoked key, a
//! malformed key and no credentials, each with its expected status.
//!
//! The routes come from the served document, and each must have a rule
//! below: a new route without one fails this test.
#![cfg(unix)]

#[path = "support/server_process.rs"]
mod server_process;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::server_process::ServerProcess;

const TOKEN: &str = "access-token";

/// Who a route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The operator only.
    Admin,
    /// The client it names (`{userId}`), and the operator.
    Client,
}

/// The rule of one documented operation: who may call it, and what a
/// successful call answers. `None`: a route the test does not know.
fn rule(method: &str, template: &str) -> Option<(Scope, StatusCode)> {
    use Scope::{Admin, Client};
    let ok = StatusCode::OK;
    Some(match (method, template) {
        ("post", "/api/admin/update-phone-numbers") => (Admin, ok),
        ("get", "/api/admin/clients") => (Admin, ok),
        ("get", "/api/admin/clients/{userId}/phone-numbers") => (Admin, ok),
        ("get", "/api/admin/clients/{userId}/keys") => (Admin, ok),
        ("post", "/api/admin/clients/{userId}/keys") => (Admin, StatusCode::CREATED),
        ("delete", "/api/admin/clients/{userId}/keys/{id}") => (Admin, StatusCode::NO_CONTENT),
        ("get", "/api/admin/routes/{phoneNumber}") => (Admin, ok),
        ("get", "/api/admin/numbers/{phoneNumber}/history") => (Admin, ok),
        ("get", "/api/admin/held") => (Admin, ok),
        ("post", "/api/admin/held/{id}/deliver") => (Admin, ok),
        ("get", "/metrics") => (Admin, ok),
        ("get", "/api/clients/{userId}/messages") => (Client, ok),
        ("get", "/api/clients/{userId}/events") => (Client, ok),
        ("get", "/api/clients/{userId}/phone-numbers") => (Client, ok),
        ("put", "/api/admin/clients/{userId}/endpoint") => (Admin, ok),
        ("get", "/api/admin/clients/{userId}/endpoint") => (Admin, ok),
        ("delete", "/api/admin/clients/{userId}/endpoint") => (Admin, StatusCode::NO_CONTENT),
        ("post", "/api/admin/clients/{userId}/endpoint/replay") => (Admin, ok),
        ("get", "/api/admin/clients/{userId}/endpoint/secret") => (Admin, ok),
        ("post", "/api/admin/clients/{userId}/endpoint/secret/rotate") => (Admin, ok),
        ("get", "/api/admin/clients/{userId}/deliveries") => (Admin, ok),
        ("post", "/api/admin/deliveries/{id}/retry") => (Admin, StatusCode::ACCEPTED),
        ("put", "/api/clients/{userId}/endpoint") => (Client, ok),
        ("get", "/api/clients/{userId}/endpoint") => (Client, ok),
        ("get", "/api/clients/{userId}/endpoint/secret") => (Client, ok),
        ("post", "/api/clients/{userId}/endpoint/secret/rotate") => (Client, ok),
        ("get", "/api/clients/{userId}/deliveries") => (Client, ok),
        ("post", "/api/clients/{userId}/deliveries/{id}/retry") => (Client, StatusCode::ACCEPTED),
        _ => return None,
    })
}

/// The credentials every route is called with, and the status each gets
/// where the admin token gets `success`.
fn expected(credential: &str, scope: Scope, success: StatusCode) -> StatusCode {
    match (credential, scope) {
        ("admin", _) => success,
        ("own key", Scope::Client) => success,
        ("own key" | "other key", _) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    }
}

struct Fixture {
    server: ServerProcess,
    http: reqwest::Client,
    /// Bearer values by credential name.
    credentials: Vec<(&'static str, Option<String>)>,
    /// A held reply's id, for the deliver route.
    held_id: u64,
    /// A live key of alice, for the revoke route.
    spare_key: u64,
    /// A delivery of alice's, for the retry routes.
    delivery_id: u64,
}

impl Fixture {
    async fn start(env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.push(("IBIKI_ADMIN_TOKEN", TOKEN));
        let server = ServerProcess::start(&[], &env).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let mut fixture = Self {
            server,
            http,
            credentials: Vec::new(),
            held_id: 0,
            spare_key: 0,
            delivery_id: 0,
        };
        fixture.prepare().await;
        fixture
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Option<Value>) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.base));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        // The live stream never ends: its status is the answer.
        if path.ends_with("/events") && status == StatusCode::OK {
            return (status, None);
        }
        (status, response.json().await.ok())
    }

    async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self.call(method, path, Some(TOKEN), body).await;
        assert!(status.is_success(), "{path}: {status} {answer:?}");
        answer.unwrap_or(Value::Null)
    }

    async fn create_key(&self, user_id: &str) -> (u64, String) {
        let path = format!("/api/admin/clients/{user_id}/keys");
        let created = self.admin(Method::POST, &path, None).await;
        let id = created["id"].as_u64().expect("id");
        (id, created["key"].as_str().expect("key").to_owned())
    }

    /// Alice and bob own a number each and have a reply; one reply is held;
    /// alice has a live key, a revoked one and a spare; bob a live one.
    async fn prepare(&mut self) {
        let assign = "/api/admin/update-phone-numbers";
        for (user_id, number) in [("alice", "+14155550100"), ("bob", "+14155550101")] {
            let body = json!({"userId": user_id, "phoneNumbers": number});
            self.admin(Method::POST, assign, Some(&body)).await;
        }
        // Alice's replies are forwarded; dave's endpoint is the one deleted.
        for user_id in ["alice", "dave"] {
            let path = format!("/api/admin/clients/{user_id}/endpoint");
            let body = json!({"url": format!("https://{user_id}.example.com/")});
            self.admin(Method::PUT, &path, Some(&body)).await;
        }
        for (id, to) in [("SM1", "+14155550100"), ("SM2", "+14155550199")] {
            let reply = json!({"messageId": id, "from": "+15005550006", "to": to, "body": "hi"});
            let (status, _) = self
                .call(Method::POST, "/webhooks/sms", None, Some(&reply))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        let held = self.admin(Method::GET, "/api/admin/held", None).await;
        self.held_id = held["messages"][0]["id"].as_u64().expect("a held reply");
        let deliveries = "/api/admin/clients/alice/deliveries";
        let deliveries = self.admin(Method::GET, deliveries, None).await;
        self.delivery_id = deliveries["deliveries"][0]["id"]
            .as_u64()
            .expect("a delivery of alice's reply");
        let (_, own) = self.create_key("alice").await;
        let (_, other) = self.create_key("bob").await;
        let (revoked_id, revoked) = self.create_key("alice").await;
        let path = format!("/api/admin/clients/alice/keys/{revoked_id}");
        self.admin(Method::DELETE, &path, None).await;
        self.spare_key = self.create_key("alice").await.0;
        self.credentials = vec![
            ("no header", None),
            ("malformed key", Some("ibk_not-a-key".to_owned())),
            ("revoked key", Some(revoked)),
            ("other key", Some(other)),
            ("own key", Some(own)),
            // Last: the only credential that changes anything.
            ("admin", Some(TOKEN.to_owned())),
        ];
    }

    /// The concrete request of a documented operation: about alice.
    fn request_of(&self, method: &str, template: &str) -> (Method, String, Option<Value>) {
        let path = template
            .replace("{userId}", "alice")
            .replace("{phoneNumber}", "%2B14155550100");
        let (path, body) = match template {
            "/api/admin/held/{id}/deliver" => (
                path.replace("{id}", &self.held_id.to_string()),
                Some(json!({"userId": "alice"})),
            ),
            "/api/admin/clients/{userId}/keys/{id}" => {
                (path.replace("{id}", &self.spare_key.to_string()), None)
            }
            "/api/admin/update-phone-numbers" => (
                path,
                Some(json!({"userId": "carol", "phoneNumbers": "+14155550102"})),
            ),
            "/api/admin/clients/{userId}/endpoint" if method == "delete" => {
                (path.replace("alice", "dave"), None)
            }
            "/api/admin/clients/{userId}/endpoint" | "/api/clients/{userId}/endpoint"
                if method == "put" =>
            {
                (path, Some(json!({"url": "https://alice.example.com/"})))
            }
            "/api/admin/clients/{userId}/endpoint/replay" => {
                (path, Some(json!({"since": "2000-01-01T00:00:00Z"})))
            }
            "/api/admin/deliveries/{id}/retry" | "/api/clients/{userId}/deliveries/{id}/retry" => {
                (path.replace("{id}", &self.delivery_id.to_string()), None)
            }
            _ => (path, None),
        };
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        (method, path, body)
    }

    /// Every guarded operation the served document lists.
    async fn operations(&self) -> Vec<(String, String)> {
        let (status, doc) = self.call(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let doc = doc.expect("the document");
        let mut operations = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if operation.get("security").is_some() {
                    operations.push((method.clone(), template.clone()));
                }
            }
        }
        operations
    }
}

async fn the_matrix(env: &[(&str, &str)]) {
    let fixture = Fixture::start(env).await;
    let operations = fixture.operations().await;
    assert!(operations.len() >= 14, "{operations:?}");
    let mut checked = 0;
    for (method, template) in &operations {
        let (scope, success) = rule(method, template)
            .unwrap_or_else(|| panic!("{method} {template} has no access rule in this test"));
        let (method, path, body) = fixture.request_of(method, template);
        for (credential, bearer) in &fixture.credentials {
            let (status, answer) = fixture
                .call(method.clone(), &path, bearer.as_deref(), body.as_ref())
                .await;
            let want = expected(credential, scope, success);
            assert_eq!(
                status, want,
                "{method} {path} with {credential}: {answer:?}"
            );
            match status {
                StatusCode::FORBIDDEN => {
                    assert_eq!(
                        answer.as_ref().map(|a| &a["error"]),
                        Some(&json!("forbidden"))
                    )
                }
                StatusCode::UNAUTHORIZED => {
                    assert_eq!(
                        answer.as_ref().map(|a| &a["error"]),
                        Some(&json!("unauthorized"))
                    )
                }
                _ => {}
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations.len() * 6);
    // Refused calls changed nothing; the admin's did.
    let carol = fixture
        .admin(Method::GET, "/api/admin/clients/carol/phone-numbers", None)
        .await;
    assert_eq!(carol["phoneNumbers"], json!(["+14155550102"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_credential_on_the_memory_store() {
    the_matrix(&[]).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_credential_on_postgres() {
    use ibiki_postgres::testing::{SchemaGuard, check_reachable, database_url, unique_schema};

    let Some(url) = database_url() else {
        return;
    };
    check_reachable(&url).await;
    let schema = unique_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    the_matrix(&[("DATABASE_URL", &url), ("IBIKI_DATABASE_SCHEMA", &schema)]).await;
}
