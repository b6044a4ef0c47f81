//! `ibiki-server import`, the real binary, from a real PostgreSQL legacy
//! table of each shape and from CSV, into the PostgreSQL store.
#![cfg(all(unix, feature = "postgres"))]

use std::process::Stdio;
use std::sync::Arc;

use ibiki_core::testing::{client, number, reply};
use ibiki_core::{DynReplyStore, Receipt};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio::process::Command;

use crate::database::{SchemaGuard, TestDatabase, unique_schema};

/// Every variable the binary reads, so the tests' environment cannot leak in.
const SETTINGS: [&str; 7] = [
    "IBIKI_LISTEN",
    "DATABASE_URL",
    "IBIKI_DATABASE_SCHEMA",
    "IBIKI_DEFAULT_REGION",
    "IBIKI_ADMIN_TOKEN",
    "IBIKI_WEBHOOK_SECRET",
    "RUST_LOG",
];

/// An ibiki store and a legacy table made by `ddl` (`{s}` is the legacy
/// schema, quoted), each in a schema of its own; `None` to skip.
struct Setup {
    database: TestDatabase,
    legacy: String,
    _legacy_cleanup: SchemaGuard,
}

impl Setup {
    async fn new(ddl: &str) -> Option<Self> {
        let database = TestDatabase::create().await?;
        let legacy = unique_schema();
        let cleanup = SchemaGuard::new(database.url(), &legacy);
        let mut conn = PgConnection::connect(database.url())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let sql = format!(
            "CREATE SCHEMA \"{legacy}\"; {}",
            ddl.replace("{s}", &format!("\"{legacy}\""))
        );
        conn.execute(&*sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        Some(Self {
            database,
            legacy,
            _legacy_cleanup: cleanup,
        })
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.legacy)
    }

    /// Runs `ibiki-server import --from-database … --database-url … args`.
    async fn import(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec![
            "import",
            "--from-database",
            self.database.url(),
            "--database-url",
            self.database.url(),
            "--database-schema",
            self.database.schema(),
        ];
        all.extend_from_slice(args);
        run(&all).await
    }

    async fn store(&self) -> Arc<DynReplyStore> {
        self.database.open_store().await
    }
}

async fn run(args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ibiki-server"));
    for name in SETTINGS {
        command.env_remove(name);
    }
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run ibiki-server import");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("one JSON document: {e}\n{stdout}"))
}

#[tokio::test]
async fn a_text_array_table_dry_run_then_import_then_again() {
    let Some(setup) = Setup::new(
        "CREATE TABLE {s}.client_profiles (user_id text PRIMARY KEY, email text, \
           assigned_phone_numbers text[]); \
         INSERT INTO {s}.client_profiles (user_id, assigned_phone_numbers) VALUES \
           ('acme', ARRAY['+1 415 555 0100', '(415) 555-0101', '', NULL, '415.555.0101', '+1111']), \
           ('globex', ARRAY['14155550102', '+1 415 555 0103']), \
           ('initech', ARRAY['+14155550103']), \
           ('hooli', NULL), ('pied-piper', '{}'), \
           ('umbrella-legacy', ARRAY['+1 415 555 0109'])",
    )
    .await
    else {
        return;
    };
    // Already in ibiki: a number of another client, and a held reply.
    let store = setup.store().await;
    store
        .add_numbers(&client("umbrella"), &[number("+14155550109")])
        .await
        .expect("setup");
    let held = store
        .receive(reply(Some("SM1"), "+14155550100", "hello", 0))
        .await
        .expect("receive");
    assert_eq!(held, Receipt::Held);
    let table = setup.table("client_profiles");
    let args = [
        "--table",
        &table,
        "--default-region",
        "US",
        "--format",
        "json",
    ];

    let (code, stdout, stderr) = setup.import(&[&args[..], &["--dry-run"]].concat()).await;
    assert_eq!(code, 3, "{stderr}");
    let dry = json_report(&stdout);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["assigned"], 3, "{dry}");
    assert_eq!(
        store.owner_of(number("+14155550100")).await.expect("read"),
        None
    );

    let (code, stdout, stderr) = setup.import(&args).await;
    assert_eq!(code, 3, "{stderr}");
    let report = json_report(&stdout);
    assert_eq!(
        report,
        json!({
            "dryRun": false, "clients": 4, "entries": 8, "emptyRows": 2, "duplicates": 1,
            "assigned": 3, "alreadyAssigned": 0, "released": 1,
            "invalid": [{"userId": "acme", "index": 5, "input": "+1111",
                         "reason": "too short for its country: its numbers have at least 10 digits after the country code"}],
            "contested": [{"phoneNumber": "+14155550103", "userIds": ["globex", "initech"]}],
            "conflicts": [{"phoneNumber": "+14155550109", "userId": "umbrella-legacy",
                           "ownerUserId": "umbrella"}],
        })
    );
    assert_eq!(
        store.numbers_of(&client("acme")).await.expect("read"),
        [number("+14155550100"), number("+14155550101")]
    );
    assert_eq!(
        store.numbers_of(&client("globex")).await.expect("read"),
        [number("+14155550102")]
    );
    let dry_without_released = json!({"released": 0, "dryRun": true});
    let mut expected_dry = report.clone();
    for (key, value) in dry_without_released.as_object().expect("object") {
        expected_dry[key] = value.clone();
    }
    assert_eq!(
        dry, expected_dry,
        "the dry run reported what the import did"
    );

    let (code, stdout, _) = setup.import(&args).await;
    assert_eq!(code, 3);
    let again = json_report(&stdout);
    assert_eq!(
        (&again["assigned"], &again["alreadyAssigned"]),
        (&json!(0), &json!(3))
    );
    assert_eq!(again["released"], 0);
}

