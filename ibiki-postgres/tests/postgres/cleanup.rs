//! Tests leave nothing behind: every schema is dropped with its store.

use std::sync::{Arc, Mutex};

use ibiki_core::testing::{pages_follow_cursors, state_machine_property};

use crate::support::{database_url, fresh_store, schema_exists};

/// After a conformance test and a few property cases, none of their schemas
/// is left on the server.
#[test]
fn every_schema_is_dropped_with_its_store() {
    let Some(url) = database_url() else {
        return;
    };
    let made = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&made);
    state_machine_property(
        move || {
            let recorded = Arc::clone(&recorded);
            async move {
                let store = fresh_store().await?;
                if let Ok(mut made) = recorded.lock() {
                    made.push(store.store().schema().to_owned());
                }
                Some(store.into_store())
            }
        },
        4,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        if let Some(store) = fresh_store().await {
            let schema = store.store().schema().to_owned();
            pages_follow_cursors(store.into_store()).await;
            made.lock().unwrap_or_else(|e| e.into_inner()).push(schema);
        }
        let made = made.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(made.len(), 5, "{made:?}");
        for schema in made {
            assert!(!schema_exists(&url, &schema).await, "{schema} is left");
        }
    });
}
