//! `GET /api/clients/{userId}/messages`: a client's replies, oldest first,
//! paged with `limit` and the `after` cursor; bad page parameters are 400.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{assert_error, assign_ok, field, get, get_ok, reply, router, webhook};

const INBOX: &str = "/api/clients/123/messages";

/// A router whose client `123` has received replies with bodies `0..count`.
async fn inbox_of(count: usize) -> Router {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    for i in 0..count {
        let answer = webhook(
            &router,
            &reply(&format!("SM{i}"), "+14155550100", &i.to_string()),
        )
        .await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    }
    router
}

fn bodies(page: &Value) -> Vec<&str> {
    let messages = page["messages"].as_array().expect("messages");
    messages
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect()
}

#[tokio::test]
async fn pages_follow_the_cursor_oldest_first_to_an_empty_page() {
    let router = inbox_of(5).await;
    let mut pages = Vec::new();
    let mut path = format!("{INBOX}?limit=2");
    loop {
        let page = get_ok(&router, &path).await;
        if page["messages"] == json!([]) {
            assert_eq!(page, json!({"messages": [], "next": null}));
            break;
        }
        let next = page["next"]
            .as_str()
            .expect("a cursor after a non-empty page");
        path = format!("{INBOX}?limit=2&after={next}");
        pages.push(bodies(&page).join(","));
    }
    assert_eq!(pages, ["0,1", "2,3", "4"]);
}

#[tokio::test]
async fn the_default_page_is_100_replies() {
    let router = inbox_of(105).await;
    let first = get_ok(&router, INBOX).await;
    assert_eq!(bodies(&first).len(), 100);
    assert_eq!(bodies(&first)[99], "99");
    let next = first["next"].as_str().expect("cursor");
    let rest = get_ok(&router, &format!("{INBOX}?after={next}")).await;
    assert_eq!(bodies(&rest), ["100", "101", "102", "103", "104"]);
}

#[tokio::test]
async fn a_poller_keeping_its_last_cursor_sees_only_later_replies() {
    let router = inbox_of(2).await;
    let page = get_ok(&router, INBOX).await;
    let last = page["next"].as_str().expect("cursor").to_owned();
    let after_last = format!("{INBOX}?after={last}");
    assert_eq!(
        get_ok(&router, &after_last).await,
        json!({"messages": [], "next": null}),
        "past the end the caller keeps its own cursor"
    );
    webhook(&router, &reply("SM9", "+14155550100", "later")).await;
    let later = get_ok(&router, &after_last).await;
    assert_eq!(bodies(&later), ["later"]);
    assert_eq!(
        field(later["messages"].as_array().expect("page"), "messageId"),
        ["SM9"]
    );
}

#[tokio::test]
async fn each_client_reads_only_its_own_inbox() {
    let router = inbox_of(1).await;
    assign_ok(&router, "456", json!("+14155550101")).await;
    webhook(&router, &reply("SM9", "+14155550101", "for 456")).await;
    assert_eq!(bodies(&get_ok(&router, INBOX).await), ["0"]);
    let other = get_ok(&router, "/api/clients/456/messages").await;
    assert_eq!(bodies(&other), ["for 456"]);
    assert_eq!(
        get_ok(&router, "/api/clients/nobody/messages").await,
        json!({"messages": [], "next": null})
    );
}

#[tokio::test]
async fn bad_client_ids_cursors_limits_and_queries_are_400() {
    let router = inbox_of(1).await;
    let cases = [
        ("after=", "invalid_cursor"),
        ("after=not-a-cursor", "invalid_cursor"),
        ("after=-1", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=-5", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=", "invalid_limit"),
        ("limit=1&limit=2", "invalid_query"),
    ];
    for (query, code) in cases {
        let answer = get(&router, &format!("{INBOX}?{query}")).await;
        assert_eq!(answer.1["error"], code, "{query}");
        assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
    let too_long = get(&router, &format!("{INBOX}?after={}", "9".repeat(257))).await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, "invalid_cursor");
    assert_eq!(
        too_long.1["message"],
        "`after` is not a cursor this server issued"
    );
    let control = get(&router, "/api/clients/a%0Ab/messages").await;
    assert_error(&control, StatusCode::BAD_REQUEST, "invalid_user_id");
    let not_utf8 = get(&router, "/api/clients/%FF/messages").await;
    assert_error(&not_utf8, StatusCode::BAD_REQUEST, "invalid_path");
    // The limits themselves are fine (unknown parameters are not: below).
    for query in ["limit=1", "limit=1000"] {
        let page = get_ok(&router, &format!("{INBOX}?{query}")).await;
        assert_eq!(bodies(&page), ["0"], "{query}");
    }
}

/// A misspelled parameter is refused, naming it and the accepted ones, on
/// every route that reads a query string.
#[tokio::test]
async fn unknown_query_parameters_are_named() {
    let router = inbox_of(0).await;
    for (path, accepted) in [
        ("/api/clients/123/messages?limt=5", "`limit` or `after`"),
        ("/api/admin/held?limt=5", "`limit` or `after`"),
        ("/api/admin/clients?limt=5", "`prefix`, `limit`, `after`"),
        (
            "/api/admin/numbers/%2B14155550100/history?limt=5",
            "`limit` or `after`",
        ),
        (
            "/api/admin/routes/%2B14155550100?when=2024-01-01T00:00:00Z",
            "`at`",
        ),
        ("/api/clients/123/events?afer=1", "`after`"),
    ] {
        let (status, body) = get(&router, path).await;
        assert_error(
            &(status, body.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
        let message = body["message"].as_str().unwrap_or_default();
        let unknown = path.rsplit_once('?').and_then(|(_, q)| q.split('=').next());
        let unknown = unknown.expect("a parameter");
        assert!(
            message.contains(&format!("`{unknown}`")),
            "{path}: {message}"
        );
        assert!(message.contains(accepted), "{path}: {message}");
    }
    // Known parameters still pass.
    assert_eq!(
        get(&router, &format!("{INBOX}?limit=5")).await.0,
        StatusCode::OK
    );
}
