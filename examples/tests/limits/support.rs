//! What the limit tests share: taking turns, the test process's own
//! open-file limit, signed webhooks and the refusal counters.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{Mutex, MutexGuard};

/// The admin token of every server here.
pub(crate) const TOKEN: &str = "limits-token";

/// The webhook secret of every server here.
pub(crate) const SECRET: &str = "limits-secret";

/// Held for the whole of a test: they run one at a time.
pub(crate) async fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    TURN.lock().await
}

/// Raises this process's open-file limit to `needed` (the hard limit too,
/// where the process may), or says why it cannot.
#[cfg(target_os = "linux")]
pub(crate) fn open_files(needed: u64) -> Result<(), String> {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().map_err(|e| e.to_string())?;
    if soft >= needed {
        return Ok(());
    }
    let raised = if hard >= needed {
        Resource::NOFILE.set(needed, hard)
    } else {
        Resource::NOFILE.set(needed, needed)
    };
    raised.map_err(|error| {
        format!(
            "this test needs {needed} open files and the hard limit is {hard} ({error}); \
             raise it (ulimit -Hn {needed}, or run as root) to run it"
        )
    })
}

/// An HTTP client without a proxy or a pool: every request on a connection
/// of its own.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A reply to `to`, as `POST /webhooks/sms` takes it.
pub(crate) fn reply(message_id: &str, to: &str) -> String {
    serde_json::json!({
        "messageId": message_id,
        "from": "+15005550006",
        "to": to,
        "body": "hello",
    })
    .to_string()
}

/// `POST /webhooks/sms` with `body`, signed with [`SECRET`].
pub(crate) fn signed_webhook(
    http: &reqwest::Client,
    base: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("{now}.{body}").as_bytes());
    let signature = format!("t={now},v1={}", hex::encode(mac.finalize().into_bytes()));
    http.post(format!("{base}/webhooks/sms"))
        .header("content-type", "application/json")
        .header("x-ibiki-signature", signature)
        .body(body)
}

/// `ibiki_refusals_total` by reason, read from `/metrics` at `base` (with
/// the admin token, which a `--metrics-listen` address ignores).
pub(crate) async fn refusals(http: &reqwest::Client, base: &str) -> BTreeMap<String, u64> {
    let text = metrics(http, base).await;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ibiki_refusals_total{reason=\"") else {
            continue;
        };
        let (reason, count) = rest.split_once("\"} ").expect("a counter line");
        counts.insert(reason.to_owned(), count.parse().expect("a count"));
    }
    assert_eq!(counts.len(), 6, "every reason shows: {text}");
    counts
}

/// The text of `/metrics` at `base`.
pub(crate) async fn metrics(http: &reqwest::Client, base: &str) -> String {
    let answer = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scraped");
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.text().await.expect("metrics text")
}
