//! `GET /api/admin/routes/{phoneNumber}[?at=]` and
//! `GET /api/admin/numbers/{phoneNumber}/history`: who owns a number now,
//! who owned it at an instant, and every change, oldest first.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{assert_error, assign_ok, get, get_ok, router};

const HISTORY: &str = "/api/admin/numbers/%2B14155550100/history";

/// `+14155550100` given to 123, taken back, then given to 456.
async fn three_changes() -> Router {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    assign_ok(&router, "123", json!([])).await;
    assign_ok(&router, "456", json!("+14155550100")).await;
    router
}

/// Every event of the history, following the cursors with pages of one.
async fn whole_history(router: &Router) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = format!("{HISTORY}?limit=1");
    loop {
        let page = get_ok(router, &path).await;
        assert_eq!(page["phoneNumber"], "+14155550100");
        let Some(event) = page["events"].as_array().and_then(|e| e.first()) else {
            assert_eq!(page["next"], Value::Null, "an empty page has no cursor");
            return events;
        };
        events.push(event.clone());
        let next = page["next"].as_str().expect("cursor");
        path = format!("{HISTORY}?limit=1&after={next}");
    }
}

#[tokio::test]
async fn the_history_lists_every_change_oldest_first() {
    let router = three_changes().await;
    let events = whole_history(&router).await;
    let changes: Vec<(&Value, &Value)> = events
        .iter()
        .map(|e| (&e["userId"], &e["change"]))
        .collect();
    assert_eq!(
        changes,
        [
            (&json!("123"), &json!("assigned")),
            (&json!("123"), &json!("unassigned")),
            (&json!("456"), &json!("assigned")),
        ]
    );
    for event in &events {
        assert_eq!(event.as_object().map(|o| o.len()), Some(3), "{event}");
    }
    // Any format of the number reads the same history, in one page.
    let page = get_ok(&router, "/api/admin/numbers/+1%20(415)%20555-0100/history").await;
    assert_eq!(page["events"], json!(events));
    assert_eq!(
        get_ok(&router, "/api/admin/numbers/%2B14155550199/history").await,
        json!({"phoneNumber": "+14155550199", "events": [], "next": null}),
        "a number never assigned"
    );
}

#[tokio::test]
async fn the_route_lookup_answers_the_owner_now_in_any_format() {
    let router = router();
    assign_ok(&router, "123", json!("+14155550100")).await;
    for path in [
        "/api/admin/routes/%2B14155550100",
        "/api/admin/routes/%2b1%20415%20555%200100",
        "/api/admin/routes/+14155550100",
        "/api/admin/routes/tel:%2B1-415-555-0100",
    ] {
        assert_eq!(
            get_ok(&router, path).await,
            json!({"phoneNumber": "+14155550100", "userId": "123"}),
            "{path}"
        );
    }
    assert_eq!(
        get_ok(&router, "/api/admin/routes/%2B14155550101").await,
        json!({"phoneNumber": "+14155550101", "userId": null})
    );
}

#[tokio::test]
async fn the_route_at_an_instant_answers_the_owner_then() {
    let router = three_changes().await;
    let events = whole_history(&router).await;
    let route_at = async |at: &str| {
        get_ok(
            &router,
            &format!("/api/admin/routes/%2B14155550100?at={at}"),
        )
        .await
    };
    let first = events[0]["at"].as_str().expect("at");
    assert_eq!(
        route_at(first).await,
        json!({"phoneNumber": "+14155550100", "userId": "123", "at": first}),
        "at the instant of a change: the owner after it"
    );
    let second = events[1]["at"].as_str().expect("at");
    assert_eq!(route_at(second).await["userId"], Value::Null);
    assert_eq!(
        route_at("2000-01-01T00:00:00Z").await["userId"],
        Value::Null
    );
    // An offset, its `+` encoded or not (unencoded, it arrives as a space).
    for later in ["2999-01-01T01:00:00%2B01:00", "2999-01-01T01:00:00+01:00"] {
        let body = route_at(later).await;
        assert_eq!(body["userId"], "456", "{later}");
        assert_eq!(body["at"], "2999-01-01T01:00:00+01:00", "{later}");
    }
}

#[tokio::test]
async fn bad_numbers_instants_and_pages_are_400() {
    let router = three_changes().await;
    for at in ["yesterday", "2024-01-02", "2024-13-01T00:00:00Z", ""] {
        let answer = get(
            &router,
            &format!("/api/admin/routes/%2B14155550100?at={at}"),
        )
        .await;
        assert_eq!(answer.1["error"], "invalid_at", "{at:?}");
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_at");
    }
    for path in [
        "/api/admin/routes/abc",
        "/api/admin/routes/4155550100",
        "/api/admin/numbers/abc/history",
    ] {
        let answer = get(&router, path).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_phone_number");
    }
    for (query, code) in [
        ("after=not-a-cursor", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("limit=1&limit=2", "invalid_query"),
    ] {
        let answer = get(&router, &format!("{HISTORY}?{query}")).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, code);
    }
}
