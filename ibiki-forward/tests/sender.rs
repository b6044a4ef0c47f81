//! The sender against a real local HTTP receiver.

mod receiver;

use std::time::Duration;

use ibiki_core::{AddressPolicy, AttemptOutcome, EndpointSecrets};
use ibiki_forward::{AttemptKind, MAX_ERROR_BODY, Sender, SenderConfig, render_body};
use standardwebhooks::Webhook;

use receiver::{Receiver, Reply, TestResult, claim, one_secret, secret};

fn sender(policy: AddressPolicy) -> Sender {
    Sender::new(SenderConfig {
        timeout: Duration::from_secs(5),
        policy,
        ..SenderConfig::default()
    })
    .expect("a sender")
}

#[tokio::test]
async fn a_delivered_request_carries_the_signed_body_and_headers() -> TestResult {
    let receiver = Receiver::start().await?;
    let secret = secret();
    let claim = claim(&receiver.url("/hook?token=abc"), one_secret(&secret));
    let attempt = sender(AddressPolicy::AllowPrivate).send(&claim).await;
    assert_eq!(attempt.kind, AttemptKind::Delivered, "{attempt:?}");
    assert_eq!(attempt.status, Some(204));
    assert_eq!(attempt.error, None);
    assert_eq!(
        attempt.outcome(None),
        AttemptOutcome::Delivered { status: 204 }
    );

    let [request] = receiver
        .requests()
        .try_into()
        .map_err(|r| format!("{r:?}"))?;
    assert_eq!(request.path, "/hook");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["webhook-id"], "msg_7");
    assert_eq!(
        request.headers["user-agent"],
        SenderConfig::DEFAULT_USER_AGENT
    );
    let timestamp: i64 = request.headers["webhook-timestamp"].to_str()?.parse()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - 5..=now).contains(&timestamp), "{timestamp} vs {now}");
    let signature = request.headers["webhook-signature"].to_str()?;
    assert!(
        signature.starts_with("v1,") && !signature.contains(' '),
        "{signature}"
    );
    assert_eq!(&request.body[..], render_body(&claim.client, &claim.reply)?);
    Webhook::new(secret.expose())?.verify(&request.body, &request.headers)?;
    // Another secret does not verify it.
    let other = receiver::secret();
    assert!(
        Webhook::new(other.expose())?
            .verify(&request.body, &request.headers)
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify() -> TestResult {
    let receiver = Receiver::start().await?;
    let (current, previous) = (secret(), secret());
    let secrets = EndpointSecrets {
        current: current.clone(),
        previous: Some(previous.clone()),
    };
    let attempt = sender(AddressPolicy::AllowPrivate)
        .send(&claim(&receiver.url("/hook"), secrets))
        .await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    let [request] = receiver
        .requests()
        .try_into()
        .map_err(|r| format!("{r:?}"))?;
    let signature = request.headers["webhook-signature"].to_str()?;
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    for secret in [current, previous] {
        Webhook::new(secret.expose())?.verify(&request.body, &request.headers)?;
    }
    Ok(())
}

#[tokio::test]
async fn every_attempt_has_the_same_id_and_body_and_a_fresh_signature() -> TestResult {
    let receiver = Receiver::start().await?;
    let secret = secret();
    let claim = claim(&receiver.url("/hook"), one_secret(&secret));
    let sender = sender(AddressPolicy::AllowPrivate);
    sender.send(&claim).await;
    sender.send(&claim).await;
    let [first, second] = receiver
        .requests()
        .try_into()
        .map_err(|r| format!("{r:?}"))?;
    assert_eq!(first.body, second.body);
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"]);
    for request in [first, second] {
        Webhook::new(secret.expose())?.verify(&request.body, &request.headers)?;
    }
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/moved", |_| Reply::redirect("/elsewhere"));
    let attempt = sender(AddressPolicy::AllowPrivate)
        .send(&claim(&receiver.url("/moved"), one_secret(&secret())))
        .await;
    assert_eq!(attempt.kind, AttemptKind::Status);
    assert_eq!(attempt.status, Some(302));
    let error = attempt.error.clone().unwrap_or_default();
    assert!(error.contains("/elsewhere"), "{error}");
    assert!(receiver.requests_to("/elsewhere").is_empty());
    assert!(matches!(
        attempt.outcome(Some(Duration::from_secs(5))),
        AttemptOutcome::Failed {
            status: Some(302),
            retry_in: Some(_),
            ..
        }
    ));
    Ok(())
}

#[tokio::test]
async fn a_failed_response_keeps_its_body_up_to_64_kib() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/short", |_| {
        Reply::status(503).body("down for maintenance")
    });
    // 1 + 2 × 100,000 bytes: the limit falls inside an "é".
    receiver.answer("/long", |_| {
        Reply::status(500).body(format!("x{}", "é".repeat(100_000)))
    });
    receiver.answer("/empty", |_| Reply::status(404));
    let sender = sender(AddressPolicy::AllowPrivate);

    let short = sender
        .send(&claim(&receiver.url("/short"), one_secret(&secret())))
        .await;
    assert_eq!((short.kind, short.status), (AttemptKind::Status, Some(503)));
    assert_eq!(short.error.as_deref(), Some("down for maintenance"));

    let long = sender
        .send(&claim(&receiver.url("/long"), one_secret(&secret())))
        .await;
    assert_eq!(long.status, Some(500));
    let error = long.error.unwrap_or_default();
    assert_eq!(error.len(), MAX_ERROR_BODY - 1);
    assert!(error.starts_with("xé") && error.ends_with('é'));

    let empty = sender
        .send(&claim(&receiver.url("/empty"), one_secret(&secret())))
        .await;
    assert_eq!(empty.status, Some(404));
    assert!(empty.error.unwrap_or_default().contains("404"));
    Ok(())
}

