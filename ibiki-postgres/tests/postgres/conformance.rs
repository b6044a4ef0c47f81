//! The whole conformance suite, each test and property case in a fresh schema.

ibiki_core::conformance_tests!(crate::support::fresh_store);
