//! Reading the old system's table in each of its shapes, and importing it.

use ibiki_core::testing::{client, number};
use ibiki_core::{AssignmentStore, ImportPlanner, ImportRow, Normalizer, PhoneNumbersInput};
use ibiki_postgres::{ImportTable, ImportTableError, ImportTableShape};
use sqlx::{Connection, Executor, PgConnection};

use crate::support::{
    SchemaGuard, TestStore, check_reachable, database_url, fresh_store, unique_schema,
};

/// A schema of its own holding a legacy table made by `ddl` (`{s}` is the
/// quoted schema); `None` to skip.
async fn legacy(ddl: &str) -> Option<(SchemaGuard, String)> {
    let url = database_url()?;
    check_reachable(&url).await;
    let schema = unique_schema();
    let guard = SchemaGuard::new(&url, &schema);
    let mut conn = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let sql = format!(
        "CREATE SCHEMA \"{schema}\"; {}",
        ddl.replace("{s}", &format!("\"{schema}\""))
    );
    conn.execute(&*sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    Some((guard, schema))
}

async fn read_all(table: &ImportTable, url: &str) -> (ImportTableShape, Vec<ImportRow>, usize) {
    let mut reader = table
        .open(url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let shape = reader.shape();
    let mut rows = Vec::new();
    let mut batches = 0;
    while let Some(batch) = reader
        .next_batch()
        .await
        .unwrap_or_else(|e| panic!("read: {e}"))
    {
        assert!(!batch.is_empty());
        batches += 1;
        rows.extend(batch);
    }
    assert!(reader.next_batch().await.expect("after the end").is_none());
    (shape, rows, batches)
}

fn list(items: &[&str]) -> PhoneNumbersInput {
    PhoneNumbersInput::List(items.iter().map(|s| (*s).to_owned()).collect())
}

#[tokio::test]
async fn a_text_array_column_is_found_and_read_in_batches() {
    let Some((guard, schema)) = legacy(
        "CREATE TABLE {s}.client_profiles (id serial, user_id text, email text, \
           assigned_phone_numbers text[]); \
         INSERT INTO {s}.client_profiles (user_id, assigned_phone_numbers) VALUES \
           ('c1', ARRAY['+1 415 555 0100', '(415) 555-0101', '', NULL, '+1 415 555 0100']), \
           ('c2', NULL), ('c3', '{}'), ('c4', ARRAY['14155550102', '+1111']), \
           (NULL, ARRAY['+14155550103'])",
    )
    .await
    else {
        return;
    };
    let table = ImportTable::new()
        .table(format!("{schema}.client_profiles"))
        .batch_size(2);
    let (shape, rows, batches) = read_all(&table, guard.url()).await;
    assert_eq!(shape, ImportTableShape::Array);
    assert_eq!(batches, 3);
    let expected = vec![
        ImportRow::new(
            "c1",
            list(&[
                "+1 415 555 0100",
                "(415) 555-0101",
                "",
                "",
                "+1 415 555 0100",
            ]),
        ),
        ImportRow::new("c2", list(&[])),
        ImportRow::new("c3", list(&[])),
        ImportRow::new("c4", list(&["14155550102", "+1111"])),
        ImportRow::new("", list(&["+14155550103"])),
    ];
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn a_text_column_is_read_when_there_is_no_array_and_its_lists_split() {
    let Some((guard, schema)) = legacy(
        "CREATE TABLE {s}.client_profiles (user_id integer, assigned_phone_number text); \
         INSERT INTO {s}.client_profiles VALUES \
           (7, '+1 415 555 0100'), (8, '(415) 555-0101, 14155550102,,'), (9, NULL), (10, '')",
    )
    .await
    else {
        return;
    };
    let table = ImportTable::new().table(format!("{schema}.client_profiles"));
    let (shape, rows, batches) = read_all(&table, guard.url()).await;
    assert_eq!((shape, batches), (ImportTableShape::Text, 1));
    // Integer ids are read as text, ordered as text.
    assert_eq!(
        rows,
        [
            ImportRow::new("10", ""),
            ImportRow::new("7", "+1 415 555 0100"),
            ImportRow::new("8", "(415) 555-0101, 14155550102,,"),
            ImportRow::new("9", ""),
        ]
    );

    let us = Normalizer::new().with_default_region("US".parse().expect("US"));
    let mut planner = ImportPlanner::new(us);
    rows.into_iter().for_each(|row| planner.push(row));
    let plan = planner.finish();
    assert_eq!(plan.clients().len(), 2);
    assert_eq!(
        plan.clients()[1],
        (
            client("8"),
            vec![number("+14155550101"), number("+14155550102")]
        )
    );
}

#[tokio::test]
async fn names_that_need_quoting_are_read() {
    let Some((guard, schema)) = legacy(
        "CREATE TABLE {s}.\"Client Profiles\" (\"User ID\" text, \"phones \"\"v2\"\"\" varchar[]); \
         INSERT INTO {s}.\"Client Profiles\" VALUES ('a', ARRAY['+14155550100'])",
    )
    .await
    else {
        return;
    };
    let table = ImportTable::new()
        .table(format!("{schema}.Client Profiles"))
        .client_column("User ID")
        .numbers_column("phones \"v2\"");
    let (shape, rows, _) = read_all(&table, guard.url()).await;
    assert_eq!(shape, ImportTableShape::Array);
    assert_eq!(rows, [ImportRow::new("a", list(&["+14155550100"]))]);
}

#[tokio::test]
async fn a_missing_table_or_column_is_named_with_the_columns() {
    let Some((guard, schema)) =
        legacy("CREATE TABLE {s}.client_profiles (user_id text, phone text)").await
    else {
        return;
    };
    let missing = ImportTable::new().table(format!("{schema}.profiles"));
    match missing.open(guard.url()).await {
        Err(ImportTableError::NoTable { table }) => assert_eq!(table, format!("{schema}.profiles")),
        other => panic!("{other:?}"),
    }
    let table = ImportTable::new().table(format!("{schema}.client_profiles"));
    let error = table
        .open(guard.url())
        .await
        .expect_err("no numbers column");
    let message = error.to_string();
    assert!(
        message.contains("\"assigned_phone_numbers\" or \"assigned_phone_number\"")
            && message.contains("its columns: \"user_id\", \"phone\""),
        "{message}"
    );
    let error = table
        .clone()
        .client_column("userId")
        .numbers_column("phone")
        .open(guard.url())
        .await
        .expect_err("no client column");
    assert!(
        matches!(&error, ImportTableError::NoColumn { column, .. } if column == "userId"),
        "{error}"
    );
    let (_, rows, _) = read_all(&table.numbers_column("phone"), guard.url()).await;
    assert!(rows.is_empty());
}

#[tokio::test]
async fn a_legacy_table_imports_into_the_store_once() {
    let Some(store) = fresh_store().await.map(TestStore::into_store) else {
        return;
    };
    let Some((guard, schema)) = legacy(
        "CREATE TABLE {s}.client_profiles (user_id text, assigned_phone_numbers text[]); \
         INSERT INTO {s}.client_profiles \
         SELECT 'client-' || g, ARRAY['+1 415 555 ' || lpad((g * 2)::text, 4, '0'), \
                                      '(415) 555-' || lpad((g * 2 + 1)::text, 4, '0')] \
         FROM generate_series(100, 149) AS g",
    )
    .await
    else {
        return;
    };
    let table = ImportTable::new()
        .table(format!("{schema}.client_profiles"))
        .batch_size(7);
    let (_, rows, _) = read_all(&table, guard.url()).await;
    let us = Normalizer::new().with_default_region("US".parse().expect("US"));
    let mut planner = ImportPlanner::new(us);
    rows.into_iter().for_each(|row| planner.push(row));
    let plan = planner.finish();
    let report = plan.apply(&store).await.expect("import");
    assert_eq!((report.clients, report.assigned), (50, 100));
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        store.numbers_of(&client("client-120")).await.expect("read"),
        [number("+14155550240"), number("+14155550241")]
    );
    let again = plan.apply(&store).await.expect("again");
    assert_eq!((again.assigned, again.already_assigned), (0, 100));
}

#[tokio::test]
async fn a_store_without_synchronous_commit_syncs_on_demand() {
    let Some(url) = database_url() else {
        return;
    };
    check_reachable(&url).await;
    let schema = unique_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let store = ibiki_postgres::PostgresStore::builder(&url)
        .schema(&schema)
        .max_connections(1)
        .synchronous_commit(false)
        .connect()
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await
        .expect("show");
    assert_eq!(setting, "off");
    store
        .add_numbers(&client("a"), &[number("+14155550100")])
        .await
        .expect("add");
    store.sync().await.expect("sync");
    // The session keeps its setting after the sync.
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await
        .expect("show");
    assert_eq!(setting, "off");
    assert_eq!(
        store.owner_of(number("+14155550100")).await.expect("read"),
        Some(client("a"))
    );
    store.pool().close().await;
}