#[tokio::test]
async fn a_slow_endpoint_times_out() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/slow", |_| {
        Reply::status(200).after(Duration::from_secs(10))
    });
    let sender = Sender::new(SenderConfig {
        timeout: Duration::from_millis(300),
        policy: AddressPolicy::AllowPrivate,
        ..SenderConfig::default()
    })?;
    let attempt = sender
        .send(&claim(&receiver.url("/slow"), one_secret(&secret())))
        .await;
    assert_eq!(attempt.kind, AttemptKind::Timeout, "{attempt:?}");
    assert_eq!(attempt.status, None);
    assert!(attempt.duration < Duration::from_secs(5), "{attempt:?}");
    let error = attempt.error.unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_fails_with_its_cause() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let attempt = sender(AddressPolicy::AllowPrivate)
        .send(&claim(
            &format!("http://{addr}/hook"),
            one_secret(&secret()),
        ))
        .await;
    assert_eq!(attempt.kind, AttemptKind::Connect, "{attempt:?}");
    let error = attempt.error.unwrap_or_default().to_lowercase();
    assert!(error.contains("connection refused"), "{error}");
    Ok(())
}

#[tokio::test]
async fn tls_to_a_plain_http_server_fails_to_connect() -> TestResult {
    let receiver = Receiver::start().await?;
    let url = format!("https://{}/hook", receiver.addr);
    let attempt = sender(AddressPolicy::AllowPrivate)
        .send(&claim(&url, one_secret(&secret())))
        .await;
    assert_eq!(attempt.kind, AttemptKind::Connect, "{attempt:?}");
    assert!(receiver.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn the_guard_refuses_localhost_under_public_only() -> TestResult {
    let receiver = Receiver::start().await?;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let refused = sender(AddressPolicy::PublicOnly)
        .send(&claim(&url, one_secret(&secret())))
        .await;
    assert_eq!(refused.kind, AttemptKind::Refused, "{refused:?}");
    let error = refused.error.unwrap_or_default();
    assert!(
        error.contains("localhost") && error.contains("loopback"),
        "{error}"
    );
    assert!(
        error.contains("127.0.0.1") || error.contains("::1"),
        "{error}"
    );
    assert!(receiver.requests().is_empty());

    // localhost may resolve to ::1 first, where the receiver does not
    // listen: the connector then falls back to 127.0.0.1.
    let allowed = sender(AddressPolicy::AllowPrivate)
        .send(&claim(&url, one_secret(&secret())))
        .await;
    assert!(allowed.is_delivered(), "{allowed:?}");
    assert_eq!(receiver.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_literal_loopback_address_is_refused_under_public_only() -> TestResult {
    let receiver = Receiver::start().await?;
    let attempt = sender(AddressPolicy::PublicOnly)
        .send(&claim(&receiver.url("/hook"), one_secret(&secret())))
        .await;
    assert_eq!(attempt.kind, AttemptKind::Refused, "{attempt:?}");
    assert_eq!(attempt.status, None);
    let error = attempt.error.unwrap_or_default();
    assert!(
        error.contains("127.0.0.1") && error.contains("loopback"),
        "{error}"
    );
    assert!(receiver.requests().is_empty());
    Ok(())
}
