//! What the database itself guarantees: the constraints, the indexes the
//! queries use, where the migrations put things.

use std::str::FromStr;
use std::time::Duration;

use ibiki_core::testing::{client, number};
use ibiki_core::{AssignmentStore, Conflict, ReplyStore, StoreError};
use ibiki_postgres::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgConnection};

use crate::support::{SchemaGuard, fresh_store, unique_schema};

async fn plan(conn: &mut PgConnection, explain: &str) -> String {
    let lines: Vec<String> = sqlx::query_scalar(explain)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{explain}: {e}"));
    lines.join("\n")
}

/// Assigns 20,000 numbers (`+14155000001` …) to 500 clients by hand and
/// refreshes the planner's statistics, so plans are those of a real table.
async fn fill_assignments(conn: &mut PgConnection, s: &str) {
    let fill = format!(
        "INSERT INTO {s}.assignments (phone_number, client_id) \
         SELECT '+1415' || (5000000 + g)::text, 'client-' || (g % 500) \
         FROM generate_series(1, 20000) AS g; \
         ANALYZE {s}.assignments"
    );
    conn.execute(&*fill).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Routing looks the owner up by the primary key, with the value known
/// (custom plan) or not (the generic plan a prepared statement may switch
/// to). Sequential scans stay enabled: with 20,000 numbers the planner picks
/// the index because it is cheaper, as it would in production.
#[tokio::test]
async fn owner_lookup_uses_the_primary_key_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    fill_assignments(&mut conn, &s).await;
    // The statement PostgresStore runs for owner_of.
    let lookup = format!("SELECT client_id FROM {s}.assignments WHERE phone_number = $1");
    let custom = plan(
        &mut conn,
        &format!("EXPLAIN {}", lookup.replace("$1", "'+14155012345'")),
    )
    .await;
    assert!(
        custom.contains("Index Scan using assignments_pkey"),
        "{custom}"
    );
    let prepare = format!("PREPARE owner_lookup(text) AS {lookup}");
    conn.execute(&*prepare)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let generic = plan(&mut conn, "EXPLAIN EXECUTE owner_lookup('+14155012345')").await;
    assert!(
        generic.contains("Index Scan using assignments_pkey"),
        "{generic}"
    );
    let owner = test.store().owner_of(number("+14155012345")).await;
    assert_eq!(owner.ok().flatten(), Some(client("client-345")));
}

/// A client's numbers come from the client index, not a scan.
#[tokio::test]
async fn numbers_of_uses_the_client_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    fill_assignments(&mut conn, &s).await;
    let explain =
        format!("EXPLAIN SELECT phone_number FROM {s}.assignments WHERE client_id = 'client-7'");
    let shown = plan(&mut conn, &explain).await;
    assert!(shown.contains("assignments_client_idx"), "{shown}");
    let numbers = test.store().numbers_of(&client("client-7")).await;
    assert_eq!(numbers.map(|n| n.len()).ok(), Some(40));
}

/// A prefix search of the client list reads the range of the client index
/// that starts with the prefix, in its generic plan too (the statement is
/// prepared), and a page of clients with their numbers is one statement.
#[tokio::test]
async fn a_client_prefix_search_reads_a_range_of_the_client_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    fill_assignments(&mut conn, &s).await;
    let prepare = format!(
        "PREPARE by_prefix(text, bigint, text, text) AS \
         SELECT client_id, array_agg(phone_number ORDER BY phone_number) FROM {s}.assignments \
         WHERE client_id > $1 AND client_id >= $3 AND client_id < $4 \
         GROUP BY client_id ORDER BY client_id LIMIT $2"
    );
    conn.execute(&*prepare)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = plan(
        &mut conn,
        "EXPLAIN EXECUTE by_prefix('', 50, 'client-49', 'client-4:')",
    )
    .await;
    assert!(shown.contains("assignments_client_idx"), "{shown}");
    assert!(
        shown.contains("Index Cond"),
        "a range, not a filter: {shown}"
    );
    let page = ibiki_core::PageRequest::first(50);
    let listed = test.store().list_clients("client-49", &page).await;
    let listed = listed.unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = listed.items.iter().map(|c| c.client.as_str()).collect();
    assert_eq!(
        ids,
        [
            "client-49",
            "client-490",
            "client-491",
            "client-492",
            "client-493",
            "client-494",
            "client-495",
            "client-496",
            "client-497",
            "client-498",
            "client-499"
        ]
    );
    assert!(listed.items.iter().all(|c| c.numbers.len() == 40));
}

/// The held replies are counted on the partial index of the held area,
/// never by reading the delivered replies: 20,000 delivered, 100 held.
#[tokio::test]
async fn held_count_uses_the_held_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    let fill = format!(
        "INSERT INTO {s}.replies (to_number, from_address, body, received_at, client_id, \
         delivery_seq) \
         SELECT '+1415' || (5000000 + g)::text, '+15005550006', 'x', now(), \
         CASE WHEN g <= 20000 THEN 'client-' || (g % 500) END, \
         CASE WHEN g <= 20000 THEN g END \
         FROM generate_series(1, 20100) AS g; \
         ANALYZE {s}.replies"
    );
    conn.execute(&*fill).await.unwrap_or_else(|e| panic!("{e}"));
    let explain = format!("EXPLAIN SELECT count(*) FROM {s}.replies WHERE client_id IS NULL");
    let shown = plan(&mut conn, &explain).await;
    assert!(shown.contains("replies_held_idx"), "{shown}");
    assert_eq!(test.store().held_count().await.ok(), Some(100));
}

