//! Clients' API keys: the key store's rules, across servers, and what the
//! table holds.

use ibiki_core::{ApiKey, ClientId, KeyStore};
use sqlx::Row;

use crate::support::{TestStore, fresh_store};

ibiki_core::key_store_tests!(|| async { fresh_store().await.map(TestStore::into_store) });

fn acme() -> ClientId {
    ClientId::new("acme").expect("valid")
}

/// A key revoked through one server stops on another sharing the database,
/// at its next lookup: nothing is cached.
#[tokio::test]
async fn a_revocation_stops_the_key_on_every_server() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let other = test.second_store().await;
    let created = test.store().create_key(&acme()).await.expect("create");
    let digest = ApiKey::parse(created.key.expose())
        .expect("parses")
        .digest();
    assert_eq!(
        other.key_owner(&digest).await.expect("lookup"),
        Some(acme())
    );
    assert!(
        test.store()
            .revoke_key(&acme(), created.info.id)
            .await
            .expect("revoke")
    );
    assert_eq!(other.key_owner(&digest).await.expect("lookup"), None);
}

/// The table holds the key's SHA-256 and prefix, never its text.
#[tokio::test]
async fn the_table_never_holds_a_key() {
    let Some(test) = fresh_store().await else {
        return;
    };
    let created = test.store().create_key(&acme()).await.expect("create");
    let mut conn = test.connection().await;
    let row = sqlx::query(&format!(
        "SELECT digest, prefix, to_jsonb(k)::text AS whole FROM {}.api_keys AS k",
        test.schema()
    ))
    .fetch_one(&mut conn)
    .await
    .expect("one key");
    let digest: Vec<u8> = row.get("digest");
    assert_eq!(digest, created.key.digest().as_bytes());
    assert_eq!(row.get::<String, _>("prefix"), created.key.prefix());
    let whole: String = row.get("whole");
    assert!(!whole.contains(&created.key.expose()[12..]), "{whole}");
}
