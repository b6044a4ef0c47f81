//! Listings page with `limit` and the `after` cursor, oldest first.

use std::sync::Arc;

use ibiki_core::DynReplyStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error, reply, send};

store_tests!(
    inbox_pages_follow_cursors,
    held_pages_follow_cursors,
    page_parameters_are_checked
);

async fn inbox_pages_follow_cursors(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    server.assign_ok("123", json!("+14155550100")).await;
    for i in 0..105 {
        let answer = server
            .webhook(&reply(&format!("SM{i}"), "+14155550100", &format!("{i}")))
            .await;
        assert_eq!(answer.0, StatusCode::OK);
    }
    // The default limit is 100.
    let (status, first) = send(server.get("/api/clients/123/messages")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["messages"].as_array().map(Vec::len), Some(100));
    let cursor = first["next"].as_str().expect("cursor");
    let (_, rest) = send(server.get(&format!("/api/clients/123/messages?after={cursor}"))).await;
    let rest_bodies: Vec<&Value> = rest["messages"]
        .as_array()
        .expect("page")
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(rest_bodies, ["100", "101", "102", "103", "104"]);
    // Past the end: an empty page and no cursor; the caller keeps its own.
    let last = rest["next"]
        .as_str()
        .expect("cursor after a non-empty page");
    let (_, end) = send(server.get(&format!("/api/clients/123/messages?after={last}"))).await;
    assert_eq!(end, json!({"messages": [], "next": null}));
    // A poller asking again with its cursor sees what arrived since.
    server.webhook(&reply("SM105", "+14155550100", "105")).await;
    let (_, later) = send(server.get(&format!("/api/clients/123/messages?after={last}"))).await;
    assert_eq!(later["messages"][0]["body"], "105");

    // Small pages see every message once, in order.
    let all = server.all_pages("/api/clients/123/messages", 7).await;
    let bodies: Vec<String> = all
        .iter()
        .map(|m| m["body"].as_str().expect("body").to_owned())
        .collect();
    let expected: Vec<String> = (0..106).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected);
    assert_eq!(
        server
            .all_pages("/api/clients/123/messages", 1000)
            .await
            .len(),
        106
    );
    // An unknown client has an empty inbox.
    let (_, empty) = send(server.get("/api/clients/nobody/messages")).await;
    assert_eq!(empty, json!({"messages": [], "next": null}));
}

async fn held_pages_follow_cursors(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    for i in 0..5 {
        server
            .webhook(&reply(
                &format!("SM{i}"),
                &format!("+1415555010{i}"),
                "held",
            ))
            .await;
    }
    let (_, first) = send(server.get("/api/admin/held?limit=2")).await;
    let ids: Vec<&Value> = first["messages"]
        .as_array()
        .expect("page")
        .iter()
        .map(|m| &m["messageId"])
        .collect();
    assert_eq!(ids, ["SM0", "SM1"]);
    let cursor = first["next"].as_str().expect("cursor");
    let (_, second) = send(server.get(&format!("/api/admin/held?limit=2&after={cursor}"))).await;
    let ids: Vec<&Value> = second["messages"]
        .as_array()
        .expect("page")
        .iter()
        .map(|m| &m["messageId"])
        .collect();
    assert_eq!(ids, ["SM2", "SM3"]);
    assert_eq!(server.all_pages("/api/admin/held", 2).await.len(), 5);
}

async fn page_parameters_are_checked(store: Arc<DynReplyStore>) {
    let server = TestServer::start(store).await;
    for path in ["/api/clients/123/messages", "/api/admin/held"] {
        for (query, code) in [
            ("limit=0", "invalid_limit"),
            ("limit=1001", "invalid_limit"),
            ("limit=-5", "invalid_limit"),
            ("limit=ten", "invalid_limit"),
            ("limit=", "invalid_limit"),
            ("limit=99999999999999999999999", "invalid_limit"),
            ("after=", "invalid_cursor"),
            ("after=not-a-cursor", "invalid_cursor"),
            ("after=-1", "invalid_cursor"),
            ("limit=1&limit=2", "invalid_query"),
        ] {
            let answer = send(server.get(&format!("{path}?{query}"))).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, code);
        }
        let too_long = "9".repeat(300);
        let answer = send(server.get(&format!("{path}?after={too_long}"))).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_cursor");
        // A parameter the route does not take is named, not ignored.
        let answer = send(server.get(&format!("{path}?limit=1000&unknown=ignored"))).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_query");
        let message = answer.1["message"].as_str().unwrap_or_default();
        assert!(message.contains("`unknown`"), "{message}");
    }
}
