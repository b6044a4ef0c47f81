//! Who owned a number when: the route lookup at an instant, a number's
//! history, and lookups of any number a reply can carry.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error, reply, send};

store_tests!(
    the_history_lists_every_change_oldest_first,
    route_at_answers_the_owner_then,
    history_and_at_errors_are_400,
    any_number_a_reply_carries_can_be_looked_up,
);

/// Every event of a number, following the cursors with pages of `limit`.
async fn whole_history(server: &TestServer, number: &str, limit: usize) -> Vec<Value> {
    let path = format!("/api/admin/numbers/{number}/history");
    let mut all = Vec::new();
    let mut query = format!("?limit={limit}");
    loop {
        let (status, body) = send(server.get(&format!("{path}{query}"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["phoneNumber"], "+14155550100", "{body}");
        let events = body["events"].as_array().expect("events").clone();
        if events.is_empty() {
            assert_eq!(body["next"], Value::Null, "an empty page has no cursor");
            return all;
        }
        let next = body["next"].as_str().expect("a cursor");
        query = format!("?limit={limit}&after={next}");
        all.extend(events);
    }
}

fn changes(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e["userId"].to_string(), e["change"].to_string()))
        .collect()
}

async fn the_history_lists_every_change_oldest_first(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server
        .assign_ok("123", json!("+14155550100, +14155550101"))
        .await;
    server.assign_ok("123", json!("+14155550101")).await;
    server.assign_ok("456", json!("+14155550100")).await;
    let events = whole_history(&server, "%2B14155550100", 1).await;
    let expected = [
        ("\"123\"", "\"assigned\""),
        ("\"123\"", "\"unassigned\""),
        ("\"456\"", "\"assigned\""),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(u, c)| (u.to_string(), c.to_string()))
        .collect();
    assert_eq!(changes(&events), expected);
    for event in &events {
        let at = event["at"].as_str().expect("at");
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(event.as_object().map(|o| o.len()), Some(3), "{event}");
    }
    // Any format of the number, one page.
    let (status, body) = send(server.get("/api/admin/numbers/+1%20(415)%20555-0100/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!(events));
    let (_, body) = send(server.get("/api/admin/numbers/%2B14155550199/history")).await;
    assert_eq!(
        body,
        json!({"phoneNumber": "+14155550199", "events": [], "next": null}),
        "a number never assigned"
    );
}

async fn route_at_answers_the_owner_then(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    server.assign_ok("123", json!([])).await;
    server.assign_ok("456", json!("+14155550100")).await;
    let events = whole_history(&server, "%2B14155550100", 100).await;
    let at = |i: usize| events[i]["at"].as_str().expect("at").to_owned();
    let route = async |at: &str| {
        let path = format!("/api/admin/routes/%2B14155550100?at={at}");
        let (status, body) = send(server.get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    assert_eq!(
        route(&at(0)).await,
        json!({"phoneNumber": "+14155550100", "userId": "123", "at": at(0)}),
        "at the instant of a change: the owner after it"
    );
    assert_eq!(route(&at(1)).await["userId"], Value::Null);
    assert_eq!(route(&at(2)).await["userId"], "456");
    assert_eq!(route("2000-01-01T00:00:00Z").await["userId"], Value::Null);
    // An offset, its `+` encoded or not (a bare `+` arrives as a space).
    for later in ["2999-01-01T01:00:00%2B01:00", "2999-01-01T01:00:00+01:00"] {
        let body = route(later).await;
        assert_eq!(body["userId"], "456", "{body}");
        assert_eq!(body["at"], "2999-01-01T01:00:00+01:00");
    }
    let (_, now) = send(server.get("/api/admin/routes/%2B14155550100")).await;
    assert_eq!(
        now,
        json!({"phoneNumber": "+14155550100", "userId": "456"}),
        "without `at`: the owner now, no `at` field"
    );
}

async fn history_and_at_errors_are_400(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    for at in ["yesterday", "2024-01-02", "2024-13-01T00:00:00Z", ""] {
        let path = format!("/api/admin/routes/%2B14155550100?at={at}");
        assert_error(
            &send(server.get(&path)).await,
            StatusCode::BAD_REQUEST,
            "invalid_at",
        );
    }
    let history = "/api/admin/numbers/%2B14155550100/history";
    for (query, code) in [
        ("?after=not-a-cursor", "invalid_cursor"),
        ("?limit=0", "invalid_limit"),
    ] {
        let path = format!("{history}{query}");
        assert_error(
            &send(server.get(&path)).await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    assert_error(
        &send(server.get("/api/admin/numbers/abc/history")).await,
        StatusCode::BAD_REQUEST,
        "invalid_phone_number",
    );
    for path in [
        history,
        "/api/admin/routes/%2B14155550100?at=2024-01-02T00:00:00Z",
    ] {
        let anonymous = server.request(Method::GET, path);
        assert_error(
            &send(anonymous).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
}

/// `+44 020 7946 0958`, trunk zero kept, is no admin input, but the webhook
/// canonicalizes it and holds replies under it: the lookups find it.
async fn any_number_a_reply_carries_can_be_looked_up(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    let (status, body) = server
        .webhook(&reply("SM1", "+44 020 7946 0958", "hello?"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let held = server.held().await;
    let to = held[0]["to"].as_str().expect("to").to_owned();
    assert_eq!(to, "+4402079460958");
    let (status, body) = send(server.get("/api/admin/routes/%2B44%20020%207946%200958")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"phoneNumber": to, "userId": null}));
    let (status, body) = send(server.get("/api/admin/numbers/%2B4402079460958/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phoneNumber"], to);
}