#[tokio::test]
async fn text_tables_single_numbers_and_lists_import_completely() {
    let Some(setup) = Setup::new(
        "CREATE TABLE {s}.client_profiles (user_id integer, assigned_phone_number text); \
         INSERT INTO {s}.client_profiles VALUES \
           (1, '+1 415 555 0100'), (2, '(415) 555-0101, 14155550102'), (3, NULL), (4, ''); \
         CREATE TABLE {s}.\"Old Clients\" (\"Client\" text, \"Phone List\" varchar(200)); \
         INSERT INTO {s}.\"Old Clients\" VALUES ('x', '+44 20 7946 0958,+1 415 555 0110')",
    )
    .await
    else {
        return;
    };
    let table = setup.table("client_profiles");
    let (code, stdout, stderr) = setup
        .import(&["--table", &table, "--default-region", "us"])
        .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("Import done."), "{stdout}");
    assert!(stdout.contains("  assigned               3\n"), "{stdout}");
    assert!(stdout.contains("  empty rows skipped     2\n"), "{stdout}");
    assert!(
        stdout.contains("Every entry was imported or already there."),
        "{stdout}"
    );
    let store = setup.store().await;
    assert_eq!(
        store.numbers_of(&client("2")).await.expect("read"),
        [number("+14155550101"), number("+14155550102")]
    );

    let quoted = setup.table("Old Clients");
    let (code, stdout, stderr) = setup
        .import(&[
            "--table",
            &quoted,
            "--client-column",
            "Client",
            "--numbers-column",
            "Phone List",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json_report(&stdout)["assigned"], 2);
    assert_eq!(
        store.owner_of(number("+442079460958")).await.expect("read"),
        Some(client("x"))
    );
}

#[tokio::test]
async fn a_missing_table_or_column_fails_naming_it() {
    let Some(setup) =
        Setup::new("CREATE TABLE {s}.client_profiles (user_id text, phones text[])").await
    else {
        return;
    };
    let table = setup.table("client_profiles");
    let (code, stdout, stderr) = setup.import(&["--table", &table]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("table \"{table}\" has no column"))
            && stderr.contains("its columns: \"user_id\", \"phones\""),
        "{stderr}"
    );
    let missing = setup.table("profiles");
    let (code, _, stderr) = setup.import(&["--table", &missing]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("table \"{missing}\" does not exist")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_csv_file_imports() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let path = std::env::temp_dir().join(format!("{}.csv", database.schema()));
    std::fs::write(
        &path,
        "userId,phoneNumbers\n42,\"+1 415 555 0100, (415) 555-0101\"\n43,+14155550102\n44,\n",
    )
    .expect("write csv");
    let file = path.to_str().expect("utf-8 path");
    let args = [
        "import",
        "--from-csv",
        file,
        "--default-region",
        "US",
        "--format",
        "json",
        "--database-url",
        database.url(),
        "--database-schema",
        database.schema(),
    ];
    let (code, stdout, stderr) = run(&args).await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{stderr}");
    let report = json_report(&stdout);
    assert_eq!(
        (&report["assigned"], &report["emptyRows"]),
        (&json!(3), &json!(1))
    );
    let store = database.open_store().await;
    assert_eq!(
        store.owner_of(number("+14155550101")).await.expect("read"),
        Some(client("42"))
    );
}

#[tokio::test]
async fn flags_are_checked() {
    for args in [
        vec!["import"],
        vec![
            "import",
            "--from-csv",
            "a.csv",
            "--from-database",
            "postgres://x/y",
        ],
        vec!["import", "--from-csv", "a.csv", "--table", "t"],
        vec!["import", "--from-csv", "a.csv", "--format", "xml"],
    ] {
        let (code, stdout, _) = run(&args).await;
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty());
    }
    // Without a store to import into, only a dry run is possible.
    let (code, _, stderr) = run(&["import", "--from-csv", "/nonexistent.csv"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--database-url"), "{stderr}");
    let (code, _, stderr) = run(&["import", "--from-csv", "/nonexistent.csv", "--dry-run"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot open /nonexistent.csv"), "{stderr}");
}
