//! Retention on PostgreSQL: what migration `0003_retention.sql` adds beyond
//! the conformance rules.

use ibiki_core::testing::{client, number, reply, whole_inbox};
use ibiki_core::{AssignmentStore, ReplyStore};
use sqlx::Executor;
use time::OffsetDateTime;

use crate::support::fresh_store;

/// Replies recorded before migration `0002_history_and_delivery.sql` have no
/// `delivered_at`: they count from their arrival. Since migration
/// `0007_delivery_instants.sql` a routed reply's is the database's instant,
/// not the reply's own time.
#[tokio::test]
async fn replies_without_a_delivery_time_count_from_their_arrival() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let (store, s) = (test.store(), test.schema());
    let acme = client("acme");
    store
        .replace_numbers(&acme, &[number("+14155550100")])
        .await
        .expect("replace");
    for (body, at) in [("old1", 1), ("old2", 2), ("old3", 3)] {
        let _ = store
            .receive(reply(None, "+14155550100", body, at))
            .await
            .expect("receive");
    }
    let mut conn = test.connection().await;
    let stamped: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {s}.replies \
         WHERE delivery = 'routed' AND delivered_at > now() - interval '1 hour'"
    ))
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(stamped, 3, "routed replies are delivered now, not in 2024");
    // As if recorded before migration 0002.
    conn.execute(&*format!(
        "UPDATE {s}.replies SET delivery = NULL, delivered_at = NULL"
    ))
    .await
    .expect("clear");
    // Received on 2024-01-01 (see `reply`): a week later is after all of them.
    let week_later =
        OffsetDateTime::from_unix_timestamp(1_704_067_200 + 7 * 86_400).expect("a time");
    assert_eq!(
        store.prune_delivered(week_later, 100).await.expect("prune"),
        2
    );
    let kept: Vec<String> = whole_inbox(store, &acme)
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(kept, ["old3"]);
}

/// The prune's candidate query matches the delivery-time index (expression
/// and predicate), so it can be read in order instead of sorting the table.
/// An empty table would be scanned anyway, so scans are switched off.
#[tokio::test]
async fn pruning_reads_the_delivery_time_index() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let s = test.schema();
    let mut conn = test.connection().await;
    conn.execute("SET enable_seqscan = off; SET enable_sort = off")
        .await
        .expect("planner settings");
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN SELECT old.id FROM {s}.replies AS old \
         WHERE old.client_id IS NOT NULL \
         AND coalesce(old.delivered_at, old.received_at) < now() \
         ORDER BY coalesce(old.delivered_at, old.received_at) LIMIT 100"
    ))
    .fetch_all(&mut conn)
    .await
    .expect("explain");
    let plan = plan.join("\n");
    assert!(plan.contains("replies_delivered_at_idx"), "{plan}");
}
