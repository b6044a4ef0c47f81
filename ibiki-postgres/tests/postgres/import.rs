//! The import property, each case in a fresh schema.

use crate::support::{TestStore, fresh_store};

#[test]
fn import_matches_the_model() {
    ibiki_core::testing::import::import_property(
        || async { fresh_store().await.map(TestStore::into_store) },
        24,
    );
}
