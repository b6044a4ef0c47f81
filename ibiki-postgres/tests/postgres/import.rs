//! The import property, each case in a fresh schema.

#[test]
fn import_matches_the_model() {
    ibiki_core::testing::import::import_property(crate::support::fresh_store, 24);
}
