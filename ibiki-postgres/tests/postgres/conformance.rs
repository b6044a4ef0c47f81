//! The whole conformance suite, each test and property case in a fresh schema.

use crate::support::{TestStore, fresh_store};

ibiki_core::conformance_tests!(|| async { fresh_store().await.map(TestStore::into_store) });
