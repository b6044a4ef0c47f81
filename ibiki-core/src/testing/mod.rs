//! The conformance suite every store runs (feature `testing`).
//!
//! One macro call runs the whole suite in a store crate's tests:
//!
//! ```ignore
//! ibiki_core::conformance_tests!(|| async { Some(MyStore::connect().await) });
//! ```
//!
//! The factory makes a fresh, empty store per test (and per property case).
//! It returns `None` to skip, after saying why: a store whose backend is absent
//! outside CI. The calling crate needs `tokio` as a dev-dependency with the
//! `macros` and `rt-multi-thread` features.
//!
//! Each rule is also a public async function, so a store can run one alone,
//! and [`Model`](model::Model) is the reference the property checks against.

mod conformance;
mod forwards;
#[doc(hidden)]
pub mod fuzz;
pub mod import;
mod keys;
pub mod model;
mod property;
mod signals;
mod state_machine;

pub use self::conformance::*;
pub use self::forwards::*;
pub use self::keys::*;
pub use self::signals::inbox_signals_wake_the_receiving_client;
pub use self::state_machine::{CLIENTS, NUMBERS, Op, run_ops, state_machine_property};

/// Sequences the state-machine property runs by default.
pub const DEFAULT_CASES: u32 = 256;

/// Expands to one test per rule of the store contracts, the two concurrency
/// tests and the state-machine property, all against stores from `$factory`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            replace_assigns_every_number,
            replace_is_the_whole_set,
            add_and_remove_report_what_changed,
            conflicts_are_listed_and_change_nothing,
            receive_routes_to_the_owner,
            unowned_and_unparsed_replies_are_held,
            held_count_counts_the_held_area,
            retried_message_ids_are_recorded_once,
            assignment_releases_held_replies_oldest_first,
            released_replies_never_hide_behind_a_cursor,
            pages_follow_cursors,
            clients_are_listed_by_id,
            unknowns_read_as_empty,
            history_records_every_change,
            owner_at_follows_the_history,
            delivery_says_how_each_reply_arrived,
            held_replies_can_be_rerouted,
            pruning_keeps_cursors_and_held_replies,
            pruned_message_ids_are_recorded_again,
            inbox_signals_wake_the_receiving_client
        );
        $crate::conformance_tests!(@concurrent $factory;
            receive_racing_assignment_ends_in_the_inbox,
            concurrent_receives_and_reassignments_lose_nothing
        );

        #[test]
        fn state_machine_property() {
            $crate::testing::state_machine_property($factory, $crate::testing::DEFAULT_CASES);
        }
    };
    (@each $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                if let Some(store) = ($factory)().await {
                    $crate::testing::$name(store).await;
                }
            }
        )*
    };
    (@concurrent $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some(store) = ($factory)().await {
                    $crate::testing::$name(store).await;
                }
            }
        )*
    };
}
