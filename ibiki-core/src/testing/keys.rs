//! The rules of the [`KeyStore`] contract, one async function each, run by
//! [`key_store_tests!`](crate::key_store_tests) against a fresh store.

use crate::testing::client;
use crate::{ApiKey, KeyStore, NewKey, StoreError};

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

async fn create<S: KeyStore + ?Sized>(store: &S, id: &str) -> NewKey {
    ok(store.create_key(&client(id)).await, "create_key")
}

/// The key a client would present: parsed back from the text it was shown.
fn presented(created: &NewKey) -> ApiKey {
    ApiKey::parse(created.key.expose()).unwrap_or_else(|e| panic!("a created key parses: {e}"))
}

/// A created key authenticates as its client and only as it; a key nobody
/// created authenticates as nobody.
pub async fn created_keys_authenticate_as_their_client<S: KeyStore>(store: S) {
    let acme = create(&store, "acme").await;
    let bob = create(&store, "bob").await;
    for (created, owner) in [(&acme, "acme"), (&bob, "bob")] {
        let found = ok(
            store.key_owner(&presented(created).digest()).await,
            "key_owner",
        );
        assert_eq!(
            found,
            Some(client(owner)),
            "a key authenticates as its client"
        );
        assert_eq!(created.info.client, client(owner));
        assert_eq!(created.info.prefix, created.key.prefix());
    }
    assert_ne!(
        acme.info.id, bob.info.id,
        "key ids are unique across clients"
    );
    let stranger = ApiKey::generate().unwrap_or_else(|e| panic!("random: {e}"));
    assert_eq!(
        ok(store.key_owner(&stranger.digest()).await, "key_owner"),
        None
    );
}

/// A revoked key stops at once; the client's other keys go on; revoking is
/// scoped to the key's client and happens once.
pub async fn revoked_keys_stop_at_once<S: KeyStore>(store: S) {
    let first = create(&store, "acme").await;
    let second = create(&store, "acme").await;
    let acme = client("acme");
    assert!(
        !ok(
            store.revoke_key(&client("bob"), first.info.id).await,
            "revoke"
        ),
        "another client cannot revoke the key"
    );
    assert_eq!(
        ok(
            store.key_owner(&presented(&first).digest()).await,
            "key_owner"
        ),
        Some(acme.clone()),
        "a refused revocation changes nothing"
    );
    assert!(ok(store.revoke_key(&acme, first.info.id).await, "revoke"));
    assert_eq!(
        ok(
            store.key_owner(&presented(&first).digest()).await,
            "key_owner"
        ),
        None,
        "a revoked key stops at once"
    );
    assert_eq!(
        ok(
            store.key_owner(&presented(&second).digest()).await,
            "key_owner"
        ),
        Some(acme.clone()),
        "the client's other key goes on"
    );
    assert!(
        !ok(store.revoke_key(&acme, first.info.id).await, "revoke"),
        "revoked once"
    );
    let left = ok(store.keys_of(&acme).await, "keys_of");
    assert_eq!(
        left.iter().map(|k| k.id).collect::<Vec<_>>(),
        [second.info.id]
    );
}

/// A client's keys are listed oldest first, with their prefixes, and no other
/// client's; a client without keys lists none.
pub async fn keys_are_listed_by_client_oldest_first<S: KeyStore>(store: S) {
    let mut created = Vec::new();
    for owner in ["acme", "bob", "acme", "acme"] {
        created.push(create(&store, owner).await);
    }
    let listed = ok(store.keys_of(&client("acme")).await, "keys_of");
    let expected: Vec<_> = created
        .iter()
        .filter(|k| k.info.client == client("acme"))
        .map(|k| k.info.clone())
        .collect();
    assert_eq!(listed, expected, "acme's keys, oldest first, as created");
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));
    assert!(ok(store.keys_of(&client("carol")).await, "keys_of").is_empty());
}

/// A key's use is recorded, but at most once per
/// [`KEY_USE_RESOLUTION`](crate::KEY_USE_RESOLUTION): authenticating does not
/// write per request.
pub async fn key_use_is_recorded_coarsely<S: KeyStore>(store: S) {
    let created = create(&store, "acme").await;
    let acme = client("acme");
    assert_eq!(created.info.last_used_at, None, "a new key was never used");
    let digest = presented(&created).digest();
    ok(store.key_owner(&digest).await, "key_owner");
    let first = ok(store.keys_of(&acme).await, "keys_of")[0].last_used_at;
    let first = first.unwrap_or_else(|| panic!("the first use is recorded"));
    assert!(first >= created.info.created_at - time::Duration::seconds(1));
    ok(store.key_owner(&digest).await, "key_owner");
    let again = ok(store.keys_of(&acme).await, "keys_of")[0].last_used_at;
    assert_eq!(
        again,
        Some(first),
        "a use within the resolution writes nothing"
    );
}

/// Expands to one test per rule of the [`KeyStore`] contract, against stores
/// from `$factory` (as [`conformance_tests!`](crate::conformance_tests)).
#[macro_export]
macro_rules! key_store_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            created_keys_authenticate_as_their_client,
            revoked_keys_stop_at_once,
            keys_are_listed_by_client_oldest_first,
            key_use_is_recorded_coarsely
        );
    };
}
