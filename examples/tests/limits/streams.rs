//! 200 live streams opened at once by one client with its own key: 16 open,
//! the rest are answered 429 with `Retry-After`, another client's stream
//! still opens, and a stream that ends gives its place back.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use tokio::time::sleep;

use crate::server_process::ServerProcess;
use crate::support::{TOKEN, http, one_at_a_time, refusals};

const STREAMS: usize = 200;

/// `--max-streams-per-client`'s default.
const PER_CLIENT: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_16_streams_the_rest_429_and_another_client_still_one() {
    let _turn = one_at_a_time().await;
    let server = ServerProcess::start(&["--admin-token", TOKEN], &[]).await;
    let http = http();
    let created = http
        .post(format!("{}/api/admin/clients/acme/keys", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = created.json().await.expect("JSON");
    let key = created["key"].as_str().expect("a key").to_owned();
    let events = |client: &str| format!("{}/api/clients/{client}/events", server.base);

    let opened = (0..STREAMS).map(|_| http.get(events("acme")).bearer_auth(&key).send());
    let answers = join_all(opened).await;
    let (mut open, refused): (Vec<_>, Vec<_>) = answers
        .into_iter()
        .map(|answer| answer.expect("answered"))
        .partition(|answer| answer.status() == StatusCode::OK);
    assert_eq!(open.len(), PER_CLIENT);
    assert_eq!(refused.len(), STREAMS - PER_CLIENT);
    for answer in refused {
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()["retry-after"], "10");
        let body: serde_json::Value = answer.json().await.expect("JSON");
        assert_eq!(body["error"], "too_many_streams", "{body}");
    }
    let counted = refusals(&http, &server.base).await;
    assert_eq!(counted["max_streams"], (STREAMS - PER_CLIENT) as u64);

    let other = http.get(events("globex")).bearer_auth(TOKEN).send().await;
    assert_eq!(other.expect("answered").status(), StatusCode::OK);

    // One of acme's streams ends: its place is free once the server sees
    // its client gone.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = http.get(events("acme")).bearer_auth(&key).send().await;
        match again.expect("answered").status() {
            StatusCode::OK => break,
            status if Instant::now() < deadline => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                sleep(Duration::from_millis(100)).await;
            }
            status => panic!("no place freed within 5 s: {status}"),
        }
    }
}