/// Numbers written by hand are checked too: only canonical E.164 is stored.
#[tokio::test]
async fn stored_numbers_must_be_canonical() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    let assign = format!("INSERT INTO {s}.assignments (phone_number, client_id) VALUES ($1, 'x')");
    let record = format!(
        "INSERT INTO {s}.replies (to_number, from_address, body, received_at) \
         VALUES ($1, '+15005550006', 'hi', now())"
    );
    for bad in [
        "14155550100",
        "+04155550100",
        "+1",
        "+1234567890123456",
        "+1 415 555 0100",
        "+1-415-555-0100",
        "+1415555010a",
        "+١٤١٥٥٥٥٠١٠٠",
        "",
    ] {
        for (sql, constraint) in [
            (&assign, "assignments_phone_number_canonical"),
            (&record, "replies_to_number_canonical"),
        ] {
            let refused = sqlx::query(sql).bind(bad).execute(&mut conn).await;
            let error = refused
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was stored"));
            let db = error
                .as_database_error()
                .unwrap_or_else(|| panic!("{error}"));
            assert_eq!(db.code().as_deref(), Some("23514"), "{bad:?}: {db}");
            assert_eq!(db.constraint(), Some(constraint), "{bad:?}");
        }
    }
    for good in ["+14155550100", "+10", "+999999999999999"] {
        sqlx::query(&assign)
            .bind(good)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

/// A writer that skips the store's locks (here: by hand, in an open
/// transaction) and takes a number first turns the store's unique violation
/// into a conflict naming it, with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_violation_is_a_conflict() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let (taken, free) = (number("+14155550100"), number("+14155550101"));
    let mut intruder = test.connection().await;
    let sneak = format!(
        "BEGIN; INSERT INTO {s}.assignments (phone_number, client_id) \
         VALUES ('+14155550100', 'intruder')"
    );
    intruder
        .execute(&*sneak)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = test.second_store().await;
    let globex = client("globex");
    let adding = tokio::spawn(async move { store.add_numbers(&globex, &[free, taken]).await });
    // The insert waits for the intruder's transaction to end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !adding.is_finished(),
        "the store did not wait for the intruder"
    );
    intruder
        .execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let result = adding.await.unwrap_or_else(|e| panic!("{e}"));
    match result {
        Err(StoreError::Conflict(conflicts)) => assert_eq!(
            conflicts,
            vec![Conflict {
                phone_number: taken,
                owner: client("intruder"),
            }]
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let store = test.store();
    assert_eq!(
        store.owner_of(free).await.ok().flatten(),
        None,
        "all or nothing"
    );
}

/// On a pool it did not build, the store needs READ COMMITTED (its locks rely
/// on each statement's fresh snapshot) and refuses to route otherwise.
#[tokio::test]
async fn refuses_to_run_without_read_committed() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let options = PgConnectOptions::from_str(test.url())
        .unwrap_or_else(|e| panic!("{e}"))
        .options([("default_transaction_isolation", r"repeatable\ read")]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store =
        PostgresStore::from_pool(pool, test.store().schema()).unwrap_or_else(|e| panic!("{e}"));
    let sent = ibiki_core::testing::reply(Some("SM1"), "+14155550100", "hi", 0);
    for failed in [
        ibiki_core::ReplyStore::receive(&store, sent).await.err(),
        store
            .add_numbers(&client("acme"), &[number("+14155550100")])
            .await
            .err(),
    ] {
        match failed {
            Some(StoreError::Backend(e)) => {
                let shown = format!("{e}");
                assert!(shown.contains("READ COMMITTED"), "{shown}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }
}

/// `from_pool` on a plain pool: `migrate` creates the schema and keeps the
/// migration history there, is idempotent and safe to run concurrently, and
/// leaves the pool's session settings alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_schema_on_any_pool() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let schema = unique_schema();
    let _guard = SchemaGuard::new(test.url(), &schema);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(test.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::from_pool(pool.clone(), &schema).unwrap_or_else(|e| panic!("{e}"));
    let twin = store.clone();
    let (first, second) = tokio::join!(store.migrate(), twin.migrate());
    first.and(second).unwrap_or_else(|e| panic!("migrate: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("again: {e}"));
    let history = format!("SELECT version FROM \"{schema}\"._sqlx_migrations ORDER BY version");
    let versions: Vec<i64> = sqlx::query_scalar(&history)
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let search_path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!search_path.contains(&schema), "{search_path}");
    let change = store
        .add_numbers(&client("acme"), &[number("+14155550100")])
        .await;
    assert_eq!(change.map(|c| c.count()).ok(), Some(1));
}
