//! `ibiki-server import` against a database whose network went silent: it
//! stops with a clear error within its deadline instead of hanging.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::process::{DEADLINE, Database};

/// Starting the process, on top of the deadline.
const SLACK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_import_into_a_black_hole_stops_within_its_deadline() {
    let Some(database) = Database::create().await else {
        return;
    };
    let csv = std::env::temp_dir().join(format!("ibiki-faults-{}.csv", database.schema));
    std::fs::write(&csv, "userId,phoneNumbers\nacme,+14155550142\n").expect("write the CSV");
    database.proxy.black_hole();

    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ibiki-server"))
        .env_remove("DATABASE_URL")
        .env_remove("IBIKI_DEFAULT_REGION")
        .args(["import", "--from-csv"])
        .arg(&csv)
        .args(["--database-url", database.url()])
        .args(["--database-schema", &database.schema])
        .args(["--database-timeout", &format!("{}ms", DEADLINE.as_millis())])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE + SLACK * 4, output)
        .await
        .expect("the import stops instead of hanging")
        .expect("run ibiki-server import");
    let took = started.elapsed();
    let _ = std::fs::remove_file(&csv);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(took < DEADLINE + SLACK, "stopped after {took:?}: {stderr}");
    assert!(stderr.contains("store unavailable"), "{stderr}");
}
