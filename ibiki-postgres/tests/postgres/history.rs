//! Ownership history in the database: the plan of `owner_at`, and the
//! history an upgrade from 0001 gives the assignments it finds.

use std::time::Duration;

use ibiki_core::testing::{client, number, whole_history};
use ibiki_core::{AssignmentStore, OwnershipChange};
use ibiki_postgres::PostgresStore;
use sqlx::{Connection, Executor, PgConnection};
use time::OffsetDateTime;

use crate::support::{SchemaGuard, database_url, fresh_store, unique_schema};

/// "Owner of N at T" is one index scan of `number_history_owner_at_idx`
/// that stops at the first row, whatever the history's size:
///
/// ```text
/// Limit
///   ->  Index Only Scan using number_history_owner_at_idx on number_history h
///         Index Cond: ((phone_number = '+14155012345') AND (at <= '2024-06-01 …'))
/// ```
#[tokio::test]
async fn owner_at_is_one_index_scan() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    // 20,000 numbers, three events each, a day apart.
    let fill = format!(
        "INSERT INTO {s}.number_history (phone_number, at, client_id, change) \
         SELECT '+1415' || (5000000 + g)::text, \
         timestamptz '2024-01-01' + (k || ' days')::interval, 'client-' || (g % 500), \
         CASE k WHEN 1 THEN 'unassigned' ELSE 'assigned' END \
         FROM generate_series(1, 20000) AS g, generate_series(0, 2) AS k ORDER BY k, g"
    );
    conn.execute(&*fill).await.unwrap_or_else(|e| panic!("{e}"));
    // The visibility map, so that the scan need not visit the table.
    let vacuum = format!("VACUUM ANALYZE {s}.number_history");
    conn.execute(&*vacuum)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let explain = format!(
        "EXPLAIN SELECT h.client_id, h.change FROM {s}.number_history AS h \
         WHERE h.phone_number = '+14155012345' AND h.at <= '2024-01-02 12:00Z' \
         ORDER BY h.at DESC, h.seq DESC LIMIT 1"
    );
    let lines: Vec<String> = sqlx::query_scalar(&explain)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = lines.join("\n");
    assert!(
        plan.contains("Index Only Scan using number_history_owner_at_idx"),
        "{plan}"
    );
    assert!(!plan.contains("Sort"), "no sort: {plan}");
    let at = OffsetDateTime::from_unix_timestamp(1_704_196_800).unwrap_or_else(|e| panic!("{e}"));
    let owner = test.store().owner_at(number("+14155012345"), at).await;
    assert_eq!(owner.ok().flatten(), None, "unassigned on 2024-01-02");
    let owner = test
        .store()
        .owner_at(number("+14155012345"), at + time::Duration::DAY)
        .await;
    assert_eq!(owner.ok().flatten(), Some(client("client-345")));
}

/// A database migrated with 0001 only has assignments without history; the
/// upgrade gives each one "assigned" event at its `assigned_at`, so
/// `owner_at` agrees with `owner_of`, and later changes follow it.
#[tokio::test]
async fn the_upgrade_backfills_one_event_per_assignment() {
    let Some(url) = database_url() else {
        return;
    };
    let schema = unique_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let dir = std::env::temp_dir().join(format!("ibiki-0001-{schema}"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let first = "0001_assignments_and_replies.sql";
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    std::fs::copy(source.join(first), dir.join(first)).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let setup = format!("CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\"");
    conn.execute(&*setup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let migrator = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    migrator
        .run(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("0001: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    conn.execute(
        "INSERT INTO assignments (phone_number, client_id, assigned_at) VALUES \
         ('+14155550100', 'acme', '2024-01-01T09:00Z'), ('+14155550101', 'globex', '2024-02-01T09:00Z')",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = conn.close().await;

    let store = PostgresStore::builder(&url)
        .schema(&schema)
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("0002: {e}"));
    let (a, b) = (number("+14155550100"), number("+14155550101"));
    let events = whole_history(&store, a).await;
    let assigned =
        OffsetDateTime::from_unix_timestamp(1_704_099_600).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].client.as_str(), events[0].change, events[0].at),
        ("acme", OwnershipChange::Assigned, assigned)
    );
    let now = OffsetDateTime::now_utc();
    for n in [a, b] {
        let at = store
            .owner_at(n, now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let of = store.owner_of(n).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(at, of, "owner_at agrees with owner_of for {n}");
    }
    let before = assigned - time::Duration::SECOND;
    let owner = store
        .owner_at(a, before)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(owner, None, "nobody before assigned_at");
    store
        .remove_numbers(&client("acme"), &[a])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let changes: Vec<_> = whole_history(&store, a)
        .await
        .iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(
        changes,
        [OwnershipChange::Assigned, OwnershipChange::Unassigned]
    );
    store.pool().close().await;
}
