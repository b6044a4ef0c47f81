//! 100 webhook bodies trickled at one byte a second: each is answered 408
//! and closed by the body read timeout, and none of them is recorded.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use crate::server_process::ServerProcess;
use crate::support::{TOKEN, http, metrics, one_at_a_time, refusals, reply};

const BODIES: usize = 100;

/// `--body-read-timeout`.
const BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// What one trickled request got back.
struct Answer {
    text: String,
    /// From its headers being sent to the connection being closed.
    took: Duration,
}

/// Sends the headers of a webhook whose body is `body`, then its body a
/// byte a second, until the server answers and closes the connection.
async fn trickle(address: String, body: String) -> Answer {
    let stream = TcpStream::connect(&address).await.expect("connected");
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /webhooks/sms HTTP/1.1\r\nHost: ibiki\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    write
        .write_all(head.as_bytes())
        .await
        .expect("headers sent");
    let sent = Instant::now();
    let trickling = async move {
        for byte in body.into_bytes() {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            sleep(Duration::from_secs(1)).await;
        }
        // Still open: keep it so, until the answer ends this.
        std::future::pending::<Infallible>().await
    };
    let answer = async {
        let mut answer = Vec::new();
        let mut buf = [0; 1024];
        // EOF, or a reset after the answer: either way, closed.
        while let Ok(read @ 1..) = read.read(&mut buf).await {
            answer.extend_from_slice(&buf[..read]);
        }
        answer
    };
    let answer = tokio::select! {
        answer = answer => answer,
        never = trickling => match never {},
    };
    Answer {
        text: String::from_utf8_lossy(&answer).into_owned(),
        took: sent.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_trickled_a_byte_a_second_are_408_closed_and_record_nothing() {
    let _turn = one_at_a_time().await;
    let server =
        ServerProcess::start(&["--body-read-timeout", "2s", "--admin-token", TOKEN], &[]).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let trickles: Vec<_> = (0..BODIES)
        .map(|i| {
            tokio::spawn(trickle(
                address.clone(),
                reply(&format!("SM{i}"), "+14155550100"),
            ))
        })
        .collect();
    for trickled in trickles {
        let answer = timeout(BODY_TIMEOUT * 5, trickled).await;
        let Answer { text, took } = answer.expect("answered").expect("not panicked");
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert!(text.contains("\"error\":\"body_timeout\""), "{text}");
        assert!(
            took >= BODY_TIMEOUT && took <= BODY_TIMEOUT + Duration::from_secs(2),
            "closed after {took:?}"
        );
    }

    let http = http();
    let held = http
        .get(format!("{}/api/admin/held", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(held.status(), StatusCode::OK);
    let held: serde_json::Value = held.json().await.expect("JSON");
    assert_eq!(held["messages"], serde_json::json!([]), "nothing recorded");
    let counted = refusals(&http, &server.base).await;
    assert_eq!(counted["body_timeout"], BODIES as u64, "{counted:?}");
    let text = metrics(&http, &server.base).await;
    let rejected = format!(
        "ibiki_replies_received_total{{route=\"sms\",outcome=\"rejected\",reason=\"body_timeout\"}} {BODIES}\n"
    );
    assert!(text.contains(&rejected), "{text}");
    assert!(!text.contains("outcome=\"held\""), "{text}");
}
