//! `ibiki-server prune`, the real binary, on a PostgreSQL store.
#![cfg(all(unix, feature = "postgres"))]

use std::process::Stdio;

use ibiki_core::testing::{client, number, whole_held, whole_inbox};
use ibiki_core::{InboundReply, Normalizer, RawReply};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use tokio::process::Command;

use crate::database::TestDatabase;

/// Runs `ibiki-server prune` on the test database with `args`.
async fn prune(database: &TestDatabase, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ibiki-server"))
        .env_remove("DATABASE_URL")
        .env_remove("IBIKI_DATABASE_SCHEMA")
        .env_remove("RUST_LOG")
        .args(["prune", "--database-url", database.url()])
        .args(["--database-schema", database.schema()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run ibiki-server prune");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A reply received now: a routed reply is delivered at its reception.
fn reply_now(to: &str, body: &str) -> InboundReply {
    let now = OffsetDateTime::now_utc();
    let raw = RawReply {
        message_id: None,
        from: "+15005550006",
        to,
        body,
    };
    InboundReply::new(&Normalizer::new(), raw, now).expect("reply")
}

#[tokio::test]
async fn prune_deletes_old_deliveries_and_keeps_held_and_last_replies() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let store = database.open_store().await;
    let acme = client("acme");
    store
        .replace_numbers(&acme, &[number("+14155550100")])
        .await
        .expect("replace");
    for body in ["a1", "a2", "a3"] {
        let _ = store
            .receive(reply_now("+14155550100", body))
            .await
            .expect("receive");
    }
    let _ = store
        .receive(reply_now("+14155550199", "held"))
        .await
        .expect("receive");

    let (code, _, stderr) = prune(&database, &["--before", "1d"]).await;
    assert_eq!(code, 1, "a day is inside the retry windows: {stderr}");
    assert!(stderr.contains("--allow-recent"), "{stderr}");

    let (code, stdout, stderr) = prune(&database, &["--before", "3d"]).await;
    assert_eq!(
        (code, stdout.contains("pruned 0 ")),
        (0, true),
        "{stdout}{stderr}"
    );

    let ahead = (OffsetDateTime::now_utc() + Duration::hours(1))
        .format(&Rfc3339)
        .expect("format");
    let args = ["--before", &ahead, "--allow-recent", "--batch", "1"];
    let (code, stdout, stderr) = prune(&database, &args).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("pruned 2 delivered replies"), "{stdout}");
    let kept: Vec<String> = whole_inbox(&*store, &acme)
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(kept, ["a3"]);
    assert_eq!(whole_held(&*store).await.len(), 1);
}
